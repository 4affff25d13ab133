"""The court: an escrow's life from open to payment, with one appeal.

States: open -> delivered -> judged -> released | refunded, and judged -> disputed ->
released | refunded (final). With a dispute window of 0 (the default) judging settles at
once; with a window, the verdict waits that long for an appeal before it is paid out, so
no path ever refunds after a release. Every state change and the ledger rows it causes
commit in one SQLite transaction, and the state is re-read inside that transaction, so
two racing judges settle once. A judgement in progress is claimed by its process; if
that process dies, the claim lapses and the escrow can be judged again.
"""

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from judiciary.errors import Busy, EscrowStateError, JudiciaryError
from judiciary.models import Escrow, EscrowEvent, SuiteRun, Verdict
from judiciary.runner import JudgeServices, SuiteRunner, suite_limits
from judiciary.verdict import RULE, decide
from kernel import ids, ledger, process, store
from kernel.api import Kernel
from kernel.audit.provenance import PURCHASES, Purchase
from kernel.db import Database, now
from kernel.errors import InsufficientFunds, InvalidInput
from kernel.models import Artifact

LIVE = ("open", "delivered", "judged", "disputed")
DURATION = re.compile(r"\s*([0-9]+)\s*([smhd])\s*")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, maximum: int | None = None, what: str = "a duration") -> int:
    """'90s', '10m', '2h', '3d' -> seconds, at most ``maximum`` (settings.max_escrow_seconds)."""
    match = DURATION.fullmatch(text)
    if not match:
        raise InvalidInput(f"{text!r} is not a duration: use a whole number with s, m, h or d (e.g. 2h).")
    digits = match.group(1).lstrip("0") or "0"
    seconds = int(digits) * UNITS[match.group(2)] if len(digits) <= 18 else 10**30
    if maximum is not None and seconds > maximum:
        raise InvalidInput(
            f"{what} of {text.strip()} is longer than the longest allowed, {human_seconds(maximum)}"
            " (setting KERNEL_MAX_ESCROW_SECONDS); give a shorter one."
        )
    return seconds


