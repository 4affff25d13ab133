"""Invocation logic on the fake backend: statuses, payment, refunds, rejection, recovery."""

import json
from pathlib import Path

import pytest

from kernel import runs
from kernel.api import Kernel
from kernel.errors import InvalidInput
from kernel.models import Limits, RunStatus
from kernel.sandbox.base import SandboxOutcome, SandboxSpec
from kernel.sandbox.fake import FakeSandbox, returns
from kernel.settings import Settings
from tests.conftest import PackageFactory

CODE = "def main(v):\n    return v\n"


def script(outcome: SandboxOutcome, result: dict | None):  # type: ignore[no-untyped-def]
    return lambda spec: (outcome, result)


@pytest.fixture
def priced(fake_kernel: Kernel, make_pkg: PackageFactory) -> str:
    return fake_kernel.submit(make_pkg(CODE, price=4), "alice").artifact.id


def test_ok_run_pays_the_owner(fake_kernel: Kernel, priced: str) -> None:
    fake_kernel._sandbox = FakeSandbox(returns({"echo": 1}))
    r = fake_kernel.invoke(priced, "bob", {"x": 1})
    assert (r.status, r.output, r.cost) == (RunStatus.OK, {"echo": 1}, 4)
    assert fake_kernel.balance("bob") == 6 and fake_kernel.balance("alice") == 104
    assert r.usage.cpu_seconds > 0 and r.usage.bytes_in > 0
    assert fake_kernel.run(r.id[:8]) == r


def test_spec_is_locked_down(fake_kernel: Kernel, priced: str) -> None:
    sandbox = FakeSandbox()
    fake_kernel._sandbox = sandbox
    fake_kernel.invoke(priced, "bob", None)
    spec = sandbox.specs[0]
    targets = {m.target: m.read_only for m in spec.mounts}
    assert targets == {
        "/kernel/pkg": True,
        "/kernel/in": True,
        "/kernel/out": False,
        "/work": False,
        "/kernel/sock": False,
    }
    assert spec.shape.uid != 0 and spec.shape.pids_limit == Settings().pids_runc
    assert spec.limits == Settings().default_limits


@pytest.mark.parametrize(
    "outcome, result, status, reason",
    [
        (
            SandboxOutcome(exit_code=0),
            {"ok": False, "error": "ValueError: bad"},
            RunStatus.ERROR,
            "raised ValueError: bad",
        ),
        (SandboxOutcome(exit_code=0), None, RunStatus.ERROR, "without returning a value"),
        (SandboxOutcome(timed_out=True), None, RunStatus.TIMEOUT, "wall limit"),
        (SandboxOutcome(cpu_exceeded=True), None, RunStatus.TIMEOUT, "CPU limit"),
        (SandboxOutcome(exit_code=152), None, RunStatus.TIMEOUT, "CPU limit"),
        (SandboxOutcome(output_exceeded=True), None, RunStatus.OUTPUT_LIMIT, "printed more than"),
        (SandboxOutcome(exit_code=137, oom_killed=True), None, RunStatus.MEMORY_LIMIT, "memory limit"),
        (SandboxOutcome(exit_code=0), {"ok": False, "error": "MemoryError: "}, RunStatus.MEMORY_LIMIT, "out of memory"),
        (SandboxOutcome(pids_exhausted=True), None, RunStatus.KILLED, "process limit"),
        (SandboxOutcome(died=True), None, RunStatus.KILLED, "sandbox stopped"),
    ],
)
def test_failures_refund_the_caller(
    fake_kernel: Kernel, priced: str, outcome: SandboxOutcome, result: dict | None, status: RunStatus, reason: str
) -> None:
    fake_kernel._sandbox = FakeSandbox(script(outcome, result))
    r = fake_kernel.invoke(priced, "bob", None)
    assert r.status is status and reason in (r.reason or "")
    assert r.cost == 0 and r.output is None
    assert fake_kernel.balance("bob") == 10 and fake_kernel.balance("alice") == 100


def test_oversized_result_is_an_output_limit(fake_kernel: Kernel, priced: str) -> None:
    fake_kernel._sandbox = FakeSandbox(returns("x" * (fake_kernel.settings.result_bytes + 1)))
    r = fake_kernel.invoke(priced, "bob", None)
    assert r.status is RunStatus.OUTPUT_LIMIT and "above the cap" in (r.reason or "")


