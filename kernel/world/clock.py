"""The world clock: ``kernel world run --ticks N --seed S``.

A tick: the Mint posts its tasks; every active agent, in an order drawn from the seed and
the tick, pays the step price and has its policy invoked in a fresh sandbox as itself
(trigger ``tick``), with its observation; the decision it returns (with its reasoning and
the memory it keeps) is recorded as a step; then the judiciary judges every delivered
escrow, and the tick is committed. Nothing in a tick reads the wall clock: escrows a world
opens take the longest deadline, and ticks do not expire escrows. Ids are drawn from the seed (``kernel.ids``), so the
same seed and policies replay to the same decisions, ledger and events, wall-clock
timestamps and measured usage aside.

One world per home, one ``world run`` at a time (a lock file). A run killed mid-tick
loses nothing already done (each step is its own transactions); the next ``world run``
resumes that tick with the agents that had not finished their step.
"""

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from kernel import ids, ledger
from kernel.db import now
from kernel.errors import InsufficientFunds, InvalidInput, KernelError
from kernel.models import RunStatus
from kernel.proxy import REASONING_CHARS
from kernel.runs import encode_input, too_deep
from kernel.telemetry import snapshot
from kernel.world import agents as agent_state
from kernel.world import mint
from kernel.world.errors import WorldError
from kernel.world.observe import observation

if TYPE_CHECKING:
    from judiciary.court import Court
    from kernel.api import Kernel

RESUME_STRIDE = 2**40  # ids after an interrupted tick start this far on: never one handed out before
MAX_TICKS = 1_000_000


