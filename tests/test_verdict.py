"""The sealed report and the verdict rule, on hand-made reports."""

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from judiciary.models import SuiteRun, TestOutcome
from judiciary.report import outcome_of, read_sealed, suite_run
from judiciary.verdict import decide

NONCE = b"n" * 32
IDS = ["t.py::test_a", "t.py::test_b"]
CANARY = "test_c.py::test_c"


def sealed(path: Path, body: dict, nonce: bytes = NONCE) -> Path:
    text = json.dumps(body)
    path.write_text(json.dumps({"body": text, "mac": hmac.new(nonce, text.encode(), hashlib.sha256).hexdigest()}))
    return path


def phases(call: str, **extra: object) -> dict:
    return {
        "setup": {"outcome": "passed"},
        "call": {"outcome": call, "duration": 0.5, **extra},
        "teardown": {"outcome": "passed"},
    }


def body(a: str = "passed", b: str = "passed", canary: str = "failed", exit_code: int = 1, **kw: object) -> dict:
    return {"exit_code": exit_code, "tests": {IDS[0]: phases(a), IDS[1]: phases(b), CANARY: phases(canary)}, **kw}


def test_seal_verifies(tmp_path: Path) -> None:
    doc, problem = read_sealed(sealed(tmp_path / "r.json", body()), NONCE)
    assert problem is None and doc is not None and doc["exit_code"] == 1


@pytest.mark.parametrize(
    "writer, message",
    [
        (lambda p: sealed(p, body(), nonce=b"guess"), "forged report"),
        (lambda p: p.write_text('{"body": "{}", "mac": "00"}'), "forged report"),
        (lambda p: p.write_text("<testsuite tests='2' failures='0'/>"), "not a sealed report"),
        (lambda p: None, "never wrote its report"),
    ],
)
def test_unsealed_reports_are_rejected(tmp_path: Path, writer, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "r.json"
    writer(path)
    doc, problem = read_sealed(path, NONCE)
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
        ({"setup": {"outcome": "skipped"}}, "skipped"),
        ({**phases("passed"), "teardown": {"outcome": "failed"}}, "error"),
        ({}, "missing"),
    ],
)
def test_outcomes(ph: dict, expected: str) -> None:
    assert outcome_of(ph)[0] == expected


def run_of(b: dict | None, exit_code: int = 1, status: str = "ok", problem: str | None = None) -> SuiteRun:
    return suite_run(status, problem, exit_code, b, IDS, CANARY, 1.0, "")


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
        (run_of(body(replaced=["_pytest.runner.call_and_report"])), "internals were replaced"),
        (run_of(None, problem="pytest never wrote its report"), "never wrote its report"),
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
