"""The `kernel` command's entry point: through the home's daemon when one serves it.

When `kernel serve` runs for the home (``--home``, else ``$KERNEL_HOME``, else
``./.kernel``), the command line goes to the daemon over the home's Unix socket and the
daemon runs it on its warm kernel; this path imports only the standard library's
smallest modules. Without a daemon, or with ``KERNEL_NO_DAEMON=1``, or for commands
that must run here (``serve``; ``audit export`` and ``telemetry export``, which write where
the caller is; ``browse``, which becomes Datasette),
the full CLI runs in this process as before.
"""

import binascii  # not base64, which imports re
import json
import os
import socket
import sys

from kernel.sockets import connect_unix

LOCAL_ONLY = {("serve",), ("audit", "export"), ("telemetry", "export"), ("browse",)}
MAX_STDIN = 1 << 30
GLOBAL_OPTIONS_WITH_VALUE = {"--home"}


def _home_and_command(argv: list[str]) -> tuple[str, list[str]]:
    """The home the command names and its command words (the global options skipped)."""
    home = None
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if arg in GLOBAL_OPTIONS_WITH_VALUE and i + 1 < len(argv):
            home = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--home="):
            home = arg.split("=", 1)[1]
        i += 1
    if home is None:
        home = os.environ.get("KERNEL_HOME") or ".kernel"
    words = [a for a in argv[i:] if not a.startswith("-")][:2]  # as click reads them (`audit -- export`)
    return os.path.abspath(os.path.expanduser(home)), words


def local_only(argv: list[str]) -> bool:
    """Whether the command must run in the caller's process (`serve`; `audit export` streams to a descriptor)."""
    words = tuple(_home_and_command(argv)[1])
    return words[:1] in LOCAL_ONLY or words[:2] in LOCAL_ONLY


def reads_stdin(argv: list[str]) -> bool:
    return any(a == "-" or a.endswith("=-") for a in argv)


def _connect(path: str) -> socket.socket | None:
    try:
        return connect_unix(path)
    except OSError:
        return None


def _request(sock: socket.socket, payload: bytes) -> tuple[int, bytes]:
    head = (
        "POST /v1/cli HTTP/1.1\r\nHost: kernel\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock.sendall(head + payload)
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    raw = b"".join(chunks)
    header, _, body = raw.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1]) if header.startswith(b"HTTP/") else 0
    return status, body


def _through_daemon(argv: list[str]) -> int | None:
    """The command's exit code when the daemon ran it; None when it must run in this process."""
    if os.environ.get("KERNEL_NO_DAEMON"):
        return None
    home, _ = _home_and_command(argv)
    if local_only(argv):
        return None
    sock = _connect(os.path.join(home, "daemon.sock"))
    if sock is None:
        return None
    stdin = None
    if reads_stdin(argv) and not sys.stdin.isatty():
        stdin = binascii.b2a_base64(sys.stdin.buffer.read(MAX_STDIN), newline=False).decode()
    payload = json.dumps({"argv": argv, "cwd": os.getcwd(), "stdin": stdin}).encode()
    with sock:
        try:
            status, body = _request(sock, payload)
        except OSError as exc:  # sent: it may have been carried out, so it is never run again here
            return _fail(f"the daemon stopped answering ({exc.strerror or exc}); check with `kernel runs`, then retry.")
    if status != 200:
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = body[:200].decode("utf-8", "replace")
        return _fail(f"the daemon refused the command: {message}")
    answer = json.loads(body)
    try:
        sys.stdout.buffer.write(binascii.a2b_base64(answer["stdout"]))
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _fail(
            "standard output was closed before everything was written (e.g. by `head`); the output is incomplete."
        )
    sys.stderr.buffer.write(binascii.a2b_base64(answer["stderr"]))
    sys.stderr.flush()
    return int(answer["exit"])


def _fail(message: str) -> int:
    sys.stderr.write(f"Error: {message}\n")
    return 1


def main() -> None:
    code = _through_daemon(sys.argv[1:])
    if code is None:
        from kernel.cli import main as full

        full(prog_name="kernel")
        return
    sys.exit(code)


if __name__ == "__main__":
    main()
