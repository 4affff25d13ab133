"""The court's state machine and money on a scripted runner (no Docker): bad input, expiry,
disputes, and the rule that no path pays twice."""

import time
from collections.abc import Callable, Iterator

import pytest

from judiciary.court import Court, parse_duration
from judiciary.errors import EscrowStateError, SuiteError
from judiciary.models import SuiteRun, TestOutcome
from kernel.api import Kernel
from kernel.errors import InsufficientFunds, InvalidInput, NotFound
from tests.conftest import PackageFactory

IDS = ["test_s.py::test_a", "test_s.py::test_b"]


class ScriptedRunner:
    """Collects IDS; each judge() returns the next scripted outcome list."""

    image, runtime = "fake:1", "runc"

    def __init__(self, outcomes: list[list[str]] | None = None, collect: list[str] | Exception | None = None):
        self.outcomes = outcomes or [["passed", "passed"]]
        self._collect = IDS if collect is None else collect
        self.judged = 0

    def collect(self, tests: object) -> list[str]:
        if isinstance(self._collect, Exception):
            raise self._collect
        return list(self._collect)

    def judge(self, tests: object, deliverable: object, expected: list[str]) -> SuiteRun:
        outcomes = self.outcomes[min(self.judged, len(self.outcomes) - 1)]
        self.judged += 1
        tests_ = [TestOutcome(nodeid=n, outcome=o) for n, o in zip(expected, outcomes, strict=True)]  # type: ignore[arg-type]
        return SuiteRun(status="ok", exit_code=0, report_exit_code=0, tests=tests_, canary="failed")


@pytest.fixture
def world(fake_kernel: Kernel, make_pkg: PackageFactory) -> Iterator[Callable[..., tuple[Court, str, str]]]:
    import judiciary.court  # noqa: F401 - registers escrow holds with the ledger check

    tests = fake_kernel.submit(
        make_pkg(
            None, kind="tests", entrypoint=None, extra='target = "sorter"', files={"test_s.py": "def test_a(): pass\n"}
        ),
        "alice",
    ).artifact.id
    work = fake_kernel.submit(
        make_pkg(None, files={"sorter.py": "def sort(x):\n    return sorted(x)\n"}, entrypoint="sorter:sort"), "bob"
    ).artifact.id

    def make(runner: ScriptedRunner | None = None) -> tuple[Court, str, str]:
        r = runner or ScriptedRunner()
        return Court(fake_kernel, appeal_runs=3, runner=lambda: r), tests, work  # type: ignore[arg-type,return-value]

    yield make
    assert fake_kernel.ledger_check().ok, fake_kernel.ledger_check().problems


