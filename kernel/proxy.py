"""The kernel proxy: one Unix socket per run, the run's only way to reach the kernel.

The socket is created on the host for one run and mounted into that container alone, so
whoever speaks on it is that run: identity is the socket, never a field of a message.
The protocol is one JSON object per line each way. Requests are validated by pydantic
models with ``extra="forbid"``; a malformed, oversized or over-quota message is answered
with an error and closes that run's connection, never the kernel.
"""

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError

from kernel.sockets import bind_unix


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InvokeArgs(Args):
    artifact_id: str = Field(min_length=1, max_length=80)
    input: Any = None


class ReadArgs(Args):
    artifact_id: str = Field(min_length=1, max_length=80)
    path: str | None = Field(default=None, max_length=4096)


class WriteArgs(Args):
    name: str = Field(min_length=1, max_length=100)
    files: dict[str, str]  # path -> base64
    public: bool = False


class TransferArgs(Args):
    to: str = Field(min_length=1, max_length=40)
    amount: StrictInt = Field(gt=0)
    memo: str = Field(default="", max_length=500)


class BalanceArgs(Args):
    pass


Name = Annotated[str, Field(min_length=1, max_length=80)]


class SubmitArgs(Args):
    files: dict[str, str]  # path -> base64; a package with its pyproject.toml, validated like `kernel submit`
    public: bool = False


class EscrowsArgs(Args):
    state: Literal["open", "delivered", "released", "refunded", "disputed"] | None = "open"


class OpenEscrowArgs(Args):
    tests_id: Name
    amount: StrictInt = Field(gt=0)
    deadline: str | None = Field(default=None, max_length=40)


class DeliverArgs(Args):
    escrow_id: Name
    artifact_id: Name


class PoolReadArgs(Args):
    pool: Name
    since: StrictInt = Field(default=0, ge=0)
    limit: StrictInt = Field(default=100, ge=1, le=1000)


class PoolAppendArgs(Args):
    pool: Name
    data: Any


class MessageArgs(Args):
    to: Name
    body: str = Field(min_length=1, max_length=4000)


class ReasonArgs(Args):
    prompt: str = Field(min_length=1, max_length=64_000)


REASONING_CHARS = 4000  # reasoning kept with one call's audit event


class Call(Args):
    """One message: the operation, its arguments and, optionally, why the run makes it."""

    reasoning: str | None = Field(default=None, max_length=REASONING_CHARS)


class InvokeCall(Call):
    op: Literal["invoke"]
    args: InvokeArgs


class ReadCall(Call):
    op: Literal["read_artifact"]
    args: ReadArgs


class WriteCall(Call):
    op: Literal["write_artifact"]
    args: WriteArgs


class TransferCall(Call):
    op: Literal["transfer"]
    args: TransferArgs


class BalanceCall(Call):
    op: Literal["balance"]
    args: BalanceArgs = BalanceArgs()


class SubmitCall(Call):
    op: Literal["submit"]
    args: SubmitArgs


class EscrowsCall(Call):
    op: Literal["escrows"]
    args: EscrowsArgs = EscrowsArgs()


class OpenEscrowCall(Call):
    op: Literal["open_escrow"]
    args: OpenEscrowArgs


class DeliverCall(Call):
    op: Literal["deliver"]
    args: DeliverArgs


class PoolReadCall(Call):
    op: Literal["pool_read"]
    args: PoolReadArgs


class PoolAppendCall(Call):
    op: Literal["pool_append"]
    args: PoolAppendArgs


class MessageCall(Call):
    op: Literal["send_message"]
    args: MessageArgs


class ReasonCall(Call):
    op: Literal["reason"]
    args: ReasonArgs


class BuyConfigCall(Call):
    op: Literal["buy_config"]
    args: BalanceArgs = BalanceArgs()


KERNEL_CALLS = InvokeCall | ReadCall | WriteCall | TransferCall | BalanceCall
# The economy's calls: carried out by kernel.world.calls for the run's principal.
WORLD_CALLS = (
    SubmitCall | EscrowsCall | OpenEscrowCall | DeliverCall | PoolReadCall | PoolAppendCall | MessageCall
    | ReasonCall | BuyConfigCall
)  # fmt: skip
AnyCall = Annotated[KERNEL_CALLS | WORLD_CALLS, Field(discriminator="op")]
CALL = TypeAdapter(AnyCall)


class Refusal(Exception):
    """A call the kernel will not carry out; ``code`` is the kind of refusal."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Hangup(Exception):
    """Answer, then close this connection (malformed, oversized or over quota)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


Dispatch = Callable[[Any], Any]  # a validated call -> the value to answer
OnRefusal = Callable[[str, str, str, int], None]  # (op, code, message, bytes of the message)


class ProxyServer:
    """Serves one run's socket on background threads until ``close()``."""

    def __init__(
        self,
        path: Path,
        dispatch: Dispatch,
        on_refusal: OnRefusal,
        *,
        max_message: int,
        max_calls: int,
        max_connections: int,
    ):
        self.path = path
        self.dispatch, self.on_refusal = dispatch, on_refusal
        self.max_message, self.max_calls, self.max_connections = max_message, max_calls, max_connections
        self.calls = self.bytes_in = self.bytes_out = 0
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.conns: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.closed = threading.Event()

    def start(self) -> None:
        bind_unix(self.listener, self.path)
        self.listener.listen(self.max_connections)
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()]  # connect/close loops leave nothing behind
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.calls += 1  # a connection counts as a call: connect/close loops hit the quota
                over = self.calls > self.max_calls
                full = over or len(self.conns) >= self.max_connections
                if not full:
                    self.conns.append(conn)
            if full:
                error = f"this run may make at most {self.max_calls} calls" if over else "too many connections"
                self._send(conn, {"ok": False, "code": "limit", "error": error})
                conn.close()
                continue
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while not self.closed.is_set():
                line = reader.readline(self.max_message + 1)
                if not line:
                    return
                try:
                    answer = self._answer(line)
                except Hangup as stop:
                    self.on_refusal("message", stop.code, str(stop), len(line))
                    self._send(conn, {"ok": False, "code": stop.code, "error": str(stop), "closed": True})
                    return
                self._send(conn, answer)
        except OSError:
            return
        finally:
            reader.close()
            with self.lock:
                self.conns.remove(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _answer(self, line: bytes) -> dict[str, Any]:
        if len(line) > self.max_message or not line.endswith(b"\n"):
            raise Hangup("too_large", f"a message may be at most {self.max_message} bytes")
        with self.lock:
            self.calls += 1
            self.bytes_in += len(line)
            if self.calls > self.max_calls:
                raise Hangup("limit", f"this run may make at most {self.max_calls} calls")
        try:
            call = CALL.validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise Hangup("invalid", f"malformed message: {where}: {first['msg']}") from exc
        try:
            value = self.dispatch(call)
        except Refusal as refusal:
            self.on_refusal(call.op, refusal.code, str(refusal), len(line))
            return {"ok": False, "code": refusal.code, "error": str(refusal)}
        return {"ok": True, "value": value}

    def _send(self, conn: socket.socket, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode() + b"\n"
        with self.lock:
            self.bytes_out += len(data)
        with contextlib.suppress(OSError):
            conn.sendall(data)

    def close(self, wait: float) -> None:
        """Stop serving; calls in progress (a nested run) get ``wait`` seconds to end. Idempotent."""
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for conn in self.conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RD)
        for thread in self.threads:
            thread.join(timeout=wait)
        self.path.unlink(missing_ok=True)