def test_caller_who_cannot_pay_is_rejected_before_anything_starts(
    fake_kernel: Kernel, make_pkg: PackageFactory
) -> None:
    art = fake_kernel.submit(make_pkg(CODE, price=50), "alice").artifact
    sandbox = FakeSandbox()
    fake_kernel._sandbox = sandbox
    r = fake_kernel.invoke(art.id, "bob", None)
    assert r.status is RunStatus.REJECTED and "cannot pay the price of 50" in (r.reason or "")
    assert sandbox.specs == [] and fake_kernel.balance("bob") == 10


def test_limits_above_maximum_are_rejected(settings: Settings, make_pkg: PackageFactory) -> None:
    k = Kernel(settings, sandbox=FakeSandbox(), image="fake:1")
    k.create_principal("alice", 10)
    art = k.submit(make_pkg(CODE, limits={"wall_seconds": 100}), "alice").artifact
    k.settings.max_limits = Limits(cpu_seconds=10, memory_mb=256, wall_seconds=50)
    r = k.invoke(art.id, "alice", None)
    assert r.status is RunStatus.REJECTED and "wall_seconds 100 > 50" in (r.reason or "")


def test_bad_inputs(fake_kernel: Kernel, priced: str, make_pkg: PackageFactory) -> None:
    with pytest.raises(InvalidInput, match="larger than"):
        fake_kernel.invoke(priced, "bob", "x" * fake_kernel.settings.max_input_bytes)
    with pytest.raises(InvalidInput, match="not JSON-serialisable"):
        fake_kernel.invoke(priced, "bob", float("nan"))
    tests_art = fake_kernel.submit(make_pkg(None, kind="tests", entrypoint=None, extra='target = "art"'), "alice")
    with pytest.raises(InvalidInput, match="only code can be invoked"):
        fake_kernel.invoke(tests_art.artifact.id, "bob", None)
    assert fake_kernel.runs() == []


def test_input_reaches_the_sandbox(fake_kernel: Kernel, priced: str) -> None:
    seen: list[dict] = []

    def capture(spec: SandboxSpec):  # type: ignore[no-untyped-def]
        inputs = next(m.source for m in spec.mounts if m.target == "/kernel/in")
        seen.append({f.name: json.loads(f.read_text()) for f in Path(inputs).iterdir()})
        return SandboxOutcome(exit_code=0), {"ok": True, "value": None}

    fake_kernel._sandbox = FakeSandbox(capture)
    fake_kernel.invoke(priced, "bob", {"n": 3})
    assert seen == [{"input.json": {"n": 3}, "call.json": {"entrypoint": "art:main"}}]


def test_recovery_refunds_runs_of_a_dead_kernel(fake_kernel: Kernel, priced: str) -> None:
    from kernel import ledger

    with fake_kernel.db.transaction() as conn:
        conn.execute(
            "INSERT INTO runs (id, artifact_id, principal, state, owner_process, started_at)"
            " VALUES ('deadbeef00000000', ?, 'bob', 'running', '999999999:1', '2026-01-01T00:00:00+00:00')",
            (priced,),
        )
        ledger.open_hold(conn, "run:deadbeef00000000", "bob", 4, run_id="deadbeef00000000")
    assert fake_kernel.balance("bob") == 6
    assert runs.recover(fake_kernel.db) == ["deadbeef00000000"]
    r = fake_kernel.run("deadbeef")
    assert r.status is RunStatus.KILLED and "kernel process running it stopped" in (r.reason or "")
    assert fake_kernel.balance("bob") == 10
    assert runs.recover(fake_kernel.db) == []


def test_runs_list_newest_first(fake_kernel: Kernel, priced: str) -> None:
    ids = [fake_kernel.invoke(priced, "bob", i).id for i in range(3)]
    assert [r.id for r in fake_kernel.runs()] == ids[::-1]
    assert [r.id for r in fake_kernel.runs(principal="alice")] == []


