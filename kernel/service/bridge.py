"""The thin CLI's bridge: a `kernel` command line, run by the daemon for a local caller.

The thin client (``kernel.thin``) sends its arguments, its working directory and, when
it reads standard input, that input; the daemon runs the very same click command on its
warm kernel, with this thread's standard streams captured, and answers the exit code
and what was printed. Only the daemon's Unix socket (mode 0600, in the home) reaches it:
the caller is the home's owner, as for the in-process CLI.
"""

import base64
import contextvars
import io
import sys
import threading
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from kernel.api import Kernel
from kernel.service.errors import ApiError

CLIENT_CWD: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_cwd", default=None)
_local = threading.local()


class CliCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(max_length=10_000)
    cwd: str = Field(max_length=4096)
    stdin: str | None = None  # base64, when the command reads standard input


class _Captured(io.TextIOBase):
    """sys.stdout / sys.stderr / sys.stdin of the daemon: the calling thread's own buffer
    while it runs a bridged command, the real stream otherwise."""

    def __init__(self, name: str, real: Any):
        self.name_, self.real = name, real

    def _mine(self) -> io.BytesIO | None:
        return getattr(_local, self.name_, None)

    @property
    def buffer(self) -> Any:
        return self._mine() or self.real.buffer

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8" if self._mine() is not None else str(self.real.encoding)

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict" if self._mine() is not None else str(self.real.errors)

    def write(self, text: str) -> int:
        mine = self._mine()
        if mine is None:
            return int(self.real.write(text))
        mine.write(text.encode("utf-8", "surrogateescape"))
        return len(text)

    def read(self, size: int | None = -1) -> str:
        mine = self._mine()
        if mine is None:
            return str(self.real.read(size))
        return mine.read(-1 if size is None else size).decode("utf-8", "replace")

    def flush(self) -> None:
        if self._mine() is None:
            self.real.flush()

    def isatty(self) -> bool:
        return False if self._mine() is not None else bool(self.real.isatty())

    def fileno(self) -> int:
        if self._mine() is not None:
            raise io.UnsupportedOperation("a bridged command has no file descriptor; run it with KERNEL_NO_DAEMON=1")
        return int(self.real.fileno())

    def writable(self) -> bool:
        return self.name_ != "stdin"

    def readable(self) -> bool:
        return self.name_ == "stdin"


def capture_streams() -> None:
    """Route this process's standard streams through per-thread buffers (once, at daemon start)."""
    if not isinstance(sys.stdout, _Captured):
        sys.stdout = _Captured("stdout", sys.stdout)
        sys.stderr = _Captured("stderr", sys.stderr)
        sys.stdin = _Captured("stdin", sys.stdin)


def run_cli(kernel: Kernel, call: CliCall) -> dict[str, Any]:
    """Run one command line as the CLI would, on ``kernel``; returns its exit code and output."""
    from kernel.cli import main
    from kernel.thin import local_only

    if local_only(call.argv):
        message = "this command runs in the caller's process; run it with KERNEL_NO_DAEMON=1."
        raise ApiError(422, "invalid_request", message)
    try:
        stdin = base64.b64decode(call.stdin, validate=True) if call.stdin else b""
    except ValueError:
        raise ApiError(422, "invalid_request", "stdin is not base64; send the input base64-encoded.") from None
    out, err = io.BytesIO(), io.BytesIO()
    _local.stdout, _local.stderr = out, err
    _local.stdin = io.BytesIO(stdin)
    token = CLIENT_CWD.set(call.cwd)
    try:
        main.main(call.argv, prog_name="kernel", obj={"settings": kernel.settings, "kernel": kernel})
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if isinstance(stop.code, str):
            err.write(stop.code.encode() + b"\n")
    finally:
        CLIENT_CWD.reset(token)
        _local.stdout = _local.stderr = _local.stdin = None
    return {
        "exit": code,
        "stdout": base64.b64encode(out.getvalue()).decode(),
        "stderr": base64.b64encode(err.getvalue()).decode(),
    }


def install(app: FastAPI, kernel: Kernel) -> None:
    capture_streams()

    @app.post("/v1/cli", include_in_schema=False)
    def cli(call: CliCall, request: Request) -> dict[str, Any]:
        server = request.scope.get("server")
        if not (server and server[1] is None):
            raise ApiError(403, "forbidden", "the command-line bridge answers on the daemon's Unix socket only.")
        return run_cli(kernel, call)
