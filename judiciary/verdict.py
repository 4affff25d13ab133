"""Deciding a verdict from one or more suite runs against the recorded test ids."""

from judiciary.models import Outcome, SuiteRun, TestOutcome

RULE = (
    "pass only if every expected test passed in every run; a missing, skipped, xfailed, xpassed, errored"
    " or failed test fails the verdict, and a test whose outcome differs between runs is flaky and counts"
    " as failed"
)


def decide(expected: list[str], runs: list[SuiteRun]) -> tuple[bool, str, list[TestOutcome], list[str]]:
    """(passed, reason, per-test outcomes across runs, flaky test ids)."""
    for run in runs:
        if run.status != "ok" and run.problem is None:
            run.problem = f"the suite run ended {run.status}"
    per_test: list[TestOutcome] = []
    flaky: list[str] = []
    for index, nodeid in enumerate(expected):
        seen = [run.tests[index] for run in runs]
        outcomes = {t.outcome for t in seen}
        outcome: Outcome = seen[0].outcome if len(outcomes) == 1 else "flaky"
        if outcome == "flaky":
            flaky.append(nodeid)
        detail = next((t.detail for t in seen if t.detail), None)
        duration = max(t.duration for t in seen)
        per_test.append(TestOutcome(nodeid=nodeid, outcome=outcome, duration=duration, detail=detail))
    broken = [(i, r.problem) for i, r in enumerate(runs, 1) if r.problem]
    if broken:
        i, problem = broken[0]
        where = f"run {i} of {len(runs)}: " if len(runs) > 1 else ""
        return False, f"{where}{problem}", per_test, flaky
    failing = [t for t in per_test if t.outcome != "passed"]
    if failing:
        names = ", ".join(f"{t.nodeid} ({t.outcome})" for t in failing[:5])
        more = f" and {len(failing) - 5} more" if len(failing) > 5 else ""
        return False, f"{len(failing)} of {len(expected)} expected tests did not pass: {names}{more}", per_test, flaky
    return (
        True,
        f"all {len(expected)} expected tests passed" + (f" in all {len(runs)} runs" if len(runs) > 1 else ""),
        per_test,
        flaky,
    )