class World:
    """The economy of one home, over a kernel and a court that settles its escrows."""

    def __init__(self, kernel: "Kernel", court: "Court | None" = None):
        if court is None:
            from judiciary.court import Court

            court = Court(kernel)
        self.k, self.court, self.db, self.settings = kernel, court, kernel.db, kernel.settings
        kernel.use_court(lambda: self.court)
        if self.settings.reason_model:
            from kernel.world.reason import load_llm

            load_llm()  # now, on this thread, not first inside a run's call

    # -- state ---------------------------------------------------------------------------
    def _world(self) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM world WHERE id = 1")

    def status(self) -> dict[str, Any]:
        w = self._world() or {"seed": None, "tick": 0, "resumes": 0}
        counts = self.db.one(
            "SELECT (SELECT COUNT(*) FROM agents) AS agents,"
            " (SELECT COUNT(*) FROM agents WHERE state = 'active') AS active,"
            " (SELECT COUNT(*) FROM steps) AS steps,"
            " (SELECT COUNT(*) FROM tasks) AS tasks,"
            " (SELECT COUNT(*) FROM tasks WHERE escrow_id IS NOT NULL) AS tasks_open,"
            " (SELECT COALESCE(SUM(amount), 0) FROM mint_log) AS minted_for_tasks"
        )
        check = self.k.ledger_check()
        return {"seed": w["seed"], "tick": w["tick"], "resumes": w["resumes"], **(counts or {}),
                "mint_weights": mint.weights(self.db), "ledger_ok": check.ok, "supply": check.supply}  # fmt: skip

    def start(self, seed: int | None) -> dict[str, Any]:
        """The world's row, made with ``seed`` on first use; a different seed later is refused."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT seed FROM world WHERE id = 1").fetchone()
            if row is None:
                t = now()
                conn.execute("INSERT INTO world (id, seed, created_at, updated_at) VALUES (1, ?, ?, ?)",
                             (seed or 0, t, t))  # fmt: skip
            elif seed is not None and seed != row[0]:
                raise InvalidInput(
                    f"this home's world was started with seed {row[0]}; run it with --seed {row[0]} (or without"
                    " --seed), or start another world in a new home."
                )
            if conn.execute("SELECT in_tick FROM world WHERE id = 1").fetchone()[0] is not None:
                # A tick was under way when its run stopped: what it did stays; its ids are never reused;
                # a step that had started is not run again (it was paid for, it may have acted).
                conn.execute("UPDATE world SET resumes = resumes + 1, in_tick = NULL WHERE id = 1")
                conn.execute("UPDATE steps SET status = 'interrupted' WHERE status = 'running' AND trigger = 'tick'")
        world = self._world()
        assert world is not None
        return world

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        fd = os.open(self.settings.home / "world.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise WorldError(f"a world run is already going on in {self.settings.home}; wait for it.") from None
            yield
        finally:
            os.close(fd)

    # -- the clock ---------------------------------------------------------------------------
    def run(
        self, ticks: int, seed: int | None = None, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        """Advance the world ``ticks`` ticks (resuming an interrupted one first); a summary."""
        if isinstance(ticks, bool) or not isinstance(ticks, int) or not 1 <= ticks <= MAX_TICKS:
            raise InvalidInput(f"--ticks must be a whole number from 1 to {MAX_TICKS} (got {ticks!r}).")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
            raise InvalidInput(f"--seed must be a whole number from 0 to 2^63-1 (got {seed!r}).")
        self.k.writing()
        with self._lock():
            world = self.start(seed)
            first = world["tick"]
            if first > 0:  # the last tick's snapshot, if its run stopped between the tick and it
                snapshot.take(self.db, first - 1, self.settings.telemetry_window)
            start = world["ids_issued"] + world["resumes"] * RESUME_STRIDE
            steps_before = self.db.one("SELECT COUNT(*) AS n FROM steps")["n"]  # type: ignore[index]
            with ids.seeded(world["seed"], start) as source:
                for tick in range(first, first + ticks):
                    self.tick(tick, world["seed"], source)
                    if progress:
                        progress(tick - first + 1, ticks)
        steps = self.db.one("SELECT COUNT(*) AS n FROM steps")["n"] - steps_before  # type: ignore[index]
        return {**self.status(), "ran_ticks": ticks, "from_tick": first, "steps": steps}

    def order(self, seed: int, tick: int) -> list[dict[str, Any]]:
        """This tick's active agents, in an order drawn from the world's seed and the tick."""
        rows = self.db.rows("SELECT * FROM agents WHERE state = 'active' ORDER BY seq")
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**31, tick)))
        return [rows[i] for i in rng.permutation(len(rows))]

    def tick(self, tick: int, seed: int, source: ids.Source) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE world SET in_tick = ? WHERE id = 1", (tick,))
        mint.post(self.db, self.settings, self.court, tick)
        done = {r["agent"] for r in self.db.rows("SELECT agent FROM steps WHERE tick = ? AND trigger = 'tick'",
                                                 (tick,))}  # fmt: skip
        for agent in self.order(seed, tick):
            if agent["name"] not in done:
                self.step(agent["name"], tick, seed, "tick")
        for escrow in self.court.escrows("delivered"):
            with contextlib.suppress(KernelError):  # judged meanwhile, or nobody could judge it: recorded on it
                self.court.judge(escrow.id)
        mint.close_settled(self.db, tick)
        self.k.audit.flush()  # the tick's decisions are readable once it is committed
        every = self.settings.audit_every_ticks
        if every and (tick + 1) % every == 0:
            self.k.audit_scan()  # black-market alerts, per tick (its ids are not drawn from the world's seed)
        with self.db.transaction() as conn:
            conn.execute("UPDATE world SET tick = ?, ids_issued = ?, in_tick = NULL, updated_at = ? WHERE id = 1",
                         (tick + 1, source.counter, now()))  # fmt: skip
        snapshot.take(self.db, tick, self.settings.telemetry_window)

    # -- one step ------------------------------------------------------------------------------
    def step(self, name: str, tick: int, seed: int, trigger: str, command: Any = None) -> dict[str, Any]:
        """Pay the step price and record the step as started (one transaction), run the agent's
        policy as the agent, record its decision. A step is started at most once."""
        agent = self.db.one("SELECT * FROM agents WHERE name = ?", (name,))
        assert agent is not None
        obs = observation(self.db, self.settings, self.court, agent, tick=tick, world_seed=seed, trigger=trigger,
                          command=command)  # fmt: skip
        with self.db.transaction() as conn:
            try:
                ledger.move(conn, ledger.principal_account(name), ledger.MINT, self.settings.step_price,
                            kind="step", memo=f"{trigger} at tick {tick}")  # fmt: skip
                status = "running"
            except InsufficientFunds:
                status = "broke"
            step_id = conn.execute(
                "INSERT INTO steps (tick, agent, trigger, status, at) VALUES (?, ?, ?, ?, ?)",
                (tick, name, trigger, status, now()),
            ).lastrowid
        if status == "broke":
            return self._brief(step_id)
        try:
            run = self.k.run_as(agent["artifact_id"], name, obs, trigger=trigger, tick=tick)
        except KernelError as exc:  # refused before it started (an observation that cannot be sent)
            with self.db.transaction() as conn:
                conn.execute("UPDATE steps SET status = 'failed', reasoning = ? WHERE id = ?",
                             (str(exc)[:REASONING_CHARS], step_id))  # fmt: skip
            return self._brief(step_id)
        decision = run.output if run.status is RunStatus.OK else None
        reasoning, memory, status = None, agent["memory"], run.status.value
        if isinstance(decision, dict):
            said = decision.get("reasoning")
            reasoning = said[:REASONING_CHARS] if isinstance(said, str) else None
            if "memory" in decision:
                memory, status = self._memory(decision["memory"], agent["memory"], status)
        elif run.status is RunStatus.OK:
            status = "no_decision"  # a policy must return an object with its reasoning
        if reasoning is not None:
            said_bytes = reasoning.encode()
            self.k.audit.record(run.id, name, "kernel", "decision", size=len(said_bytes),
                                digest=hashlib.sha256(said_bytes).hexdigest(), detail=f"{trigger} at tick {tick}",
                                reasoning=reasoning)  # fmt: skip
        inbox_seen = max([agent["inbox_seen"], *(m["id"] for m in obs["messages"])])  # delivered: it ran
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE steps SET run_id = ?, status = ?, decision = ?, reasoning = ? WHERE id = ?",
                (run.id, status, json.dumps(decision, sort_keys=True), reasoning, step_id),
            )
            conn.execute("UPDATE agents SET memory = ?, inbox_seen = ? WHERE name = ?", (memory, inbox_seen, name))
        return self._brief(step_id)

    def _memory(self, value: Any, before: str, status: str) -> tuple[str, str]:
        """The memory a decision keeps, as stored (JSON within its bound), or the old one and why not."""
        try:
            kept = json.dumps(value, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return before, "bad_memory"
        if len(kept.encode()) > self.settings.agent_memory_bytes:
            return before, "memory_too_large"
        if too_deep(value, self.settings.max_input_depth - 4):  # it goes back in the next observation
            return before, "bad_memory"
        return kept, status

    def _brief(self, step_id: int | None) -> dict[str, Any]:
        row = self.db.one(
            "SELECT tick, agent, trigger, run_id, status, decision, reasoning FROM steps WHERE id = ?", (step_id,)
        )
        assert row is not None
        return {**row, "decision": json.loads(row["decision"]) if row["decision"] else None}

    def command(self, name: str, actor: str, value: Any) -> dict[str, Any]:
        """The owner of an agent's config orders it: one step now, triggered ``command``."""
        agent_state.require_owner(self.db, name, actor)
        encode_input(value, self.settings)  # an order the policy could not be sent is refused before it is paid
        world = self._world()
        tick, seed = (world["tick"], world["seed"]) if world else (0, 0)
        step = self.step(name, tick, seed, "command", command=value)
        self.k.audit.flush()
        return step

    def steps(self, agent: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, params = ("WHERE agent = ?", (agent,)) if agent else ("", ())
        rows = self.db.rows(
            f"SELECT tick, agent, trigger, run_id, status, decision, reasoning FROM steps {where}"
            " ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [{**r, "decision": json.loads(r["decision"]) if r["decision"] else None} for r in rows]