def test_honest_delivery_is_paid(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world()
    e = court.open("alice", 30, tests)
    assert e.state == "open" and e.expected == IDS and fake_kernel.balance("alice") == 70
    assert fake_kernel.ledger_check().holds_total == 30
    court.deliver(e.id, "bob", work)
    e = court.judge(e.id[:8])
    assert e.state == "released" and e.verdicts[0].passed and e.verdicts[0].ledger_rows
    assert fake_kernel.balance("bob") == 40 and fake_kernel.balance("alice") == 70
    assert [h.kind for h in e.history] == ["opened", "delivered", "judgement", "released"]


def test_failing_delivery_refunds(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world(ScriptedRunner([["passed", "skipped"]]))
    e = court.open("alice", 30, tests)
    court.deliver(e.id, "bob", work)
    e = court.judge(e.id)
    assert e.state == "refunded" and "test_s.py::test_b (skipped)" in e.verdicts[0].reason
    assert fake_kernel.balance("alice") == 100 and fake_kernel.balance("bob") == 10


@pytest.mark.parametrize(
    "amount, message", [(0, "positive whole number"), (-3, "positive whole number"), (101, "cannot lock 101")]
)
def test_bad_amounts_move_nothing(world, fake_kernel: Kernel, amount: int, message: str) -> None:  # type: ignore[no-untyped-def]
    court, tests, _ = world()
    with pytest.raises((InvalidInput, InsufficientFunds), match=message):
        court.open("alice", amount, tests)
    assert fake_kernel.balance("alice") == 100 and court.escrows() == []


def test_unusable_suites_are_refused_at_open(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world(ScriptedRunner(collect=SuiteError("contains no tests")))
    with pytest.raises(SuiteError, match="no tests"):
        court.open("alice", 5, tests)
    with pytest.raises(InvalidInput, match="give a tests artifact"):
        court.open("alice", 5, work)
    with pytest.raises(NotFound):
        court.open("alice", 5, "abcdef99")
    assert fake_kernel.balance("alice") == 100 and court.escrows() == []


def test_delivery_rules(world, fake_kernel: Kernel, make_pkg: PackageFactory) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world()
    e = court.open("alice", 10, tests)
    with pytest.raises(InvalidInput, match="buyer cannot deliver to their own escrow"):
        court.deliver(e.id, "alice", work)
    fake_kernel.create_principal("carol")
    with pytest.raises(InvalidInput, match="belongs to bob, not carol"):
        court.deliver(e.id, "carol", work)
    other = fake_kernel.submit(make_pkg("def main(v):\n    return v\n"), "carol").artifact.id
    with pytest.raises(InvalidInput, match="no module 'sorter'"):
        court.deliver(e.id, "carol", other)
    court.deliver(e.id, "bob", work)
    with pytest.raises(EscrowStateError, match="only an open escrow takes a delivery"):
        court.deliver(e.id, "bob", work)
    court.judge(e.id)
    with pytest.raises(EscrowStateError, match="already released"):
        court.judge(e.id)
    with pytest.raises(EscrowStateError, match="only an open escrow"):
        court.deliver(e.id, "bob", work)


def test_deadline_refunds_and_blocks_late_delivery(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world()
    e = court.open("alice", 25, tests, deadline="1s")
    kept = court.open("alice", 5, tests, deadline="1h")
    time.sleep(1.2)
    with pytest.raises(EscrowStateError, match="is refunded"):
        court.deliver(e.id, "bob", work)
    assert court.show(e.id).history[-2].kind == "expired"
    assert court.expire() == []  # already settled by the late delivery attempt
    assert fake_kernel.balance("alice") == 95 and court.show(kept.id).state == "open"


def test_expire_sweeps(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    court, tests, _ = world()
    e = court.open("alice", 25, tests, deadline="1s")
    time.sleep(1.2)
    assert [x.id for x in court.expire()] == [e.id]
    assert court.show(e.id).state == "refunded" and fake_kernel.balance("alice") == 100


def test_dispute_window_defers_payment_and_the_appeal_is_final(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    runner = ScriptedRunner([["passed", "passed"], ["passed", "failed"], ["passed", "passed"], ["passed", "passed"]])
    court, tests, work = world(runner)
    e = court.open("alice", 30, tests, dispute_window="1h")
    court.deliver(e.id, "bob", work)
    e = court.judge(e.id)
    assert e.state == "judged" and e.verdicts[0].passed and fake_kernel.balance("bob") == 10  # not paid yet
    with pytest.raises(InvalidInput, match="only the buyer"):
        court.dispute(e.id, "mallory", "no")
    e = court.dispute(e.id, "alice", "test_b failed for me")
    appeal = e.verdicts[-1]
    assert appeal.kind == "appeal" and not appeal.passed and appeal.flaky == ["test_s.py::test_b"]
    assert "flaky" in appeal.rule and len(appeal.runs) == 3
    assert e.state == "refunded" and fake_kernel.balance("alice") == 100 and fake_kernel.balance("bob") == 10
    with pytest.raises(EscrowStateError, match="already disputed"):
        court.dispute(e.id, "bob", "again")


def test_window_closing_pays_out(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world()
    e = court.open("alice", 30, tests, dispute_window="1s")
    court.deliver(e.id, "bob", work)
    court.judge(e.id)
    time.sleep(1.2)
    with pytest.raises(EscrowStateError, match="settled with no dispute window|only a judged escrow"):
        court.dispute(e.id, "alice", "too late")
    e = court.show(e.id)
    assert e.state == "released" and e.verdicts[0].ledger_rows and fake_kernel.balance("bob") == 40


def test_settled_without_window_cannot_be_disputed(world) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world()
    e = court.open("alice", 30, tests)
    court.deliver(e.id, "bob", work)
    court.judge(e.id)
    with pytest.raises(EscrowStateError, match="settled with no dispute window"):
        court.dispute(e.id, "alice", "no")


def test_unknown_escrow_ids(world) -> None:  # type: ignore[no-untyped-def]
    court, _, work = world()
    for action in (
        lambda: court.show("abcdef1234"),
        lambda: court.deliver("abcdef1234", "bob", work),
        lambda: court.judge("abcdef1234"),
        lambda: court.dispute("abcdef1234", "bob", "why"),
    ):
        with pytest.raises(NotFound, match="no escrow with id 'abcdef1234'"):
            action()
    with pytest.raises(InvalidInput, match="not an escrow id"):
        court.show("zz")


def test_judging_needs_a_delivery(world) -> None:  # type: ignore[no-untyped-def]
    court, tests, _ = world()
    e = court.open("alice", 3, tests)
    with pytest.raises(EscrowStateError, match="no delivery yet"):
        court.judge(e.id)


def test_durations() -> None:
    assert [parse_duration(x) for x in ("90s", "10m", "2h", "3d")] == [90, 600, 7200, 259200]
    with pytest.raises(InvalidInput, match="not a duration"):
        parse_duration("soon")


def test_durations_have_an_upper_bound() -> None:
    assert parse_duration("366d", 366 * 86400) == 366 * 86400
    for text in ("367d", "3000000d", "99999999999999d", "1" * 5000 + "s"):
        with pytest.raises(InvalidInput, match="longer than the longest allowed, 366d"):
            parse_duration(text, 366 * 86400, "--deadline")
    for text in ("2h;", "\u0663d", "-1d", "1.5h", ""):
        with pytest.raises(InvalidInput, match="not a duration"):
            parse_duration(text)


def test_an_escrow_cannot_be_locked_for_ever(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    court, tests, _ = world()
    for option in ({"deadline": "3000000d"}, {"dispute_window": "3000000d"}, {"deadline": "99999999999999d"}):
        with pytest.raises(InvalidInput, match="longer than the longest allowed"):
            court.open("alice", 5, tests, **option)
    with pytest.raises(InvalidInput, match="above the largest amount"):
        court.open("alice", 10**25, tests)
    assert court.escrows() == [] and fake_kernel.balance("alice") == 100
    # the longest window still gives a date the judge can write
    e = court.open("alice", 5, tests, dispute_window="366d", deadline="366d")
    assert e.deadline is not None and e.dispute_window == 366 * 86400


class BrokenEngine(ScriptedRunner):
    def judge(self, tests: object, deliverable: object, expected: list[str]) -> SuiteRun:
        from kernel.errors import SandboxError

        raise SandboxError("the Docker engine failed during run x: 500 Server Error")


def test_a_delivery_nobody_can_judge_ends_refunded(world, fake_kernel: Kernel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kernel.errors import SandboxError

    court, tests, work = world(BrokenEngine())
    monkeypatch.setattr(fake_kernel.settings, "judge_within_seconds", 1)
    e = court.open("alice", 25, tests)
    court.deliver(e.id, "bob", work)
    with pytest.raises(SandboxError):
        court.judge(e.id)  # the engine fails: the escrow stays delivered, its claim released
    assert court.show(e.id).state == "delivered" and court.show(e.id).judge_by is not None
    time.sleep(1.2)
    assert [x.id for x in court.expire()] == [e.id]
    e = court.show(e.id)
    assert e.state == "refunded" and e.history[-2].kind == "unjudged" and fake_kernel.balance("alice") == 100
    assert e.judge_by is None


def test_an_appeal_nobody_can_hear_leaves_the_judgement_standing(world, fake_kernel: Kernel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kernel.errors import SandboxError

    runner = ScriptedRunner()
    court, tests, work = world(runner)
    monkeypatch.setattr(fake_kernel.settings, "judge_within_seconds", 1)
    e = court.open("alice", 30, tests, dispute_window="1h")
    court.deliver(e.id, "bob", work)
    assert court.judge(e.id).state == "judged"
    monkeypatch.setattr(runner, "judge", BrokenEngine().judge)
    with pytest.raises(SandboxError):
        court.dispute(e.id, "alice", "I disagree")
    assert court.show(e.id).state == "disputed"
    time.sleep(1.2)
    court.expire()
    e = court.show(e.id)
    assert e.state == "released" and "unheard" in [h.kind for h in e.history]
    assert fake_kernel.balance("bob") == 40 and e.verdicts[0].ledger_rows


def test_expiry_does_not_overtake_a_live_judge(world, fake_kernel: Kernel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kernel import process

    court, tests, work = world()
    monkeypatch.setattr(fake_kernel.settings, "judge_within_seconds", 1)
    e = court.open("alice", 25, tests)
    court.deliver(e.id, "bob", work)
    with fake_kernel.db.transaction() as conn:
        conn.execute("UPDATE escrows SET judging = ? WHERE id = ?", (process.token(), e.id))
    time.sleep(1.2)
    assert court.expire() == [] and court.show(e.id).state == "delivered"


def test_an_escrow_opened_without_a_deadline_still_ends(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    court, tests, _ = world()
    e = court.open("alice", 5, tests)
    assert e.deadline is not None
    longest = timedelta(seconds=fake_kernel.settings.max_escrow_seconds)
    assert abs(e.deadline - (datetime.now(UTC) + longest)) < timedelta(minutes=1)
    with pytest.raises(InvalidInput, match="not a duration"):
        court.open("alice", 5, tests, deadline="")


def test_a_dispute_reason_is_bounded_text(world) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world()
    e = court.open("alice", 30, tests, dispute_window="1h")
    court.deliver(e.id, "bob", work)
    court.judge(e.id)
    for reason in ("x" * 2001, "clear\x1b[2J", "nul\x00"):
        with pytest.raises(InvalidInput, match="at most 2000 printable characters"):
            court.dispute(e.id, "alice", reason)
    assert court.show(e.id).state == "judged"
    with pytest.raises(InvalidInput, match="its worker, once one delivers"):
        court.dispute(court.open("alice", 5, tests).id, "mallory", "why")


def foreign_token(pid: int = 7) -> str:
    return f"{pid}:12345:4026599999"  # a process in a pid namespace this one cannot see


def test_a_claim_from_another_pid_namespace_lapses_after_the_longest_judgement(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world()
    e = court.open("alice", 30, tests)
    court.deliver(e.id, "bob", work)
    fresh = f"{foreign_token()}@{time.time():.0f}"
    with fake_kernel.db.transaction() as conn:
        conn.execute("UPDATE escrows SET judging = ? WHERE id = ?", (fresh, e.id))
    from judiciary.errors import Busy

    with pytest.raises(Busy, match="being judged by another kernel process"):
        court.judge(e.id)  # it may still be at work: it cannot be seen from here
    stale = f"{foreign_token()}@{time.time() - 10 * 86400:.0f}"
    with fake_kernel.db.transaction() as conn:
        conn.execute("UPDATE escrows SET judging = ? WHERE id = ?", (stale, e.id))
    assert court.judge(e.id).state == "released"  # longer than any judgement can take: the claim lapsed


def test_escrows_written_before_the_bounds_still_end(world, fake_kernel: Kernel) -> None:  # type: ignore[no-untyped-def]
    court, tests, work = world()
    old = court.open("alice", 10, tests)
    judged = court.open("alice", 10, tests, dispute_window="1h")
    court.deliver(judged.id, "bob", work)
    long_ago = "2000-01-01T00:00:00.000000+00:00"
    with fake_kernel.db.transaction() as conn:  # as an older kernel wrote them: no deadline, a huge window
        conn.execute("UPDATE escrows SET deadline = NULL, created_at = ?, updated_at = ? WHERE id = ?",
                     (long_ago, long_ago, old.id))  # fmt: skip
        conn.execute("UPDATE escrows SET dispute_window = ? WHERE id = ?", (3_000_000 * 86400, judged.id))
    assert court.judge(judged.id).state == "judged"  # the window is clamped to the longest: no overflow
    assert court.show(judged.id).settles_at is not None
    assert [x.id for x in court.expire()] == [old.id]
    assert court.show(old.id).state == "refunded"
