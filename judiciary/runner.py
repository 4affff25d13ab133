"""Building and running a suite: collection at open, judging later, each in fresh sandboxes.

A judgement uses two containers, both hardened like every run and both under the suite's
limits. The suite's container holds the suite (a per-judgement copy, read-only) at
/judge/tests, the launcher's spec at /kernel/in and a scratch workspace at /work; pytest
runs there with rootdir and confcutdir at /judge/tests and the judiciary's own ini file.
No file of the deliverable is in it. The deliverable's container (its own user, its own
workspace) holds the package at /kernel/pkg and serves the target module over a link that
the kernel relays; the suite imports the target as a stand-in whose calls cross that link.
The outcome comes back over a report socket only the launcher holds, and is read after
the deliverable's container is gone. Collection at open runs the suite's container alone,
against a placeholder for the target.
"""

import json
import secrets
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judiciary.errors import SuiteError
from judiciary.link import Relay, ReportSink
from judiciary.models import LinkRecord, SuiteRun
from judiciary.report import read_report, suite_run
from kernel import store
from kernel.db import Database
from kernel.models import Artifact, Limits
from kernel.runs import limit_status, owner_labels, sandbox_spec, shape
from kernel.sandbox.base import SOCKET_DIR, Dir, Sandbox, SandboxOutcome, Shape, Slot, Stop
from kernel.sandbox.scratch import stage
from kernel.settings import Settings

LAUNCHER = ["python3", "-I", "/opt/kernel/kernel_judge.py"]
HOST = ["python3", "-I", "/opt/kernel/kernel_host.py"]
BASE_ARGS = ["/judge/tests", "--rootdir=/judge/tests", "--confcutdir=/judge/tests", "-c", "/opt/kernel/judge.ini"]
NO_TESTS = 5  # pytest's exit status when nothing was collected
MiB = 1024 * 1024
REPORT_CAP = 8 * MiB
DELIVERABLE_GRACE = 5  # extra wall seconds for the deliverable: the suite's own limit ends a slow judgement

STANDIN = '''\
"""A stand-in for the module under test, used only to list the suite's tests."""

__all__ = []  # `from target import *` imports nothing (names used inside tests are looked up when they run)


class _Placeholder:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Placeholder()

    def __getattr__(self, name):
        return _Placeholder()

    def __iter__(self):
        return iter(())


def __getattr__(name):
    return _Placeholder()
'''
CANARY_WORDS = ["edge", "extra", "more", "cases", "inputs", "order", "values", "basic", "misc", "checks", "regression"]


@dataclass
class RawRun:
    """What one suite run left: the report body (or None and why), as the host saw it."""

    body: dict[str, Any] | None
    status: str
    problem: str | None
    exit_code: int | None
    wall: float
    deliverable_status: str | None = None
    deliverable_problem: str | None = None
    link_bytes: dict[str, int] = field(default_factory=dict)


@dataclass
class JudgeServices:
    db: Database
    settings: Settings
    sandbox: Sandbox
    image: str


def suite_limits(tests: Artifact, settings: Settings) -> Limits:
    return tests.limits.over(settings.default_limits) if tests.limits else settings.default_limits