def human_seconds(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


def escrow_holds(db: Database) -> dict[str, str]:
    if not db.rows("SELECT 1 FROM sqlite_master WHERE name = 'escrows'"):
        return {}
    states = ",".join(f"'{s}'" for s in LIVE)
    return {
        ledger.hold_account(f"escrow:{r['id']}"): f"escrow {r['id']}"
        for r in db.rows(f"SELECT id FROM escrows WHERE state IN ({states})")
    }


def escrow_purchase(db: Database, escrow_id: str) -> Purchase | None:
    """What releasing an escrow paid for: the deliverable, handed to the buyer (for the auditor)."""
    row = db.one("SELECT deliverable_id FROM escrows WHERE id = ?", (escrow_id,))
    if row is None or row["deliverable_id"] is None:
        return None
    return Purchase(row["deliverable_id"], f"escrow {escrow_id}", delivered=True)


ledger.HOLD_OWNERS.append(escrow_holds)
PURCHASES["escrow"] = escrow_purchase


def stamp(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


class Court:
    def __init__(self, kernel: Kernel, appeal_runs: int = 3, runner: Callable[[], SuiteRunner] | None = None):
        self.k = kernel
        self.db = kernel.db
        self.appeal_runs = appeal_runs
        self._make_runner = runner or self._sandbox_runner

    def _sandbox_runner(self) -> SuiteRunner:
        self.k.sweep()  # containers and folders of judges that died
        self.k.warm_pool()
        return SuiteRunner(JudgeServices(self.db, self.k.settings, self.k.sandbox, self.k.image()))

    def _runner(self) -> SuiteRunner:
        return self._make_runner()

    # -- reading ------------------------------------------------------------------------
    def show(self, ref: str) -> Escrow:
        row = self.db.by_prefix("escrows", ref, "an escrow", "kernel escrow list")
        return self._escrow(row)

    def escrows(self, state: str | None = None, latest: int | None = None) -> list[Escrow]:
        """Escrows oldest first (with ``latest``: only the newest that many)."""
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        if latest is None:
            rows = self.db.rows(f"SELECT * FROM escrows {where} ORDER BY created_at, id", params)
        else:
            rows = self.db.rows(f"SELECT * FROM escrows {where} ORDER BY created_at DESC, id DESC LIMIT ?",
                                (*params, latest))[::-1]  # fmt: skip
        return [self._escrow(r) for r in rows]

    def _escrow(self, row: dict[str, Any]) -> Escrow:
        verdicts = [
            Verdict.model_validate_json(v["record"])
            for v in self.db.rows("SELECT record FROM verdicts WHERE escrow_id = ? ORDER BY created_at", (row["id"],))
        ]
        history = [
            EscrowEvent(**e)
            for e in self.db.rows(
                "SELECT at, kind, actor, detail FROM escrow_events WHERE escrow_id = ? ORDER BY id", (row["id"],)
            )
        ]
        data = {k: v for k, v in row.items() if k not in ("judging",)}
        return Escrow(**{**data, "expected": json.loads(row["expected"])}, verdicts=verdicts, history=history)

    # -- open and deliver ---------------------------------------------------------------
    def open(
        self, buyer: str, amount: int, tests_ref: str, deadline: str | None = None, dispute_window: str = "0s"
    ) -> Escrow:
        """Collect the suite's test ids in a sandbox, then move ``amount`` into a hold."""
        ledger.require_principal(self.db, buyer)
        self.k.settings.bounds.amount(amount, "--amount")
        tests = store.get(self.db, tests_ref)
        if tests.kind != "tests":
            raise InvalidInput(
                f'artifact {tests.short_id} is a {tests.kind} artifact; give a tests artifact (kind = "tests").'
            )
        if self.k.balance(buyer) < amount:
            raise InsufficientFunds(f"{buyer} has {self.k.balance(buyer)} scrip and cannot lock {amount}.")
        longest = self.k.settings.max_escrow_seconds
        # No deadline given: the longest, so an escrow nobody delivers to still ends.
        deadline_at = stamp(parse_duration(deadline, longest, "--deadline") if deadline is not None else longest)
        window = parse_duration(dispute_window, longest, "--dispute-window")
        expected = self._runner().collect(tests)
        escrow_id = ids.new_id()
        with self.db.transaction() as conn:
            t = now()
            conn.execute(
                "INSERT INTO escrows (id, buyer, amount, tests_id, expected, state, deadline, dispute_window,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                (escrow_id, buyer, amount, tests.id, json.dumps(expected), deadline_at, window, t, t),
            )
            ledger.open_hold(conn, f"escrow:{escrow_id}", buyer, amount, memo=f"escrow {escrow_id}")
            self._event(conn, escrow_id, "opened", buyer, f"{amount} scrip held against {len(expected)} tests")
        return self.show(escrow_id)

    def deliver(self, ref: str, worker: str, artifact_ref: str) -> Escrow:
        escrow = self._refresh(self.show(ref))
        ledger.require_principal(self.db, worker)
        if escrow.state != "open":
            raise EscrowStateError(f"escrow {escrow.id} is {escrow.state}; only an open escrow takes a delivery.")
        if worker == escrow.buyer:
            raise InvalidInput("the buyer cannot deliver to their own escrow.")
        art = store.get(self.db, artifact_ref)
        if art.kind != "code":
            raise InvalidInput(f"artifact {art.short_id} is a {art.kind} artifact; deliver a code artifact.")
        if art.owner != worker:
            raise InvalidInput(f"artifact {art.short_id} belongs to {art.owner}, not {worker}; deliver your own work.")
        tests = store.get(self.db, escrow.tests_id)
        self._check_provides(art, tests.target or "")
        with self.db.transaction() as conn:
            changed = conn.execute(
                "UPDATE escrows SET state = 'delivered', worker = ?, deliverable_id = ?, judge_by = ?, updated_at = ?"
                " WHERE id = ? AND state = 'open'",
                (worker, art.id, self._judge_by(), now(), escrow.id),
            ).rowcount
            if not changed:
                raise EscrowStateError(f"escrow {escrow.id} changed meanwhile; show it and try again.")
            self._event(conn, escrow.id, "delivered", worker, f"artifact {art.id}")
        return self.show(escrow.id)

    def _check_provides(self, art: Artifact, target: str) -> None:
        files = store.read_files(self.k.settings, art.id)
        if not any(p in files for p in store.module_files(target)):
            raise InvalidInput(f"artifact {art.short_id} has no module '{target}', which the suite tests.")

    # -- judge and appeal ---------------------------------------------------------------
    def judge(self, ref: str) -> Escrow:
        escrow = self._refresh(self.show(ref))
        if escrow.state == "open":
            raise EscrowStateError(f"escrow {escrow.id} has no delivery yet; nothing to judge.")
        if escrow.state == "disputed":
            return self._appeal(escrow)  # an appeal whose judge died: run it again
        if escrow.state != "delivered":
            raise EscrowStateError(f"escrow {escrow.id} is already {escrow.state}; a verdict is given once.")
        return self._hear(escrow, "judgement", runs=1)

    def dispute(self, ref: str, principal: str, reason: str) -> Escrow:
        escrow = self._refresh(self.show(ref))
        if principal not in (escrow.buyer, escrow.worker):
            worker = f"the worker ({escrow.worker})" if escrow.worker else "its worker, once one delivers,"
            raise InvalidInput(f"only the buyer ({escrow.buyer}) or {worker} can dispute.")
        if not reason.strip():
            raise InvalidInput("give a --reason for the dispute.")
        if len(reason) > 2000 or not all(c.isprintable() or c in "\n\t" for c in reason):
            raise InvalidInput("a dispute's --reason is at most 2000 printable characters.")
        if escrow.state == "disputed" or any(v.kind == "appeal" for v in escrow.verdicts):
            raise EscrowStateError(f"escrow {escrow.id} was already disputed; the appeal verdict is final.")
        if escrow.state != "judged":
            why = (
                "was settled with no dispute window"
                if escrow.state in ("released", "refunded")
                else f"is {escrow.state}"
            )
            raise EscrowStateError(f"escrow {escrow.id} {why}; only a judged escrow within its window can be disputed.")
        with self.db.transaction() as conn:
            changed = conn.execute(
                "UPDATE escrows SET state = 'disputed', disputed_by = ?, dispute_reason = ?, judge_by = ?,"
                " updated_at = ? WHERE id = ? AND state = 'judged'",
                (principal, reason, self._judge_by(), now(), escrow.id),
            ).rowcount
            if not changed:
                raise EscrowStateError(f"escrow {escrow.id} changed meanwhile; show it and try again.")
            self._event(conn, escrow.id, "disputed", principal, reason)
        return self._appeal(self.show(escrow.id))

    def _appeal(self, escrow: Escrow) -> Escrow:
        return self._hear(escrow, "appeal", runs=self.appeal_runs)

    def _hear(self, escrow: Escrow, kind: str, runs: int) -> Escrow:
        claim = self._claim(escrow)
        try:
            verdict = self._verdict(escrow, kind, runs)
            with self.db.transaction() as conn:
                state = conn.execute("SELECT state, judging FROM escrows WHERE id = ?", (escrow.id,)).fetchone()
                if state[0] != escrow.state or state[1] != claim:
                    raise Busy(f"escrow {escrow.id} was settled by another judge meanwhile.")
                self._event(conn, escrow.id, kind, None, f"{'pass' if verdict.passed else 'fail'}: {verdict.reason}")
                if kind == "appeal" or escrow.dispute_window == 0:
                    verdict.ledger_rows = self._settle(conn, escrow, verdict.passed)
                else:
                    conn.execute(
                        "UPDATE escrows SET state = 'judged', settles_at = ?, updated_at = ? WHERE id = ?",
                        (stamp(min(escrow.dispute_window, self.k.settings.max_escrow_seconds)), now(), escrow.id),
                    )
                conn.execute(
                    "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?, ?)",
                    (verdict.id, escrow.id, kind, verdict.passed, verdict.model_dump_json(), now()),
                )
        finally:
            with self.db.transaction() as conn:
                conn.execute("UPDATE escrows SET judging = NULL WHERE id = ? AND judging = ?", (escrow.id, claim))
        return self.show(escrow.id)

    def _judge_by(self) -> str:
        return stamp(self.k.settings.judge_within_seconds)

    def _claim(self, escrow: Escrow) -> str:
        """Claim the judgement for this process; returns the claim ('TOKEN@EPOCH')."""
        with self.db.transaction() as conn:
            holder = conn.execute("SELECT judging FROM escrows WHERE id = ?", (escrow.id,)).fetchone()[0]
            if holder and holder.partition("@")[0] != process.token() and self._judge_at_work(holder):
                raise Busy(
                    f"escrow {escrow.id} is being judged by another kernel process (pid {holder.split(':')[0]})."
                )
            claim = f"{process.token()}@{time.time():.0f}"
            conn.execute("UPDATE escrows SET judging = ? WHERE id = ?", (claim, escrow.id))
        return claim

    def _judge_at_work(self, holder: str) -> bool:
        """Whether a claim still stands: its process lives (one in another pid namespace,
        which cannot be seen, for as long as a judgement with the most runs can take)."""
        token, _, since = holder.partition("@")
        return not process.lapsed(token, float(since) if since.isdigit() else None, self.k.settings.judge_lease)

    def _verdict(self, escrow: Escrow, kind: str, runs: int) -> Verdict:
        assert escrow.deliverable_id is not None
        tests = store.get(self.db, escrow.tests_id)
        deliverable = store.get(self.db, escrow.deliverable_id)
        runner = self._runner()
        suite_runs: list[SuiteRun] = [runner.judge(tests, deliverable, escrow.expected) for _ in range(runs)]
        passed, reason, per_test, flaky = decide(escrow.expected, suite_runs)
        return Verdict(
            id=ids.new_id(),
            escrow_id=escrow.id,
            kind=kind,  # type: ignore[arg-type]
            passed=passed,
            reason=reason,
            rule=RULE,
            tests=per_test,
            flaky=flaky,
            runs=suite_runs,
            deliverable_digest=deliverable.id,
            tests_digest=tests.id,
            image=runner.image,
            runtime=runner.runtime,
            limits=suite_limits(tests, self.k.settings),
            created_at=datetime.now(UTC),
        )

    def _settle(self, conn: Any, escrow: Escrow, passed: bool) -> list[int]:
        """Pay the hold to the worker (passed) or back to the buyer; one ledger row."""
        to, state, kind = (
            (escrow.worker, "released", "escrow_release") if passed else (escrow.buyer, "refunded", "escrow_refund")
        )
        assert to is not None
        row = ledger.settle_hold(conn, f"escrow:{escrow.id}", to, kind=kind, memo=f"escrow {escrow.id}")
        conn.execute(
            "UPDATE escrows SET state = ?, settles_at = NULL, judge_by = NULL, updated_at = ? WHERE id = ?",
            (state, now(), escrow.id),
        )
        self._event(conn, escrow.id, state, None, f"{escrow.amount} scrip to {to}")
        return [row] if row is not None else []

    # -- time ---------------------------------------------------------------------------
    def expire(self) -> list[Escrow]:
        """Apply what time has decided to every live escrow (see ``_refresh``)."""
        changed = []
        states = ",".join(f"'{s}'" for s in LIVE)
        for row in self.db.rows(f"SELECT id FROM escrows WHERE state IN ({states})"):
            before = self.show(row["id"])
            after = self._refresh(before)
            if after.state != before.state:
                changed.append(after)
        return changed

    def _refresh(self, escrow: Escrow) -> Escrow:
        """Apply what time has decided, so every escrow has an end.

        open past its deadline: refunded. judged past its window: the verdict is paid.
        delivered with no verdict by ``judge_by`` (the engine kept failing, nobody asked):
        refunded, no verdict. disputed with no appeal verdict by then: the judgement stands.
        A judge still at work (a live process holds the claim) is not overtaken.
        """
        t = datetime.now(UTC)
        s = self.k.settings
        # Escrows written before these bounds (or by an older kernel) may lack a date or have a
        # far one: the bound applies from when the escrow last changed.
        longest = escrow.updated_at + timedelta(seconds=s.max_escrow_seconds)
        judging = escrow.updated_at + timedelta(seconds=s.judge_within_seconds)
        due = {
            "open": min(escrow.deadline or longest, escrow.created_at + timedelta(seconds=s.max_escrow_seconds)),
            "judged": min(escrow.settles_at or longest, longest),
            "delivered": escrow.judge_by or judging,
            "disputed": escrow.judge_by or judging,
        }.get(escrow.state)
        if due is None or due > t or self.db.read_only:  # a read-only home is shown as it is
            return escrow
        with self.db.transaction() as conn:
            state, holder = conn.execute("SELECT state, judging FROM escrows WHERE id = ?", (escrow.id,)).fetchone()
            if state != escrow.state or (holder and self._judge_at_work(holder)):
                return self.show(escrow.id)
            if state == "open":
                self._event(conn, escrow.id, "expired", None, "deadline passed without a delivery")
                self._settle(conn, escrow, passed=False)
            elif state == "delivered":
                self._event(conn, escrow.id, "unjudged", None, "no verdict was reached in time; the buyer is refunded")
                self._settle(conn, escrow, passed=False)
            else:
                if state == "disputed":
                    self._event(
                        conn, escrow.id, "unheard", None, "the appeal was not heard in time; the judgement stands"
                    )
                verdict = next(v for v in reversed(escrow.verdicts) if v.kind == "judgement")
                rows = self._settle(conn, escrow, verdict.passed)
                verdict.ledger_rows = rows
                conn.execute("UPDATE verdicts SET record = ? WHERE id = ?", (verdict.model_dump_json(), verdict.id))
        return self.show(escrow.id)

    @staticmethod
    def _event(conn: Any, escrow_id: str, kind: str, actor: str | None, detail: str) -> None:
        conn.execute(
            "INSERT INTO escrow_events (escrow_id, at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)",
            (escrow_id, now(), kind, actor, detail),
        )


__all__ = ["Court", "JudiciaryError", "parse_duration"]
