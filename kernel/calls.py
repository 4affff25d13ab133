"""What each kernel_client call does, for the run that made it.

Rights are the run's principal's (DESIGN: a run acts for whoever invoked it): it reads
public artifacts, its own, and the package it is running; it writes data artifacts that
its principal owns; it invokes only what its artifact declares in ``depends`` (or
itself, bounded by the tree's budget); it pays from its principal's account. Every call,
allowed or refused, is an audit event with its bytes and sha256.
"""

import base64
import binascii
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernel import ids, ledger, store
from kernel.errors import InsufficientFunds, InvalidInput, KernelError, NotFound, PackageError
from kernel.models import Artifact, RunStatus, SubmitResult
from kernel.proxy import BalanceCall, InvokeCall, ReadCall, Refusal, TransferCall, WriteCall

if TYPE_CHECKING:
    from kernel.runs import Services


@dataclass(frozen=True)
class RunContext:
    """Who a run is, given by the kernel when it made the run's socket."""

    run_id: str
    principal: str
    artifact: Artifact
    root_run_id: str
    depth: int
    trigger: str = "user"  # tick, command, call or user (models.RunResult.trigger)
    tick: int | None = None  # the world's tick, for runs of a world
    ids: Any = None  # the world's id source (kernel.ids.Source) its calls draw from, if any

    @property
    def agent_step(self) -> bool:
        """A policy's own step (its loop or its owner's command): it acts as the agent would from the CLI."""
        return self.trigger in ("tick", "command")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CallHandler:
    def __init__(self, services: "Services", ctx: RunContext):
        self.s, self.ctx = services, ctx
        self.stored = 0  # bytes this run has stored (bounded by settings.max_stored_bytes_per_run)
        self._store_lock = threading.Lock()  # the proxy serves a run's connections in parallel
        self._said = threading.local()  # the reasoning of the call this thread is carrying out

    def __call__(self, call: Any) -> Any:
        self._said.text = call.reasoning
        with ids.using(self.ctx.ids):
            return self._carry_out(call)

    def _carry_out(self, call: Any) -> Any:
        try:
            self._charge(call.op)
            if isinstance(call, BalanceCall):
                return self.balance()
            if isinstance(call, TransferCall):
                return self.transfer(call.args.to, call.args.amount, call.args.memo)
            if isinstance(call, ReadCall):
                return self.read(call.args.artifact_id, call.args.path)
            if isinstance(call, WriteCall):
                return self.write(call.args.name, call.args.files, call.args.public)
            if isinstance(call, InvokeCall):
                return self.invoke(call.args.artifact_id, call.args.input)
            if self.s.extension is not None:
                return self.s.extension(self, call)
        except InsufficientFunds as exc:
            raise Refusal("insufficient_funds", str(exc)) from exc
        except NotFound as exc:
            raise Refusal("not_found", str(exc)) from exc
        except (InvalidInput, PackageError) as exc:
            raise Refusal("invalid", str(exc)) from exc
        except KernelError as exc:
            raise Refusal("failed", str(exc)) from exc
        raise Refusal("invalid", f"unknown call {call.op}")

    def _audit(self, op: str, **kw: Any) -> None:
        reasoning = getattr(self._said, "text", None)
        self.s.audit.record(self.ctx.run_id, self.ctx.principal, "proxy", op, reasoning=reasoning, **kw)

    audit_call = _audit  # for the economy's calls (kernel.world.calls)

    def store_within_bound(self, put: Callable[[int], SubmitResult]) -> SubmitResult:
        """Store through ``put(room)`` within this run's bound of stored bytes, counting what it adds."""
        with self._store_lock:
            result = put(self.s.settings.max_stored_bytes_per_run - self.stored)
            if result.created:
                self.stored += result.artifact.stored_bytes
        return result

    def _charge(self, op: str) -> None:
        price = self.s.settings.call_price
        if price:
            with self.s.db.transaction() as conn:
                ledger.move(
                    conn, ledger.principal_account(self.ctx.principal), ledger.MINT, price,
                    kind="call_fee", memo=op, run_id=self.ctx.run_id,
                )  # fmt: skip

    def balance(self) -> int:
        value = ledger.balance(self.s.db, self.ctx.principal)
        self._audit("balance")
        return value

    def transfer(self, to: str, amount: int, memo: str) -> int:
        left = ledger.transfer(
            self.s.db, self.ctx.principal, to, amount, memo, self.s.settings.bounds, run_id=self.ctx.run_id
        )
        self._audit("transfer", detail=f"{amount} to {to}" + (f": {memo}" if memo else ""))
        return left

    def _readable(self, ref: str) -> Artifact:
        art = store.get(self.s.db, ref)
        if not (art.public or art.owner == self.ctx.principal or art.id == self.ctx.artifact.id):
            raise Refusal("forbidden", f"artifact {art.short_id} is private to {art.owner}")
        return art

    def read(self, ref: str, path: str | None) -> Any:
        art = self._readable(ref)
        files = store.read_files(self.s.settings, art.id)
        if path is not None:
            if path not in files:
                raise Refusal("not_found", f"artifact {art.short_id} has no file '{path}'")
            files = {path: files[path]}
        encoded_size = sum(len(d) for d in files.values()) * 4 // 3 + 64 * len(files)
        if encoded_size > self.s.settings.max_message_bytes:
            raise Refusal(
                "too_large",
                f"the answer would exceed {self.s.settings.max_message_bytes} bytes; read one file at a time",
            )
        for name, data in files.items():
            self._audit("read_artifact", artifact_id=art.id, path=name, size=len(data), digest=sha256(data))
        encoded = {name: base64.b64encode(data).decode() for name, data in files.items()}
        return encoded[path] if path is not None else encoded

    def write(self, name: str, files: dict[str, str], public: bool) -> str:
        try:
            raw = {path: base64.b64decode(data, validate=True) for path, data in files.items()}
        except (binascii.Error, ValueError) as exc:
            raise Refusal("invalid", f"file contents must be base64: {exc}") from exc
        result = self.store_within_bound(
            lambda room: store.store_data(
                self.s.db, self.s.settings, self.ctx.principal, name, raw, public, run_id=self.ctx.run_id, run_room=room
            )
        )
        art = result.artifact
        for path, data in raw.items():
            self._audit("write_artifact", artifact_id=art.id, path=path, size=len(data), digest=sha256(data))
        self.s.audit.record(
            self.ctx.run_id, self.ctx.principal, "kernel", "store", artifact_id=art.id, size=art.size,
            digest=art.id, detail=f"data artifact '{name}'" + ("" if result.created else " (content existed)"),
        )  # fmt: skip
        return art.id

    def invoke(self, ref: str, value: Any) -> Any:
        from kernel.runs import Invocation

        target = store.get(self.s.db, ref)
        # An agent's own step acts as the agent would from the CLI; code it runs is bound by its depends.
        if not self.ctx.agent_step and target.id not in self.ctx.artifact.depends and target.id != self.ctx.artifact.id:
            raise Refusal(
                "forbidden", f"{target.short_id} is not in this artifact's depends; declare it in [tool.kernel]"
            )
        child = Invocation(self.s)(target.id, self.ctx.principal, value, parent=self.ctx)
        self._audit("invoke", artifact_id=target.id, detail=f"run {child.id}: {child.status.value}")
        if child.status is not RunStatus.OK:
            code = "rejected" if child.status is RunStatus.REJECTED else child.status.value
            raise Refusal(code, f"run {child.id} of {target.short_id} ended {child.status.value}: {child.reason}")
        return child.output
