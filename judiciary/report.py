"""Reading what a suite run left: the sealed pytest report, checked, never stdout.

The report counts only if its HMAC verifies under the judgement's nonce (the deliverable
never sees it), its exit status matches the process's, no watched pytest or unittest
internal was replaced, and the canary test, built to fail, failed.
"""

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from judiciary.models import Outcome, SuiteRun, TestOutcome
from kernel.safe_io import Unreadable, read_capped

REPORT_CAP = 8 * 1024 * 1024


def read_sealed(path: Path, nonce: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The report body, or None and why it cannot be used."""
    try:
        data = read_capped(path, REPORT_CAP)
    except Unreadable as exc:
        return None, f"the report is not a plain file the judge wrote ({exc}); rejected"
    if data is None:
        return None, "pytest never wrote its report (the process was stopped or exited early)"
    try:
        doc = json.loads(data)
        body, mac = doc["body"], doc["mac"]
    except (ValueError, KeyError, TypeError):
        return None, "the report is not a sealed report (forged or damaged)"
    expected = hmac.new(nonce, str(body).encode(), hashlib.sha256).hexdigest()
    if not isinstance(mac, str) or not hmac.compare_digest(mac, expected):
        return None, "the report's seal does not verify: it was not written by the judge (forged report)"
    return json.loads(body), None


def outcome_of(phases: dict[str, dict[str, Any]]) -> tuple[Outcome, float]:
    """One test's outcome and duration from its setup/call/teardown phases."""
    duration = sum(float(p.get("duration", 0)) for p in phases.values())
    if any(phases.get(when, {}).get("outcome") == "failed" for when in ("setup", "teardown")):
        return "error", duration
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
    stdout: str,
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
    run.replaced = list(body.get("replaced", [])) + [f"plugin {p}" for p in body.get("foreign_plugins", [])]
    if canary is not None:
        run.canary = outcome_of(reported[canary])[0] if canary in reported else "missing"
    if run.problem is None:
        run.problem = integrity_problem(run, canary)
    return run


def integrity_problem(run: SuiteRun, canary: str | None) -> str | None:
    if run.report_exit_code != run.exit_code:
        return f"pytest reported exit status {run.report_exit_code} but the process exited {run.exit_code}"
    if run.replaced:
        return "pytest or unittest internals were replaced or extended during the run: " + ", ".join(run.replaced[:5])
    if canary is not None and run.canary != "failed":
        return f"tampering: a test built to fail was reported {run.canary}"
    return None
