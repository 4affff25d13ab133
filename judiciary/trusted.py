"""A suite runner for TRUSTED code only: pytest in a subprocess on the host, no container.

The judiciary's promise (a deliverable never runs where the suite's outcomes are made)
needs the sandboxed ``SuiteRunner``. This runner gives no such promise: the deliverable is
imported into the pytest process. It exists for worlds of the shipped policies driven on
the trusted in-process backend (benchmarks, unit tests), whose deliverables are written by
those policies from the project's own task solutions. It runs the suite for real (with a
canary built to fail), reads per-test outcomes from pytest's JUnit XML, and keeps the
verdict rule of the real court. Trusted code is deterministic, so a runner remembers what
a suite collected and how a suite went on a deliverable, and answers the same question
again from memory (a world re-delivers the same artifact to a reposted task). Nothing a
user sets selects it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from judiciary.errors import SuiteError
from judiciary.models import SuiteRun
from judiciary.report import suite_run
from judiciary.runner import STANDIN, canary_name, write_canary
from kernel import store
from kernel.models import Artifact
from kernel.settings import Settings

TIMEOUT = 60


def _nodeid(case: ET.Element) -> str:
    """pytest's node id from a JUnit testcase (module[.Class] and name)."""
    parts = (case.get("classname") or "").split(".")
    module = [p for p in parts if not p[:1].isupper()]
    classes = [p for p in parts if p[:1].isupper()]
    return "::".join(["/".join(module) + ".py", *classes, case.get("name") or ""])


def _phases(case: ET.Element) -> dict[str, dict[str, str]]:
    """The setup/call/teardown phases the report reader expects, from a JUnit testcase."""
    ok = {"outcome": "passed"}
    if case.find("error") is not None:
        return {"setup": {"outcome": "failed"}, "teardown": ok}
    if case.find("skipped") is not None:
        return {"setup": {"outcome": "skipped"}, "teardown": ok}
    call = {"outcome": "failed"} if case.find("failure") is not None else ok
    return {"setup": ok, "call": call, "teardown": ok}


class HostSuiteRunner:
    image, runtime = "host", "trusted"

    def __init__(self, settings: Settings):
        self.settings = settings
        self._collected: dict[str, list[str]] = {}
        self._judged: dict[tuple[str, str], SuiteRun] = {}

    def _pytest(self, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(folder), *args]
        return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT)

    def _folder(self, tests: Artifact) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="host-judge-"))
        for path, data in store.read_files(self.settings, tests.id).items():
            if path.endswith(".py"):
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                (folder / path).write_bytes(data)
        (folder / "pytest.ini").write_text("[pytest]\n")
        return folder

    def collect(self, tests: Artifact) -> list[str]:
        if tests.id not in self._collected:
            self._collected[tests.id] = self._collect(tests)
        return list(self._collected[tests.id])

    def judge(self, tests: Artifact, deliverable: Artifact, expected: list[str]) -> SuiteRun:
        key = (tests.id, deliverable.id)
        if key not in self._judged:
            self._judged[key] = self._judge(tests, deliverable, expected)
        return self._judged[key].model_copy(deep=True)

    def _collect(self, tests: Artifact) -> list[str]:
        folder = self._folder(tests)
        try:
            (folder / f"{tests.target}.py").write_text(STANDIN)
            done = self._pytest(folder, "--collect-only")
            ids = [line.strip() for line in done.stdout.splitlines() if "::" in line]
            if done.returncode != 0 or not ids:
                raise SuiteError(f"the suite cannot be collected: {done.stdout[-400:]}")
            return ids
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _judge(self, tests: Artifact, deliverable: Artifact, expected: list[str]) -> SuiteRun:
        folder = self._folder(tests)
        try:
            canary = canary_name(list(store.read_files(self.settings, tests.id)), expected)
            write_canary(folder, canary, tests.target or "")
            for path, data in store.read_files(self.settings, deliverable.id).items():
                if path.endswith(".py"):
                    (folder / path).parent.mkdir(parents=True, exist_ok=True)
                    (folder / path).write_bytes(data)
            started = time.monotonic()
            done = self._pytest(folder, "--junitxml", str(folder / "report.xml"))
            wall = time.monotonic() - started
            reported = {_nodeid(c): _phases(c) for c in ET.parse(folder / "report.xml").iter("testcase")}
            body = {"exit_code": done.returncode, "tests": reported}
            return suite_run("ok", None, done.returncode, body, expected, canary, wall)
        except (OSError, ET.ParseError, subprocess.TimeoutExpired) as exc:
            return suite_run("killed", f"the host suite run failed: {exc}", None, None, expected, None, 0.0)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
