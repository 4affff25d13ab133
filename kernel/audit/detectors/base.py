"""What every detector shares: the findings it returns, the context it reads, the words it uses."""

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from kernel.audit.flows import Earning, Flows, PairFlow
from kernel.db import Database
from kernel.settings import Settings


@dataclass
class Evidence:
    events: set[int] = field(default_factory=set)
    artifacts: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    ledger: set[int] = field(default_factory=set)

    def add(self, sighting: dict[str, Any]) -> None:
        if sighting.get("event_id") is not None:
            self.events.add(sighting["event_id"])
        if sighting.get("artifact_id"):
            self.artifacts.add(sighting["artifact_id"])
        if sighting.get("run_id"):
            self.runs.add(sighting["run_id"])
        if sighting.get("ledger_id") is not None:
            self.ledger.add(sighting["ledger_id"])

    def as_dict(self) -> dict[str, list[Any]]:
        return {
            "events": sorted(self.events),
            "artifacts": sorted(self.artifacts),
            "runs": sorted(self.runs),
            "ledger": sorted(self.ledger),
        }


@dataclass
class Finding:
    """One alert (or, with ``alert=False``, one paid flow worth recording)."""

    kind: str
    from_p: str
    to_p: str
    bytes: int
    score: float
    paid: int
    value: int
    summary: str
    story: list[str]
    evidence: Evidence
    thresholds: dict[str, float | int]
    alert: bool = True
    via: str = ""
    subject: str = ""


@dataclass
class Context:
    """What a detector reads: the database, the thresholds, the flows and what changed."""

    db: Database
    settings: Settings
    flows: Flows
    pairs: list[PairFlow]  # flows of the pairs to look at in this scan
    artifacts: set[str]  # artifacts created or read since the last scan


@dataclass
class Terms:
    """What the free part of a flow was worth, and what the receiver paid the origin for it."""

    value: int
    earnings: list[Earning]
    paid: int
    payments: list[dict[str, Any]]

    def unpaid(self, s: Settings) -> bool:
        return self.value >= s.audit_min_value and self.paid < s.audit_paid_ratio * self.value


def terms(ctx: "Context", flow: PairFlow) -> Terms:
    earnings = ctx.flows.earnings(flow, free_only=True)
    paid, payments = ctx.flows.paid(flow)
    return Terms(earnings[0].value if earnings else 0, earnings, paid, payments)


def value_thresholds(s: Settings, **extra: float | int) -> dict[str, float | int]:
    """The thresholds a judgement of paid against value uses, for the alert's record."""
    return {
        **extra,
        "min_bytes": s.audit_min_bytes,
        "min_value": s.audit_min_value,
        "paid_ratio": s.audit_paid_ratio,
        "window_seconds": s.audit_window_seconds,
    }


class Detector(Protocol):
    name: str
    description: str
    scope: str  # "pairs" or "artifacts": what it re-judges when they change (plugins default to pairs)

    def detect(self, ctx: Context) -> list[Finding]: ...


def confidence(nbytes: int, min_bytes: int) -> float:
    """How sure a byte count makes us: 0.63 at the minimum, 0.98 at four times it."""
    return 1 - math.exp(-nbytes / max(min_bytes, 1))


def short(ref: str | None) -> str:
    return (ref or "")[:12]


def describe(s: dict[str, Any]) -> str:
    """One sighting in words, with the ids that prove it."""
    at = s["at"][:19].replace("T", " ")
    p, run, art, path = s["principal"], short(s.get("run_id")), short(s.get("artifact_id")), s.get("path") or ""
    event = f" (event #{s['event_id']})" if s.get("event_id") is not None else ""
    channel = s["channel"]
    if channel == "artifact":
        text = f"{p} submitted artifact {art} containing {path}"
    elif channel == "data":
        text = f"{p} stored data artifact {art} file {path}" + (f" from run {run}" if run else "")
    elif channel == "workspace":
        text = f"{p}'s run {run} left {path} in its workspace"
    elif channel == "input":
        text = f"{p} sent it as the input of run {run}"
    elif channel == "output" and s["role"] == "origin":
        text = f"run {run} of {p}'s artifact {art} returned it"
    elif channel == "output":
        text = f"{p} received it as the value of run {run} of {s.get('source_owner')}'s artifact {art}"
    elif channel == "read":
        text = f"{p}'s run {run} read {path} of artifact {art} owned by {s.get('source_owner')}"
    elif channel == "delivery":
        text = f"{p} paid for artifact {art} of {s.get('source_owner')} and received {path} (ledger #{s['ledger_id']})"
    else:
        text = f"{p}: {channel} {art} {path}"
    return f"{at}  {text}{event}"
