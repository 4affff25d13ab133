"""The suite's report and the verdict rule, on hand-made reports."""

import json

import pytest

from judiciary.models import SuiteRun, TestOutcome
from judiciary.report import outcome_of, read_report, suite_run
from judiciary.verdict import decide

IDS = ["t.py::test_a", "t.py::test_b"]
CANARY = "test_c.py::test_c"


def phases(call: str, **extra: object) -> dict:
    return {
        "setup": {"outcome": "passed"},
        "call": {"outcome": call, "duration": 0.5, **extra},
        "teardown": {"outcome": "passed"},
    }


def body(a: str = "passed", b: str = "passed", canary: str = "failed", exit_code: int = 1, **kw: object) -> dict:
    return {"exit_code": exit_code, "tests": {IDS[0]: phases(a), IDS[1]: phases(b), CANARY: phases(canary)}, **kw}


def without_canary(b: dict) -> dict:
    del b["tests"][CANARY]
    return b


def test_report_strings_are_made_encodable() -> None:
    text = json.dumps({"tests": {}, "link": {"broken": "it sent \ud800"}})  # a lone surrogate, as JSON escapes it
    doc, _ = read_report(text.encode(), over_cap=False)
    assert doc is not None and doc["link"]["broken"] == "it sent \\ud800"
    doc["link"]["broken"].encode("utf-8")  # storable


def test_report_reads() -> None:
    doc, problem = read_report(json.dumps(body()).encode(), over_cap=False)
    assert problem is None and doc is not None and doc["exit_code"] == 1


@pytest.mark.parametrize(
    "data, over_cap, message",
    [
        (b"", False, "never sent its report"),
        (b'{"exit_code": 0, "tests": {', False, "not a JSON document"),
        (b"[" * 100_000, False, "not a JSON document"),
        (b"<testsuite tests='2' failures='0'/>", False, "not a JSON document"),
        (b'{"exit_code": 0}', False, "not a report"),
        (b'["tests"]', False, "not a report"),
        (json.dumps(body()).encode(), True, "larger than the kernel reads"),
    ],
)
def test_unusable_reports_are_rejected(data: bytes, over_cap: bool, message: str) -> None:
    doc, problem = read_report(data, over_cap)
    assert doc is None and message in (problem or "")


@pytest.mark.parametrize(
    "ph, expected",
    [
        (phases("passed"), "passed"),
        (phases("failed", error="assert 1 == 2"), "failed"),
        (phases("skipped"), "skipped"),
        (phases("skipped", xfail=True), "xfailed"),
        (phases("passed", xfail=True), "xpassed"),
        ({"setup": {"outcome": "failed", "error": "fixture"}}, "error"),
        ({"setup": {"outcome": "skipped"}, "teardown": {"outcome": "passed"}}, "skipped"),
        ({"setup": {"outcome": "passed"}, "call": {"outcome": "passed"}}, "error"),  # interrupted before teardown
        ({**phases("passed"), "teardown": {"outcome": "failed"}}, "error"),
        ({}, "missing"),
    ],
)
def test_outcomes(ph: dict, expected: str) -> None:
    assert outcome_of(ph)[0] == expected


def run_of(b: dict | None, exit_code: int = 1, status: str = "ok", problem: str | None = None) -> SuiteRun:
    return suite_run(status, problem, exit_code, b, IDS, CANARY, 1.0)


def test_all_passed() -> None:
    passed, reason, tests, flaky = decide(IDS, [run_of(body())])
    assert passed and reason == "all 2 expected tests passed" and flaky == []
    assert [t.outcome for t in tests] == ["passed", "passed"] and tests[0].duration == 0.5


@pytest.mark.parametrize(
    "run, reason",
    [
        (run_of(body(b="failed")), "1 of 2 expected tests did not pass: t.py::test_b (failed)"),
        (run_of({"exit_code": 1, "tests": {IDS[0]: phases("passed"), CANARY: phases("failed")}}), "(missing)"),
        (run_of(body(canary="passed")), "tampering: a test built to fail was reported passed"),
        (run_of(body(canary="passed", exit_code=0), exit_code=0), "tampering"),
        (run_of(body(), exit_code=0), "exited 0"),
        (run_of(body(exit_code=2), exit_code=2), "did not finish the session normally (exit status 2: interrupted)"),
        (run_of(body(exit_code=3), exit_code=3), "exit status 3: internal error"),
        (run_of(without_canary(body())), "tampering: a test built to fail was reported missing"),
        (run_of(without_canary(body(b="failed"))), "1 of 2 expected tests did not pass"),
        (run_of(None, problem="pytest never sent its report"), "never sent its report"),
        (run_of(body(), status="timeout", exit_code=None, problem="the suite run ended timeout: killed"), "timeout"),
    ],
)
def test_failing_verdicts_say_why(run: SuiteRun, reason: str) -> None:
    passed, why, _, _ = decide(IDS, [run])
    assert not passed and reason in why


def test_flaky_across_runs() -> None:
    runs = [run_of(body()), run_of(body(b="failed")), run_of(body())]
    passed, reason, tests, flaky = decide(IDS, runs)
    assert not passed and flaky == [IDS[1]] and tests[1].outcome == "flaky"
    assert "t.py::test_b (flaky)" in reason


def test_unanimous_runs_pass() -> None:
    passed, reason, _, _ = decide(IDS, [run_of(body()) for _ in range(3)])
    assert passed and reason.endswith("in all 3 runs")


def test_test_outcome_is_not_collected_by_pytest() -> None:
    assert TestOutcome.__test__ is False
