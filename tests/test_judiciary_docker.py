"""Real Docker: the judiciary judging honest, wrong and cheating deliverables.

Every cheat below is delivered with a wrong sort, so only the cheat could make it pass;
each must end in a refund whose reason names what happened.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import judiciary.court  # noqa: F401 - registers escrow holds with the ledger check
from judiciary.court import Court
from judiciary.errors import SuiteError
from judiciary.models import Escrow
from kernel.api import Kernel
from tests.conftest import PackageFactory

pytestmark = pytest.mark.docker

SUITE = {
    "test_sorter.py": """
        import unittest

        from sorter import sort


        def test_empty():
            assert sort([]) == []


        def test_reversed():
            assert sort([3, 2, 1]) == [1, 2, 3]


        def test_duplicates():
            assert sort([2, 1, 2]) == [1, 2, 2]


        class TestUnittestStyle(unittest.TestCase):
            def test_pairs(self):
                self.assertEqual(sort([2, 1]), [1, 2])
    """,
}
HONEST = "def sort(items):\n    return sorted(items)\n"
WRONG = "def sort(items):\n    return list(items)\n"

TAMPER = {
    "conftest_marks_everything_passed": (
        {
            "conftest.py": """
                import pytest

                @pytest.hookimpl(hookwrapper=True)
                def pytest_runtest_makereport(item, call):
                    outcome = yield
                    outcome.get_result().outcome = "passed"
            """
        },
        "did not pass",
    ),
    "pytest_plugins_in_the_module": (
        {
            "cheat_plugin.py": """
                import pytest

                @pytest.hookimpl(hookwrapper=True)
                def pytest_runtest_makereport(item, call):
                    outcome = yield
                    outcome.get_result().outcome = "passed"
            """,
            "sorter.py+": 'pytest_plugins = ["cheat_plugin"]\n',
        },
        "did not pass",
    ),
    "os_exit_at_import": ({"sorter.py+": "import os\nos._exit(0)\n"}, "link to the deliverable broke"),
    "sys_exit_at_import": ({"sorter.py+": "import sys\nsys.exit(0)\n"}, ""),
    "monkeypatch_pytest_reports": (
        {
            "sorter.py+": """
                import _pytest.reports
                _init = _pytest.reports.TestReport.__init__
                def _passed(self, *a, **k):
                    _init(self, *a, **k)
                    self.outcome, self.longrepr = "passed", None
                _pytest.reports.TestReport.__init__ = _passed
            """
        },
        "did not pass",
    ),
    "monkeypatch_pytest_runner": (
        {
            "sorter.py+": """
                import _pytest.runner
                _real = _pytest.runner.call_and_report
                def _fake(item, when, log=True, **kw):
                    rep = _real(item, when, log=False, **kw)
                    rep.outcome = "passed"
                    item.ihook.pytest_runtest_logreport(report=rep)
                    return rep
                _pytest.runner.call_and_report = _fake
            """
        },
        "did not pass",
    ),
    "ships_its_own_pytest_module": (
        {
            "pytest.py": """
                import sys
                mine = [p for p in sys.path if p.startswith("/judge/deliverable")]
                for p in mine:
                    sys.path.remove(p)
                del sys.modules["pytest"]
                import pytest as real, _pytest.runner as runner
                sys.path[:0] = mine
                sys.modules["pytest"] = real
                original = runner.call_and_report
                def call_and_report(item, when, log=True, **kw):
                    rep = original(item, when, log=False, **kw)
                    if rep.failed and "sorter" in vars(item.module):
                        rep.outcome, rep.longrepr = "passed", None
                    if log:
                        item.ihook.pytest_runtest_logreport(report=rep)
                    return rep
                runner.call_and_report = call_and_report
            """
        },
        "did not pass",
    ),
    "registers_a_hook_plugin_found_with_gc": (
        {
            "sorter.py+": """
                import gc, pytest
                from _pytest.config import Config
                class _Cheat:
                    @pytest.hookimpl(hookwrapper=True)
                    def pytest_runtest_makereport(self, item, call):
                        rep = (yield).get_result()
                        if rep.failed and "sort" in vars(item.module):
                            rep.outcome, rep.longrepr = "passed", None
                config = next(o for o in gc.get_objects() if isinstance(o, Config))
                config.pluginmanager.register(_Cheat())
            """
        },
        "did not pass",
    ),
    "monkeypatch_unittest": (
        {"sorter.py+": "import unittest\nunittest.TestCase.assertEqual = lambda self, *a, **k: None\n"},
        "did not pass",
    ),
    "prints_fake_passed_lines": (
        {"sorter.py+": "print('test_sorter.py::test_empty PASSED\\n====== 4 passed in 0.01s ======')\n"},
        "did not pass",
    ),
    "deletes_and_edits_the_tests": (
        {
            "sorter.py+": """
                import glob, os
                for path in glob.glob("/judge/tests/*.py"):
                    try:
                        os.remove(path)
                    except OSError:
                        pass
                    try:
                        open(path, "w").write("def test_ok():\\n    pass\\n")
                    except OSError:
                        pass
            """
        },
        "did not pass",
    ),
    "skips_the_tests": (
        {"sorter.py+": "import pytest\npytest.skip('not today', allow_module_level=True)\n"},
        "did not pass",
    ),
    "writes_a_fake_report": (
        {
            "sorter.py+": """
                import json, os
                body = json.dumps({"exit_code": 0, "tests": {}, "collected": [], "replaced": []})
                with open("/kernel/out/report.json", "w") as fh:
                    json.dump({"body": body, "mac": "0" * 64}, fh)
                os._exit(0)
            """
        },
        "did not pass",
    ),
    "sleeps_past_the_limit": ({"sorter.py+": "import time\ntime.sleep(600)\n"}, "timeout"),
    "exhausts_memory": (
        {"sorter.py+": "blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))\n"},
        "memory",
    ),
}


def dedent_files(files: dict[str, str]) -> dict[str, str | bytes]:
    return {name: textwrap.dedent(text).lstrip() for name, text in files.items()}


@pytest.fixture
def court(docker_kernel: Kernel) -> Iterator[Court]:
    yield Court(docker_kernel, appeal_runs=3)


SUITE_LIMITS = {"wall_seconds": 8, "memory_mb": 128}


def open_escrow(
    k: Kernel, court: Court, make_pkg: PackageFactory, suite: dict[str, str] | None = None, **kw: str
) -> Escrow:
    files = dedent_files(suite or SUITE)
    pkg = make_pkg(None, kind="tests", entrypoint=None, extra='target = "sorter"', limits=SUITE_LIMITS, files=files)
    return court.open("alice", 50, k.submit(pkg, "alice").artifact.id, **kw)


def deliver(
    k: Kernel, court: Court, make_pkg: PackageFactory, escrow_id: str, code: str, extra: dict | None = None
) -> None:
    files = dedent_files({n: t for n, t in (extra or {}).items() if not n.endswith("+")})
    prefix = textwrap.dedent((extra or {}).get("sorter.py+", ""))
    files["sorter.py"] = prefix + code
    art = k.submit(make_pkg(None, entrypoint="sorter:sort", files=files), "bob").artifact
    court.deliver(escrow_id, "bob", art.id)


def test_honest_delivery_is_paid(docker_kernel: Kernel, court: Court, make_pkg: PackageFactory) -> None:
    e = open_escrow(docker_kernel, court, make_pkg)
    assert e.expected == [
        "test_sorter.py::test_empty",
        "test_sorter.py::test_reversed",
        "test_sorter.py::test_duplicates",
        "test_sorter.py::TestUnittestStyle::test_pairs",
    ]
    deliver(docker_kernel, court, make_pkg, e.id, HONEST)
    e = court.judge(e.id)
    v = e.verdicts[0]
    assert e.state == "released" and v.passed, v.reason
    assert [t.outcome for t in v.tests] == ["passed"] * 4 and all(t.duration >= 0 for t in v.tests)
    assert v.runs[0].exit_code == 1 and v.runs[0].canary == "failed" and v.image and v.runtime  # 1: the canary failed
    assert v.tests_digest == e.tests_id and v.deliverable_digest == e.deliverable_id and v.ledger_rows
    assert docker_kernel.balance("bob") == 150 and docker_kernel.balance("alice") == 950
    again = open_escrow(docker_kernel, court, make_pkg)  # the same inputs reproduce the same verdict
    court.deliver(again.id, "bob", e.deliverable_id or "")
    repeat = court.judge(again.id).verdicts[0]
    assert (repeat.passed, repeat.reason, [t.outcome for t in repeat.tests]) == (True, v.reason, ["passed"] * 4)
    assert (repeat.tests_digest, repeat.deliverable_digest, repeat.image) == (
        v.tests_digest,
        v.deliverable_digest,
        v.image,
    )


def test_wrong_delivery_is_refunded(docker_kernel: Kernel, court: Court, make_pkg: PackageFactory) -> None:
    e = open_escrow(docker_kernel, court, make_pkg)
    deliver(docker_kernel, court, make_pkg, e.id, WRONG)
    e = court.judge(e.id)
    v = e.verdicts[0]
    assert e.state == "refunded" and not v.passed
    assert "3 of 4 expected tests did not pass" in v.reason
    assert {t.nodeid: t.outcome for t in v.tests}["test_sorter.py::test_empty"] == "passed"
    assert docker_kernel.balance("alice") == 1000 and docker_kernel.balance("bob") == 100


@pytest.mark.parametrize("name", sorted(TAMPER))
def test_cheating_delivery_is_refunded(
    docker_kernel: Kernel, court: Court, make_pkg: PackageFactory, name: str
) -> None:
    extra, reason = TAMPER[name]
    e = open_escrow(docker_kernel, court, make_pkg)
    deliver(docker_kernel, court, make_pkg, e.id, WRONG, extra)
    e = court.judge(e.id)
    v = e.verdicts[0]
    assert e.state == "refunded" and not v.passed, v.reason
    assert reason in v.reason, v.reason
    assert docker_kernel.balance("alice") == 1000 and docker_kernel.balance("bob") == 100


@pytest.mark.parametrize(
    "suite, message",
    [
        ({"test_nothing.py": "def helper():\n    return 1\n"}, "contains no tests"),
        ({"test_broken.py": "import numpy_is_not_here\n\ndef test_x():\n    pass\n"}, "cannot be collected"),
    ],
)
def test_unusable_suites_are_refused(
    docker_kernel: Kernel, court: Court, make_pkg: PackageFactory, suite: dict, message: str
) -> None:
    with pytest.raises(SuiteError, match=message):
        open_escrow(docker_kernel, court, make_pkg, suite)
    assert docker_kernel.balance("alice") == 1000 and court.escrows() == []


def test_flaky_test_is_reported_on_dispute(docker_kernel: Kernel, court: Court, make_pkg: PackageFactory) -> None:
    flaky = {
        "test_coin.py": """
            import os
            import pytest
            from sorter import sort

            def test_sorts():
                assert sort([2, 1]) == [1, 2]

            @pytest.mark.parametrize("i", range(20))
            def test_coin(i):
                assert os.urandom(1)[0] < 128
        """
    }
    e = open_escrow(docker_kernel, court, make_pkg, flaky, dispute_window="1h")
    deliver(docker_kernel, court, make_pkg, e.id, HONEST)
    e = court.judge(e.id)
    assert e.state == "judged" and docker_kernel.balance("bob") == 100  # waits for a possible appeal
    e = court.dispute(e.id, "bob", "those coin tests are flaky")
    appeal = e.verdicts[-1]
    assert appeal.kind == "appeal" and len(appeal.runs) == 3
    assert appeal.flaky and all(f.startswith("test_coin.py::test_coin[") for f in appeal.flaky)
    assert "flaky" in appeal.reason and "counts as failed" in appeal.rule
    assert e.state == "refunded" and docker_kernel.balance("alice") == 1000


def kernel_cli(home: Path, runtime: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KERNEL_HOME": str(home), "KERNEL_RUNTIME": runtime}
    return subprocess.Popen(
        [sys.executable, "-m", "kernel.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_judges_settle_once(docker_kernel: Kernel, court: Court, make_pkg: PackageFactory) -> None:
    e = open_escrow(docker_kernel, court, make_pkg)
    deliver(docker_kernel, court, make_pkg, e.id, HONEST)
    home, rt = docker_kernel.settings.home, docker_kernel.settings.runtime
    procs = [kernel_cli(home, rt, "escrow", "judge", e.id) for _ in range(2)]
    results = [(p.communicate(timeout=120)[1], p.returncode) for p in procs]
    results = [(code, text) for text, code in results]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(text for code, text in results if code == 1)
    assert "being judged by another" in loser or "already released" in loser or "settled by another" in loser
    assert court.show(e.id).state == "released" and len(court.show(e.id).verdicts) == 1
    assert docker_kernel.balance("bob") == 150


def test_killed_judge_leaves_the_escrow_judgeable(
    docker_kernel: Kernel, court: Court, make_pkg: PackageFactory
) -> None:
    e = open_escrow(docker_kernel, court, make_pkg)
    deliver(docker_kernel, court, make_pkg, e.id, HONEST, {"sorter.py+": "import time\ntime.sleep(4)\n"})
    proc = kernel_cli(docker_kernel.settings.home, docker_kernel.settings.runtime, "escrow", "judge", e.id)
    deadline = time.monotonic() + 60
    while not docker_kernel.db.one("SELECT judging FROM escrows WHERE id = ?", (e.id,))["judging"]:
        assert time.monotonic() < deadline and proc.poll() is None, "the judgement never started"
        time.sleep(0.05)
    time.sleep(1.5)  # inside the sandbox now
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert docker_kernel.ledger_check().ok and docker_kernel.ledger_check().holds_total == 50
    assert court.show(e.id).state == "delivered"
    e = court.judge(e.id)  # the dead judge's claim lapsed; its container is swept
    assert e.state == "released" and e.verdicts[0].passed
    assert docker_kernel.balance("bob") == 150


@pytest.mark.parametrize(
    "target, files, message",
    [
        ("statistics", {}, "also a module the sandbox already has"),  # the standard library would answer
        ("sorter", {"sorter.py": "def sort(x):\n    return sorted(x)\n"}, "ships its own module 'sorter'"),
    ],
)
def test_a_target_the_suite_would_not_take_from_the_deliverable_is_refused(
    docker_kernel: Kernel, court: Court, make_pkg: PackageFactory, target: str, files: dict, message: str
) -> None:
    suite = {"test_it.py": f"import {target}\n\n\ndef test_it():\n    assert {target}\n", **files}
    pkg = make_pkg(None, kind="tests", entrypoint=None, extra=f'target = "{target}"', limits=SUITE_LIMITS,
                   files=suite)  # fmt: skip
    with pytest.raises(SuiteError, match=message):
        court.open("alice", 50, docker_kernel.submit(pkg, "alice").artifact.id)
    assert docker_kernel.balance("alice") == 1000 and court.escrows() == []


NOT_JUDGEABLE = {
    "test_money.py": """
        import pytest

        from sorter import Money


        def test_cannot_add_a_bare_number():
            with pytest.raises(TypeError):
                Money(5) + 5


        def test_not_equal_to_a_bare_number():
            assert Money(5) != 5
    """,
}
NEVER_IMPORTED = {"test_nothing.py": "def test_arithmetic():\n    assert 1 + 1 == 2\n"}


@pytest.mark.parametrize(
    "suite, reason",
    [
        (NOT_JUDGEABLE, "not judgeable: test_money.py::test_cannot_add_a_bare_number asked for `+`"),
        (NEVER_IMPORTED, "no expected test called the deliverable's 'sorter'"),
    ],
)
def test_what_the_judge_cannot_judge_is_refunded(
    docker_kernel: Kernel, court: Court, make_pkg: PackageFactory, suite: dict, reason: str
) -> None:
    e = open_escrow(docker_kernel, court, make_pkg, suite)
    money = "class Money:\n    def __init__(self, v):\n        self.v = v\n\n    def __add__(self, other):\n"
    money += "        return Money(self.v + getattr(other, 'v', other))\n\n    def __ne__(self, other):\n"
    money += "        return True\n\n\n"  # wrong: adds bare numbers, and differs from everything
    deliver(docker_kernel, court, make_pkg, e.id, money + HONEST)
    e = court.judge(e.id)
    v = e.verdicts[0]
    assert e.state == "refunded" and not v.passed and reason in v.reason, v.reason
    assert docker_kernel.balance("alice") == 1000 and docker_kernel.balance("bob") == 100
