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
import threading

SOCKET_PATH = os.environ.get("KERNEL_SOCKET", "/kernel/sock/kernel.sock")


class KernelCallError(Exception):
    """The kernel refused or failed a call; ``code`` says which kind of refusal."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


_local = threading.local()  # one connection per thread: a threaded artifact's calls never interleave


def _socket_path():
    return getattr(_local, "path", None) or SOCKET_PATH


def _connection():
    conn = getattr(_local, "conn", None)
    if conn is None:
        path = _socket_path()
        if not os.path.exists(path):
            raise KernelCallError("unavailable", "this run was started without a kernel connection")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        _local.sock = sock
        conn = _local.conn = sock.makefile("rwb")
    return conn


def _drop():
    for name in ("conn", "sock"):
        held = getattr(_local, name, None)
        if held is not None:
            with contextlib.suppress(OSError):
                held.close()
        setattr(_local, name, None)


def _call(op, reasoning=None, **args):
    message = {"op": op, "args": args}
    if reasoning is not None:
        message["reasoning"] = reasoning
    conn = _connection()
    try:
        conn.write(json.dumps(message).encode() + b"\n")
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


def invoke(artifact_id, input=None, reasoning=None):
    """Run another artifact in its own sandbox, paid by this run's principal."""
    return _call("invoke", reasoning, artifact_id=artifact_id, input=input)


def read_artifact(artifact_id, path=None, reasoning=None):
    """One file's bytes (``path`` given) or a dict of path to bytes."""
    value = _call("read_artifact", reasoning, artifact_id=artifact_id, path=path)
    if path is not None:
        return base64.b64decode(value)
    return {name: base64.b64decode(data) for name, data in value.items()}


def _encoded(files):
    return {path: _b64(data.encode() if isinstance(data, str) else data) for path, data in files.items()}


def write_artifact(name, files, public=False, reasoning=None):
    """Create a data artifact owned by this run's principal; returns its id."""
    if isinstance(files, (bytes, bytearray)):
        files = {name: bytes(files)}
    return _call("write_artifact", reasoning, name=name, files=_encoded(files), public=public)


def transfer(to, amount, memo="", reasoning=None):
    """Move scrip from this run's principal to ``to``."""
    return _call("transfer", reasoning, to=to, amount=amount, memo=memo)


def balance(reasoning=None):
    """This run's principal's balance in scrip."""
    return _call("balance", reasoning)


def submit(files, public=False, reasoning=None):
    """Store a code or tests package (path -> bytes or text, with its pyproject.toml) owned by this
    run's principal, validated like ``kernel submit``; returns its id. ``depends`` go in the manifest."""
    return _call("submit", reasoning, files=_encoded(files), public=public)


def escrows(state="open", reasoning=None):
    """The bounty board: escrows in ``state`` (None: all), each with its task when the Mint posted it."""
    return _call("escrows", reasoning, state=state)


def open_escrow(tests_id, amount, deadline=None, reasoning=None):
    """Lock ``amount`` of this principal's scrip against a tests artifact; returns the escrow."""
    return _call("open_escrow", reasoning, tests_id=tests_id, amount=amount, deadline=deadline)


def deliver(escrow_id, artifact_id, reasoning=None):
    """Deliver a code artifact this principal owns to an open escrow; the judiciary settles it."""
    return _call("deliver", reasoning, escrow_id=escrow_id, artifact_id=artifact_id)


def pool_read(pool, since=0, limit=100, reasoning=None):
    """Entries of a pool this principal belongs to, after sequence number ``since``."""
    return _call("pool_read", reasoning, pool=pool, since=since, limit=limit)


def pool_append(pool, data, reasoning=None):
    """Append a JSON value to a pool this principal belongs to; returns its sequence number."""
    return _call("pool_append", reasoning, pool=pool, data=data)


def send_message(to, body, reasoning=None):
    """Leave a message for another principal (its policy sees it on its next step)."""
    return _call("send_message", reasoning, to=to, body=body)


def reason(prompt, reasoning=None):
    """Ask the kernel's language model; paid per token by this principal. Returns the answer's text."""
    return _call("reason", reasoning, prompt=prompt)


def buy_config(reasoning=None):
    """This agent buys its own config from its owner at the owner's price: it becomes a free agent."""
    return _call("buy_config", reasoning)
