"""Reading what a suite run reported over its report socket, checked, never stdout.

The report counts only if it is a well-formed document, its exit status matches the
suite process's, and the canary test, built to fail, failed. It comes from the suite's
launcher alone: the deliverable runs in another container and has no way to the socket.
"""

import json
from typing import Any

from judiciary.models import Outcome, SuiteRun, TestOutcome


def read_report(data: bytes, over_cap: bool) -> tuple[dict[str, Any] | None, str | None]:
    """The report body, or None and why it cannot be used."""
    if over_cap:
        return None, "the suite's report was larger than the kernel reads; rejected"
    if not data:
        return None, "pytest never sent its report (the suite's process was stopped or exited early)"
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None, "the suite's report is not a JSON document (damaged or cut short)"
    if not isinstance(body, dict) or not isinstance(body.get("tests"), dict):
        return None, "the suite's report is not a report"
    return clean(body), None


def clean(value: Any) -> Any:
    """The report with every string encodable: it quotes the deliverable, which may send lone surrogates."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    return value


def outcome_of(phases: dict[str, dict[str, Any]]) -> tuple[Outcome, float]:
    """One test's outcome and duration from its setup/call/teardown phases."""
    duration = sum(float(p.get("duration", 0)) for p in phases.values())
    if any(phases.get(when, {}).get("outcome") == "failed" for when in ("setup", "teardown")):
        return "error", duration
    if phases and "teardown" not in phases:
        return "error", duration  # the test never finished: pytest reports a teardown for every test it ran
    call = phases.get("call")
    if call is None:
        setup = phases.get("setup", {})
        if setup.get("outcome") == "skipped":
            return ("xfailed" if setup.get("xfail") else "skipped"), duration
        return "missing", duration
    if call.get("outcome") == "skipped":
        return ("xfailed" if call.get("xfail") else "skipped"), duration
    if call.get("outcome") == "failed":
        return "failed", duration
    return ("xpassed" if call.get("xfail") else "passed"), duration


def suite_run(
    status: str,
    problem: str | None,
    exit_code: int | None,
    body: dict[str, Any] | None,
    expected: list[str],
    canary: str | None,
    wall: float,
) -> SuiteRun:
    # The output is not kept: it could carry the private suite to the worker (or the worker's
    # source to the buyer); only outcome classes, durations and kernel-made reasons are.
    run = SuiteRun(status=status, problem=problem, exit_code=exit_code, wall_seconds=wall)
    reported: dict[str, dict[str, Any]] = (body or {}).get("tests", {})
    run.tests = []
    for nodeid in expected:
        outcome, duration = outcome_of(reported[nodeid]) if nodeid in reported else ("missing", 0.0)
        detail = None if nodeid in reported else "never reported"
        run.tests.append(TestOutcome(nodeid=nodeid, outcome=outcome, duration=duration, detail=detail))
    if body is None:
        return run
    run.report_exit_code = body.get("exit_code")
    if canary is not None:
        run.canary = outcome_of(reported[canary])[0] if canary in reported else "missing"
    if run.problem is None:
        run.problem = integrity_problem(run, canary)
    return run


SESSION_ENDS = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}


def integrity_problem(run: SuiteRun, canary: str | None) -> str | None:
    if run.report_exit_code != run.exit_code:
        return f"pytest reported exit status {run.report_exit_code} but the process exited {run.exit_code}"
    if all(t.outcome == "passed" for t in run.tests) and run.report_exit_code not in (0, 1):
        # With every expected test passed, only a normal end counts (a collection error or an
        # interrupt otherwise says why the failing tests failed).
        why = SESSION_ENDS.get(run.report_exit_code or 0, "abnormal end")
        return f"pytest did not finish the session normally (exit status {run.report_exit_code}: {why})"
    if canary is None or run.canary == "failed":
        return None
    if run.canary in ("missing", "error") and any(t.outcome != "passed" for t in run.tests):
        return None  # the target did not import, or the run broke: the failing tests say so
    return f"tampering: a test built to fail was reported {run.canary}"
