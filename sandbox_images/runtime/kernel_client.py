"""The artifact's handle on the kernel, present in every sandbox.

Each call is one JSON line on the Unix socket the kernel handed this run
(``$KERNEL_SOCKET``); the answer is one JSON line. The run's identity is the socket
itself: nothing sent here can claim to be another principal.
"""

import base64
import contextlib
import json
import os
import socket

SOCKET_PATH = os.environ.get("KERNEL_SOCKET", "/kernel/sock/kernel.sock")


class KernelCallError(Exception):
    """The kernel refused or failed a call; ``code`` says which kind of refusal."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


_conn = None


def _connection():
    global _conn
    if _conn is None:
        if not os.path.exists(SOCKET_PATH):
            raise KernelCallError("unavailable", "this run was started without a kernel connection")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(SOCKET_PATH)
        _conn = sock.makefile("rwb")
    return _conn


def _drop():
    global _conn
    if _conn is not None:
        with contextlib.suppress(OSError):
            _conn.close()
    _conn = None


def _call(op, **args):
    conn = _connection()
    try:
        conn.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
        conn.flush()
        line = conn.readline()
    except OSError as exc:
        _drop()
        raise KernelCallError("closed", f"the connection to the kernel broke: {exc}") from None
    if not line:
        _drop()
        raise KernelCallError("closed", "the kernel closed this run's connection")
    answer = json.loads(line)
    if answer.get("closed"):
        _drop()  # the kernel hung up after this answer; the next call reconnects
    if not answer.get("ok"):
        raise KernelCallError(answer.get("code", "error"), answer.get("error", ""))
    return answer.get("value")


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def invoke(artifact_id, input=None):
    """Run another artifact in its own sandbox, paid by this run's principal."""
    return _call("invoke", artifact_id=artifact_id, input=input)


def read_artifact(artifact_id, path=None):
    """One file's bytes (``path`` given) or a dict of path to bytes."""
    value = _call("read_artifact", artifact_id=artifact_id, path=path)
    if path is not None:
        return base64.b64decode(value)
    return {name: base64.b64decode(data) for name, data in value.items()}


def write_artifact(name, files, public=False):
    """Create a data artifact owned by this run's principal; returns its id."""
    if isinstance(files, (bytes, bytearray)):
        files = {name: bytes(files)}
    encoded = {path: _b64(data) for path, data in files.items()}
    return _call("write_artifact", name=name, files=encoded, public=public)


def transfer(to, amount, memo=""):
    """Move scrip from this run's principal to ``to``."""
    return _call("transfer", to=to, amount=amount, memo=memo)


def balance():
    """This run's principal's balance in scrip."""
    return _call("balance")
