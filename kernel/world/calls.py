"""The economy's kernel_client calls, carried out for the run that made them.

A run acts as its principal: what it submits, that principal owns (and pays to store);
the escrows it opens lock that principal's scrip; it reads and appends only to pools that
principal belongs to; ``buy_config`` is the agent buying its own config. Each call is an
audit event of the run, with the reasoning the call carried.
"""

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kernel import store
from kernel.errors import InvalidInput
from kernel.package import from_files
from kernel.proxy import (
    BuyConfigCall,
    DeliverCall,
    EscrowsCall,
    MessageCall,
    OpenEscrowCall,
    PoolAppendCall,
    PoolReadCall,
    ReasonCall,
    Refusal,
    SubmitCall,
)
from kernel.world import agents, pools
from kernel.world.errors import NoModel
from kernel.world.reason import reason

if TYPE_CHECKING:
    from judiciary.court import Court
    from kernel.api import Kernel
    from kernel.calls import CallHandler


def escrow_brief(escrow: Any, tasks: dict[str, dict[str, Any]] | None = None, db: Any = None) -> dict[str, Any]:
    """What a run (or an observation) sees of an escrow: the module its suite tests, the Mint's task
    when it posted it; never the suite's content or a verdict's internals."""
    task = (tasks or {}).get(escrow.id)
    target = store.get(db, escrow.tests_id).target if db is not None else None
    return {
        "id": escrow.id,
        "buyer": escrow.buyer,
        "amount": escrow.amount,
        "tests_id": escrow.tests_id,
        "target": target,
        "tests": len(escrow.expected),
        "state": escrow.state,
        "worker": escrow.worker,
        "deliverable_id": escrow.deliverable_id,
        "task": task,
    }


class WorldCalls:
    """The kernel's ``Services.extension``: one instance per kernel."""

    def __init__(self, kernel: "Kernel", court: Callable[[], "Court"] | None = None):
        self.k = kernel
        self._court = court

    def court(self) -> "Court":
        if self._court is not None:
            return self._court()
        from judiciary.court import Court

        return Court(self.k)

    def __call__(self, handler: "CallHandler", call: Any) -> Any:
        ctx, db, s = handler.ctx, self.k.db, self.k.settings
        if not isinstance(call, EscrowsCall):
            self._may_act(ctx, call.op)
        if isinstance(call, SubmitCall):
            return self.submit(handler, call.args.files, call.args.public)
        if isinstance(call, EscrowsCall):
            from kernel.world.mint import task_of_escrow

            tasks = task_of_escrow(db)
            listed = [escrow_brief(e, tasks, db) for e in self.court().escrows(call.args.state, s.observe_artifacts)]
            handler.audit_call("escrows", detail=f"{len(listed)} listed")
            return listed
        if isinstance(call, OpenEscrowCall):
            if call.args.deadline is not None and ctx.tick is not None:
                raise InvalidInput(
                    "an escrow opened in a world takes the longest deadline: deadlines are wall-clock time, which"
                    " a replay cannot reproduce; open it without one."
                )
            escrow = self.court().open(ctx.principal, call.args.amount, call.args.tests_id, call.args.deadline)
            handler.audit_call(
                "open_escrow", artifact_id=escrow.tests_id, detail=f"escrow {escrow.id}: {escrow.amount}"
            )
            return escrow_brief(escrow, None, db)
        if isinstance(call, DeliverCall):
            escrow = self.court().deliver(call.args.escrow_id, ctx.principal, call.args.artifact_id)
            handler.audit_call("deliver", artifact_id=escrow.deliverable_id, detail=f"escrow {escrow.id}")
            return escrow_brief(escrow, None, db)
        if isinstance(call, PoolReadCall):
            entries = pools.read(db, call.args.pool, ctx.principal, call.args.since, call.args.limit)
            data = json.dumps(entries).encode()
            handler.audit_call("pool_read", path=f"pool:{call.args.pool}", size=len(data),
                               digest=hashlib.sha256(data).hexdigest(), detail=f"{len(entries)} entries")  # fmt: skip
            return entries
        if isinstance(call, PoolAppendCall):
            added = pools.append(db, s, call.args.pool, ctx.principal, call.args.data, run_id=ctx.run_id)
            handler.audit_call("pool_append", path=f"pool:{call.args.pool}", size=added["bytes"],
                               digest=added["digest"], detail=f"entry {added['seq']}")  # fmt: skip
            return added["seq"]
        if isinstance(call, MessageCall):
            sent = pools.send_message(db, s, ctx.principal, call.args.to, call.args.body, run_id=ctx.run_id)
            data = call.args.body.encode()
            handler.audit_call("send_message", path=f"message:{call.args.to}", size=len(data),
                               digest=hashlib.sha256(data).hexdigest(), detail=f"message {sent}")  # fmt: skip
            return sent
        if isinstance(call, ReasonCall):
            return self.reason(handler, call.args.prompt)
        if isinstance(call, BuyConfigCall):
            agent = agents.buy_config(db, ctx.principal, run_id=ctx.run_id)
            handler.audit_call("buy_config", detail=f"now owns its config ({agent.artifact_id[:12]})")
            return agent.config_owner
        raise Refusal("invalid", f"unknown call {call.op}")

    @staticmethod
    def _may_act(ctx: Any, op: str) -> None:
        """The economy's calls commit the principal (its pools, its messages, its scrip, its config):
        only its own step, or code its principal owns, may make them, never code it merely invoked."""
        if op == "buy_config" and not ctx.agent_step:
            raise Refusal("forbidden", "only an agent's own step (a tick or a command) may buy its config.")
        if not ctx.agent_step and ctx.artifact.owner != ctx.principal:
            raise Refusal(
                "forbidden",
                f"{op} commits {ctx.principal}; code it invokes ({ctx.artifact.short_id}, owned by"
                f" {ctx.artifact.owner}) may not make this call, only its own step or its own code.",
            )

    def submit(self, handler: "CallHandler", encoded: dict[str, str], public: bool) -> str:
        s = self.k.settings
        try:
            raw = {path: base64.b64decode(data, validate=True) for path, data in encoded.items()}
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"file contents must be base64: {exc}") from exc
        files = from_files(raw, s.max_package_files, s.max_package_bytes)
        ctx = handler.ctx
        result = handler.store_within_bound(
            lambda room: store.submit_files(
                self.k.db, s, files, ctx.principal, public, run_id=ctx.run_id, run_room=room
            )  # fmt: skip
        )
        art = result.artifact
        for path, data in files.items():
            handler.audit_call("submit", artifact_id=art.id, path=path, size=len(data),
                               digest=hashlib.sha256(data).hexdigest())  # fmt: skip
        handler.s.audit.record(
            ctx.run_id, ctx.principal, "kernel", "store", artifact_id=art.id, size=art.size, digest=art.id,
            detail=f"{art.kind} artifact '{art.name}'" + ("" if result.created else " (content existed)"),
        )  # fmt: skip
        return art.id

    def reason(self, handler: "CallHandler", prompt: str) -> str:
        ctx = handler.ctx
        try:
            answer = reason(self.k.db, self.k.settings, ctx.principal, prompt, run_id=ctx.run_id)
        except NoModel as exc:
            raise Refusal("unavailable", str(exc)) from exc
        data = answer.text.encode()
        handler.audit_call("reason", path=f"model:{answer.model}", size=len(data),
                           digest=hashlib.sha256(data).hexdigest(),
                           detail=f"{answer.tokens} tokens, {answer.cost} scrip")  # fmt: skip
        return answer.text
