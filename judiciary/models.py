"""The judiciary's records: escrows, test outcomes, suite runs and verdicts."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from kernel.models import Limits

Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed", "missing", "flaky"]
EscrowState = Literal["open", "delivered", "judged", "disputed", "released", "refunded"]


class TestOutcome(BaseModel):
    __test__ = False  # a model, not a pytest test class

    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    detail: str | None = None


class LinkRecord(BaseModel):
    """What crossed between the suite's process and the deliverable's during one run."""

    calls: int = 0  # requests the suite's side made (imports, attributes, calls, special methods)
    bytes_to_deliverable: int = 0
    bytes_to_suite: int = 0
    untrusted_operations: int = 0  # ==, <, +, suppressing __exit__...: refused between its objects and the suite's
    broken: str | None = None  # why the deliverable's side broke the link, if it did
    broken_during: str | None = None  # the test (or collection) during which it broke
    not_judgeable: str | None = None  # the first thing the suite asked that the judge cannot carry across
    not_judgeable_during: str | None = None


class SuiteRun(BaseModel):
    """One run of the suite in a fresh sandbox, as the kernel saw it and as pytest reported it."""

    status: str  # the suite's sandbox run's status: ok, timeout, memory_limit, output_limit, killed
    problem: str | None = None  # why this run cannot count as a pass, if it cannot
    exit_code: int | None = None
    report_exit_code: int | None = None
    tests: list[TestOutcome] = []
    replaced: list[str] = []  # kept for verdicts recorded before the deliverable left the suite's process
    canary: Outcome | None = None
    wall_seconds: float = 0.0
    deliverable_status: str | None = None  # its own sandbox's status: ok (stopped by the kernel) or a limit
    link: LinkRecord | None = None


class Verdict(BaseModel):
    """A judgement, reproducible from what it records."""

    id: str
    escrow_id: str
    kind: Literal["judgement", "appeal"]
    passed: bool
    reason: str
    rule: str
    tests: list[TestOutcome]
    flaky: list[str] = []
    runs: list[SuiteRun]
    deliverable_digest: str
    tests_digest: str
    image: str
    runtime: str
    limits: Limits
    ledger_rows: list[int] = []
    created_at: datetime


class EscrowEvent(BaseModel):
    at: datetime
    kind: str
    actor: str | None = None
    detail: str | None = None


class Escrow(BaseModel):
    id: str
    buyer: str
    amount: int
    tests_id: str
    expected: list[str]
    state: EscrowState
    worker: str | None = None
    deliverable_id: str | None = None
    deadline: datetime | None = None
    dispute_window: int = 0
    settles_at: datetime | None = None
    judge_by: datetime | None = None  # delivered or disputed: ends without a (new) verdict after this
    disputed_by: str | None = None
    dispute_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    verdicts: list[Verdict] = []
    history: list[EscrowEvent] = []
