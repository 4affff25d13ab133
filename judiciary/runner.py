"""Building and running a suite in a fresh sandbox: collection at open, judging later.

Layout inside the sandbox: the suite (a per-judgement copy, read-only) at /judge/tests,
the deliverable (read-only) at /judge/deliverable, the launcher's spec at /kernel/in,
the sealed report in /kernel/out, a scratch workspace at /work. pytest runs with
rootdir and confcutdir at /judge/tests and the judiciary's own ini file, so the
deliverable's conftest.py and plugins are never loaded.
"""

import json
import secrets
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judiciary.errors import SuiteError
from judiciary.models import SuiteRun
from judiciary.report import read_sealed, suite_run
from kernel import process, store
from kernel.db import Database
from kernel.models import Artifact, Limits
from kernel.runs import limit_status, sandbox_spec
from kernel.sandbox.base import Mount, Sandbox
from kernel.sandbox.scratch import RunDir
from kernel.settings import Settings

LAUNCHER = ["python3", "-I", "/opt/kernel/kernel_judge.py"]
BASE_ARGS = ["/judge/tests", "--rootdir=/judge/tests", "--confcutdir=/judge/tests", "-c", "/opt/kernel/judge.ini"]
NO_TESTS = 5  # pytest's exit status when nothing was collected

STANDIN = '''\
"""A stand-in for the module under test, used only to list the suite's tests."""


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


@dataclass
class RawRun:
    """What one suite run left: the verified report body (or None and why), as the host saw it."""

    body: dict[str, Any] | None
    status: str
    problem: str | None
    exit_code: int | None
    wall: float
    stdout: str


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
        raw = self._run(tests, None, mode="collect")
        body = raw.body
        if body is None or raw.status != "ok":
            raise SuiteError(f"could not collect the suite: {raw.problem or raw.status}.")
        errors = body.get("collect_errors") or []
        if errors:
            first = errors[0]
            raise SuiteError(f"the suite cannot be collected ({first['nodeid'] or 'session'}): {first['error'][-600:]}")
        if body.get("exit_code") == NO_TESTS or not body.get("collected"):
            raise SuiteError(
                f"tests artifact {tests.short_id} contains no tests; add test_*.py files with test functions."
            )
        return list(body["collected"])

    def judge(self, tests: Artifact, deliverable: Artifact, expected: list[str]) -> SuiteRun:
        canary = f"test_{secrets.token_hex(6)}.py::test_{secrets.token_hex(6)}"
        raw = self._run(tests, deliverable, "judge", canary)
        return suite_run(raw.status, raw.problem, raw.exit_code, raw.body, expected, canary, raw.wall, raw.stdout)

    def _run(self, tests: Artifact, deliverable: Artifact | None, mode: str, canary: str | None = None) -> RawRun:
        s = self.s.settings
        run_id = f"judge-{secrets.token_hex(6)}"
        rundir = RunDir(s.run_dir, run_id, s.workspace_mb, 4 * 1024 * 1024, s.sandbox_uid, process.token())
        try:
            suite_dir = rundir.path / "tests"
            for name, data in store.read_files(s, tests.id).items():
                (suite_dir / name).parent.mkdir(parents=True, exist_ok=True)
                (suite_dir / name).write_bytes(data)
            mounts = [
                Mount(source=suite_dir, target="/judge/tests"),
                Mount(source=rundir.inputs, target="/kernel/in"),
                Mount(source=rundir.out, target="/kernel/out", read_only=False),
                Mount(source=rundir.work, target="/work", read_only=False),
            ]
            if deliverable is None:
                standin = rundir.path / "standin"
                write_standin(standin, tests.target or "")
                mounts.append(Mount(source=standin, target="/judge/standin"))
                sys_path = ["/judge/standin"]
            else:
                mounts.append(Mount(source=store.unpacked(s, deliverable.id), target="/judge/deliverable"))
                sys_path = ["/judge/deliverable/src", "/judge/deliverable"]
            if canary:
                write_canary(suite_dir, canary)
            spec_doc = {"sys_path": sys_path, "args": BASE_ARGS}
            (rundir.inputs / "judge.json").write_text(json.dumps(spec_doc))
            nonce = secrets.token_bytes(32)
            (rundir.out / "nonce").write_bytes(nonce)
            limits = suite_limits(tests, s)
            outcome = self.s.sandbox.run(
                sandbox_spec(
                    s,
                    run_id=run_id,
                    image=self.s.image,
                    runtime=self.runtime,
                    command=[*LAUNCHER, mode],
                    env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
                    mounts=mounts,
                    limits=limits,
                )
            )
            body, problem = read_sealed(rundir.out / "report.json", nonce)
        finally:
            rundir.close()
        stopped = limit_status(outcome, limits, s, 0)
        status = stopped[0].value if stopped else "ok"
        if stopped:
            problem = f"the suite run ended {status}: {stopped[1]}"
        stdout = (outcome.stdout + outcome.stderr).decode("utf-8", "replace")
        return RawRun(body, status, problem, outcome.exit_code, outcome.wall_seconds, stdout)


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


def write_canary(suite_dir: Path, nodeid: str) -> None:
    """A test built to fail, under a random name: reported as passing means tampering."""
    filename, _, func = nodeid.partition("::")
    a, b = secrets.randbelow(10**6), secrets.randbelow(10**6) + 10**6
    (suite_dir / filename).write_text(
        textwrap.dedent(
            f"""\
            def {func}():
                total = {a}
                assert total == {b}
            """
        )
    )