def test_lost_file_events_mark_the_run_incomplete(
    fake_kernel: Kernel, priced: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernel.audit.files import WorkspaceWatcher

    real_stop = WorkspaceWatcher.stop

    def overflowed(self: WorkspaceWatcher) -> list[str]:
        if not self.stopped:
            self.problems.append("the inotify queue overflowed; some file events were lost")
        return real_stop(self)

    monkeypatch.setattr(WorkspaceWatcher, "stop", overflowed)
    r = fake_kernel.invoke(priced, "bob", None)
    assert r.status is RunStatus.OK and r.audit_incomplete
    gaps = [e for e in fake_kernel.events(run_id=r.id) if e.op == "audit_incomplete"]
    assert [e.detail for e in gaps] == ["the inotify queue overflowed; some file events were lost"]
    assert not gaps[0].ok


def test_complete_runs_are_not_marked(fake_kernel: Kernel, priced: str) -> None:
    r = fake_kernel.invoke(priced, "bob", None)
    assert not r.audit_incomplete
    ops = [(e.source, e.op) for e in fake_kernel.events(run_id=r.id)]
    assert ops[:2] == [("kernel", "copy_in"), ("kernel", "copy_in")] and ("kernel", "copy_out") in ops


def test_audit_rows_per_run_are_bounded_and_the_overflow_is_a_recorded_gap(fake_kernel: Kernel, priced: str) -> None:
    fake_kernel.audit.per_run = 3
    r = fake_kernel.invoke(priced, "bob", None)
    assert r.status is RunStatus.OK and r.audit_incomplete
    events = fake_kernel.events(run_id=r.id)
    gaps = [e for e in events if e.op == "audit_incomplete"]
    assert len(events) == 4 and [e.ok for e in gaps] == [False, False]
    assert "reached 3 audit events" in (gaps[0].detail or "")
    assert "events of this run were not recorded" in (gaps[1].detail or "")
    assert fake_kernel.audit._counts == {} and fake_kernel.audit._dropped == {}  # forgotten when the run ended


def test_the_audit_writer_counts_what_it_leaves_out(tmp_path: Path) -> None:
    from kernel.audit.log import AuditWriter
    from kernel.db import Database

    Database(tmp_path / "k.db").close()
    w = AuditWriter(tmp_path / "k.db", per_run=5)
    for i in range(12):
        w.record("run1", "bob", "proxy", "read_artifact", path=str(i))
        w.record("run2", "bob", "proxy", "balance")
    assert w.end_run("run1") == 8 and w.end_run("run2") == 8 and w.end_run("run1") == 0
    w.close()
    db = Database(tmp_path / "k.db")
    rows = db.rows("SELECT op, path, ok, detail FROM audit_events WHERE run_id = 'run1' ORDER BY id")
    assert [r["path"] for r in rows[:4]] == ["0", "1", "2", "3"]
    assert [r["op"] for r in rows[4:]] == ["audit_incomplete", "audit_incomplete"] and len(rows) == 6
    assert rows[-1]["detail"].startswith("8 events of this run were not recorded")


def test_deep_inputs_are_refused_before_anything_runs(fake_kernel: Kernel, priced: str) -> None:
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    cyclic: list[object] = []
    cyclic.append(cyclic)
    for value in (deep, cyclic):
        with pytest.raises(InvalidInput, match="nests deeper than 100 levels"):
            fake_kernel.invoke(priced, "bob", value)
    assert fake_kernel.runs() == []


def test_a_run_owned_from_another_pid_namespace_is_recovered_after_its_lease(fake_kernel: Kernel, priced: str) -> None:
    from kernel import ledger
    from kernel.db import now

    def orphan(run_id: str, started: str) -> None:
        with fake_kernel.db.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, artifact_id, principal, state, owner_process, started_at)"
                " VALUES (?, ?, 'bob', 'running', '7:12345:4026599999', ?)",
                (run_id, priced, started),
            )
            ledger.open_hold(conn, f"run:{run_id}", "bob", 4, run_id=run_id)

    orphan("a" * 16, now())
    orphan("b" * 16, "2000-01-01T00:00:00.000000+00:00")
    assert runs.recover(fake_kernel.db, lease=3600) == ["b" * 16]  # the young one may still be at work
    assert fake_kernel.balance("bob") == 6
    assert runs.recover(fake_kernel.db, lease=0) == ["a" * 16]
    assert fake_kernel.balance("bob") == 10