class SuiteRunner:
    def __init__(self, services: JudgeServices):
        self.s = services

    @property
    def image(self) -> str:
        return self.s.image

    @property
    def runtime(self) -> str:
        return self.s.sandbox.runtime(self.s.settings.runtime)

    def collect(self, tests: Artifact) -> list[str]:
        """The suite's test ids, collected against a stand-in for the target module."""
        assert tests.target is not None
        raw = self._run(tests, None)
        body = raw.body
        if body is None or raw.status != "ok":
            raise SuiteError(f"could not collect the suite: {raw.problem or raw.status}.")
        errors = body.get("collect_errors") or []
        if errors:
            first = errors[0]
            raise SuiteError(f"the suite cannot be collected ({first['nodeid'] or 'session'}): {first['error'][-600:]}")
        if body.get("shadowed"):
            raise SuiteError(
                f"the suite's target '{tests.target}' is also a module the sandbox already has"
                f" ({body['shadowed']}): the suite would test that instead of the deliverable; name the"
                " deliverable's module differently."
            )
        suite_files = store.read_files(self.s.settings, tests.id)
        if any(p in suite_files for p in store.module_files(tests.target)):
            raise SuiteError(
                f"the suite ships its own module '{tests.target}', which would shadow the deliverable's;"
                " remove it from the tests artifact."
            )
        if body.get("exit_code") == NO_TESTS or not body.get("collected"):
            raise SuiteError(
                f"tests artifact {tests.short_id} contains no tests; add test_*.py files with test functions."
            )
        return list(body["collected"])

    def judge(self, tests: Artifact, deliverable: Artifact, expected: list[str]) -> SuiteRun:
        files = list(store.read_files(self.s.settings, tests.id))
        canary = canary_name(files, expected)
        raw = self._run(tests, deliverable, canary)
        run = suite_run(raw.status, raw.problem, raw.exit_code, raw.body, expected, canary, raw.wall)
        run.deliverable_status = raw.deliverable_status
        link = (raw.body or {}).get("link") or {}
        run.link = LinkRecord(
            calls=int(link.get("calls") or 0),
            bytes_to_deliverable=raw.link_bytes.get("to_deliverable", 0),
            bytes_to_suite=raw.link_bytes.get("to_suite", 0),
            untrusted_operations=int(link.get("untrusted_operations") or 0),
            broken=link.get("broken"),
            broken_during=link.get("broken_during"),
            not_judgeable=link.get("not_judgeable"),
            not_judgeable_during=link.get("not_judgeable_during"),
        )
        if raw.deliverable_problem:  # the likely cause of whatever else went wrong
            run.problem = raw.deliverable_problem
        elif run.link.broken and (run.problem is None or run.status == "ok"):
            where = f" during {run.link.broken_during}" if run.link.broken_during else ""
            run.problem = f"the link to the deliverable broke{where}: {run.link.broken}"
        elif run.link.not_judgeable and run.status == "ok":
            where = f" {run.link.not_judgeable_during}" if run.link.not_judgeable_during else " the suite"
            run.problem = f"not judgeable:{where} asked for {run.link.not_judgeable}"
        elif run.problem is None and raw.body is not None and all(t.outcome == "passed" for t in run.tests):
            run.problem = untested(raw.body, tests.target or "", expected)  # a pass must have tested the deliverable
        return run

    def _run(self, tests: Artifact, deliverable: Artifact | None, canary: str | None = None) -> RawRun:
        s = self.s.settings
        run_id = f"judge-{secrets.token_hex(6)}"
        limits = suite_limits(tests, s)
        closers: list[Any] = []
        stop = Stop()
        closers.append(stop)
        slot = self.s.sandbox.slot(self._suite_shape(limits), s.run_dir, owner_labels(s))
        closers.append(slot)
        rundir = slot.rundir
        deliverable_run: _Background | None = None
        try:
            suite_dir = rundir.path / "tests"
            for name, data in store.read_files(s, tests.id).items():
                (suite_dir / name).parent.mkdir(parents=True, exist_ok=True)
                (suite_dir / name).write_bytes(data)
            sink = ReportSink(rundir.sock / "report.sock", s.sandbox_uid, REPORT_CAP)
            closers.insert(0, sink)
            spec_doc: dict[str, Any] = {"args": BASE_ARGS, "target": tests.target or ""}
            if deliverable is None:
                write_standin(rundir.path / "standin", tests.target or "")
                spec_doc["sys_path"] = ["/judge/standin"]
            else:
                dslot = self.s.sandbox.slot(self._deliverable_shape(limits), s.run_dir, owner_labels(s))
                closers.append(dslot)
                stage(store.unpacked(s, deliverable.id), dslot.rundir.pkg)
                relay = Relay(rundir.sock / "link.sock", dslot.rundir.sock / "link.sock", s.sandbox_uid,
                              s.deliverable_uid)  # fmt: skip
                closers.insert(0, relay)
                spec_doc.update(
                    # the target's package alone: an optional import of the suite's (or the standard
                    # library's) never lands in the deliverable, whatever modules it ships
                    modules=[(tests.target or "").partition(".")[0]],
                    call_seconds=min(s.judge_call_seconds, limits.wall_seconds),
                    first_call_seconds=limits.wall_seconds,
                    # one answer, decoded, must fit in a quarter of the suite's memory: JSON can grow
                    # about 25 times when parsed, and a decoded value costs about 64 bytes (a container 4x)
                    max_frame=max(256 * 1024, limits.memory_mb * MiB // 100),
                    max_items=limits.memory_mb * MiB // 4 // 64,
                )
                if canary:
                    write_canary(suite_dir, canary, tests.target or "")
                deliverable_run = _Background(self.s.sandbox, self._deliverable_spec(run_id, dslot, limits), dslot,
                                              stop)  # fmt: skip
            (rundir.inputs / "judge.json").write_text(json.dumps(spec_doc))
            sink.start()
            if deliverable_run is not None:
                relay.start()
                deliverable_run.start()
            outcome = self.s.sandbox.run(
                sandbox_spec(s, run_id=run_id, slot=slot, command=[*LAUNCHER, "judge" if deliverable else "collect"],
                             env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, limits=limits),
                slot,
                deliverable_run.failed if deliverable_run else None,
            )  # fmt: skip
        finally:
            # The deliverable's container is killed and removed before anything of the outcome is read.
            stop.set()
            if deliverable_run is not None:
                deliverable_run.join()
            for closer in closers:
                closer.close()
        if deliverable_run is not None and deliverable_run.error is not None:
            raise deliverable_run.error  # the engine failed around the deliverable: no verdict
        body, problem = read_report(sink.data(), sink.over_cap)
        stopped = limit_status(outcome, limits, s, 0)
        status = stopped[0].value if stopped else "ok"
        if stopped:
            problem = f"the suite run ended {status}: {stopped[1]}"
        raw = RawRun(body, status, problem, outcome.exit_code, outcome.wall_seconds)
        if deliverable_run is not None:
            dstop = limit_status(deliverable_run.outcome or SandboxOutcome(died=True), limits, s, 0)
            raw.deliverable_status = dstop[0].value if dstop else "ok"
            if dstop:
                raw.deliverable_problem = f"the deliverable's process ended {raw.deliverable_status}: {dstop[1]}"
            raw.link_bytes = dict(relay.bytes)
        return raw

    def _suite_shape(self, limits: Limits) -> Shape:
        return suite_shape(self.s.settings, self.s.image, self.runtime, limits)

    def _deliverable_shape(self, limits: Limits) -> Shape:
        return deliverable_shape(self.s.settings, self.s.image, self.runtime, limits)

    def _deliverable_spec(self, run_id: str, dslot: Slot, limits: Limits) -> Any:
        return sandbox_spec(self.s.settings, run_id=f"{run_id}-d", slot=dslot, command=HOST,
                            limits=deliverable_limits(limits))  # fmt: skip


def suite_shape(s: Settings, image: str, runtime: str, limits: Limits) -> Shape:
    """The suite's container: the tests, a stand-in folder and its input read-only; its workspace capped."""
    dirs = (
        Dir(name="tests", target="/judge/tests"),
        Dir(name="standin", target="/judge/standin"),
        Dir(name="in", target="/kernel/in"),
        Dir(name="work", target="/work", writable=True, tmpfs_mb=s.workspace_mb),
        Dir(name="sock", target=SOCKET_DIR, writable=True),
    )
    return shape(s, image=image, runtime=runtime, limits=limits, dirs=dirs)


def deliverable_shape(s: Settings, image: str, runtime: str, limits: Limits) -> Shape:
    """The deliverable's own container, as its own user: its package read-only, its workspace capped."""
    dirs = (
        Dir(name="pkg", target="/kernel/pkg"),
        Dir(name="work", target="/work", writable=True, tmpfs_mb=s.workspace_mb),
        Dir(name="sock", target=SOCKET_DIR, writable=True),
    )
    own = deliverable_limits(limits)
    return shape(s, image=image, runtime=runtime, limits=own, dirs=dirs, uid=s.deliverable_uid)


def judge_shapes(settings: Settings, image: str, runtime: str) -> list[Shape]:
    """The shapes of a judgement's two containers under the default limits (a daemon keeps them warm)."""
    limits = settings.default_limits
    return [suite_shape(settings, image, runtime, limits), deliverable_shape(settings, image, runtime, limits)]


def deliverable_limits(limits: Limits) -> Limits:
    return Limits(cpu_seconds=limits.cpu_seconds, memory_mb=limits.memory_mb,
                  wall_seconds=limits.wall_seconds + DELIVERABLE_GRACE)  # fmt: skip


class _Background:
    """The deliverable's sandbox run, on a thread; ``failed`` is set if the engine fails around it."""

    def __init__(self, sandbox: Sandbox, spec: Any, slot: Slot, stop: Stop):
        self.sandbox, self.spec, self.slot, self.stop = sandbox, spec, slot, stop
        self.failed = Stop()  # stops the suite's run: without its deliverable it can only wait
        self.outcome: SandboxOutcome | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.outcome = self.sandbox.run(self.spec, self.slot, self.stop)
            self.slot.release()  # dead before the suite's outcome is read
        except BaseException as exc:  # noqa: BLE001 - re-raised by the judging thread
            self.error = exc
            self.failed.set()

    def join(self) -> None:
        if self.thread.ident is not None:
            self.thread.join()
        self.failed.close()


def untested(body: dict[str, Any], target: str, expected: list[str]) -> str | None:
    """Why the deliverable was not what the suite tested, if it was not: the suite's `target` resolved
    to another module, or no expected test ever called the deliverable (every wrong answer would pass)."""
    found = body.get("target")
    if found != "deliverable":
        return f"the suite's '{target}' was not the deliverable's module but {found}"
    calls = (body.get("link") or {}).get("calls_by_test") or {}
    if not any(isinstance(calls.get(n), int) and calls[n] > 0 for n in expected):
        return f"no expected test called the deliverable's '{target}': the suite tests nothing of it"
    return None


def write_standin(root: Path, target: str) -> None:
    """``target`` (dotted) as modules whose every attribute is a placeholder."""
    parts = target.split(".")
    folder = root
    for part in parts[:-1]:
        folder = folder / part
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text(STANDIN)
    root.mkdir(parents=True, exist_ok=True)
    (folder / f"{parts[-1]}.py").write_text(STANDIN)


def canary_name(files: list[str], expected: list[str]) -> str:
    """A test id that looks like one of the suite's own: a file named after a suite file, a plain function name."""
    stems = sorted({Path(f).stem for f in files if Path(f).name.startswith("test_") and f.endswith(".py")})
    stem = secrets.choice(stems) if stems else "test_module"
    taken = {e.partition("::")[0] for e in expected} | set(files)
    while True:
        filename = f"{stem}_{secrets.choice(CANARY_WORDS)}.py"
        if filename not in taken:
            break
        stem = f"{stem}_{secrets.choice(CANARY_WORDS)}"
    words = secrets.choice(CANARY_WORDS), secrets.choice(CANARY_WORDS)
    return f"{filename}::test_{words[0]}_{words[1]}"


def write_canary(suite_dir: Path, nodeid: str, target: str) -> None:
    """A test built to fail that imports the target like any other: reported as passing means tampering."""
    filename, _, func = nodeid.partition("::")
    a, b = secrets.randbelow(10**6), secrets.randbelow(10**6) + 10**6
    (suite_dir / filename).write_text(
        textwrap.dedent(
            f"""\
            import {target}


            def {func}():
                total = {a}
                assert total == {b}
            """
        )
    )
