"""Pydantic models shared by everything: manifests, artifacts, runs and their usage."""

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Identifiers are checked with fullmatch (a pattern's `$` also matches before a final newline).
ENTRYPOINT_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
PRINCIPAL_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
# Names and versions people read in listings: printable, no control characters.
LABEL_RE = re.compile(r"[^\x00-\x1f\x7f]+")
MAX_SCRIP = 2**62  # no amount is ever above this (settings bound amounts far lower)


class Strict(BaseModel):
    """Base for models at a trust boundary: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


DAY = 86400
MAX_CPU_SECONDS, MAX_MEMORY_MB, MAX_WALL_SECONDS = DAY, 1024 * 1024, DAY  # no setting goes above these


class Limits(Strict):
    """Resource limits of one run."""

    cpu_seconds: int = Field(gt=0, le=MAX_CPU_SECONDS)
    memory_mb: int = Field(gt=0, le=MAX_MEMORY_MB)
    wall_seconds: int = Field(gt=0, le=MAX_WALL_SECONDS)

    def exceeds(self, maximum: "Limits") -> list[str]:
        """Names of the limits above ``maximum``, with both values."""
        return [
            f"{name} {getattr(self, name)} > {getattr(maximum, name)}"
            for name in type(self).model_fields
            if getattr(self, name) > getattr(maximum, name)
        ]


class LimitsOverride(Strict):
    """``[tool.kernel.limits]``: any subset of the limits."""

    cpu_seconds: int | None = Field(default=None, gt=0, le=MAX_CPU_SECONDS)
    memory_mb: int | None = Field(default=None, gt=0, le=MAX_MEMORY_MB)
    wall_seconds: int | None = Field(default=None, gt=0, le=MAX_WALL_SECONDS)

    def over(self, base: Limits) -> Limits:
        return base.model_copy(update=self.model_dump(exclude_none=True))


class KernelTable(Strict):
    """``[tool.kernel]`` of an artifact's pyproject.toml."""

    kind: Literal["code", "tests", "data"]
    entrypoint: str | None = None
    price: int = Field(default=0, ge=0, le=MAX_SCRIP)
    depends: list[str] = Field(default_factory=list, max_length=64)
    limits: LimitsOverride | None = None
    target: str | None = None

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint_shape(cls, value: str | None) -> str | None:
        if value is not None and not ENTRYPOINT_RE.fullmatch(value):
            raise ValueError("must look like 'module:function' (e.g. 'hello:main')")
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> "KernelTable":
        if self.kind == "code" and not self.entrypoint:
            raise ValueError("a code artifact needs an entrypoint ('module:function')")
        if self.kind == "tests" and not self.target:
            raise ValueError("a tests artifact needs a target (the module it tests)")
        return self


class ProjectTable(BaseModel):
    """``[project]``: only name and version matter to the kernel; the rest is kept."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=100)
    version: str = Field(min_length=1, max_length=64)

    @field_validator("name", "version")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not LABEL_RE.fullmatch(value):
            raise ValueError("must not contain control characters (newlines, tabs, ...)")
        return value


class Manifest(BaseModel):
    """What the kernel reads from an artifact's pyproject.toml."""

    project: ProjectTable
    kernel: KernelTable


class Artifact(BaseModel):
    """A stored artifact package."""

    id: str
    name: str
    version: str
    kind: str
    owner: str
    price: int
    entrypoint: str | None
    target: str | None
    depends: list[str]
    limits: LimitsOverride | None
    files: int
    size: int
    stored_bytes: int = 0  # the blob's size on disk, what storage is charged on
    public: bool = False
    created_at: datetime

    @property
    def short_id(self) -> str:
        return self.id[:12]


class SubmitResult(BaseModel):
    """The outcome of ``kernel submit``: the artifact, and whether it was new."""

    artifact: Artifact
    created: bool


class RunStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    KILLED = "killed"
    REJECTED = "rejected"


class Usage(BaseModel):
    """What one run consumed, measured by the host (never reported by the artifact)."""

    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    wall_seconds: float = 0.0
    io_read_bytes: int = 0
    io_write_bytes: int = 0
    workspace_bytes: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    proxy_calls: int = 0
    proxy_bytes_in: int = 0
    proxy_bytes_out: int = 0


class RunResult(BaseModel):
    """Everything known about one run."""

    id: str
    artifact_id: str
    principal: str
    status: RunStatus
    reason: str | None = None
    exit_code: int | None = None
    output: Any = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    usage: Usage = Field(default_factory=Usage)
    cost: int = 0
    runtime: str | None = None
    image: str | None = None
    limits: Limits | None = None
    parent_run_id: str | None = None
    root_run_id: str | None = None
    depth: int = 1
    trigger: Literal["tick", "command", "call", "user"] = "user"  # what started it (a world's clock, an owner...)
    tick: int | None = None  # the world's tick it ran in
    audit_incomplete: bool = False
    # running: in its sandbox; auditing: settled, its audit events still being committed; done
    state: Literal["running", "auditing", "done"] = "done"
    started_at: datetime
    finished_at: datetime | None = None


class AuditEvent(BaseModel):
    """One read or write: a proxy call, a kernel copy, or a file in a run's workspace."""

    id: int | None = None
    at: datetime
    run_id: str
    principal: str
    source: Literal["proxy", "kernel", "file"]
    op: str
    artifact_id: str | None = None
    path: str | None = None
    bytes: int | None = None
    digest: str | None = None
    ok: bool = True
    detail: str | None = None
    reasoning: str | None = None  # what the run said it was doing when it made this call (bounded)


class GraphEdge(BaseModel):
    parent: str
    child: str
    invocations: int


class GraphNode(BaseModel):
    id: str
    name: str
    owner: str
    invocations: int
    invoked_by: int  # distinct artifacts that invoked it


class Graph(BaseModel):
    """The dependency graph as actually exercised: who invoked whom, how often."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    depth: int
    most_reused: list[GraphNode]


class AlertEvidence(BaseModel):
    events: list[int]  # audit event ids
    artifacts: list[str]
    runs: list[str]
    ledger: list[int]  # ledger row ids (payments, earnings)


class Alert(BaseModel):
    """A finding of a black-market detector; ``alert`` is False for recorded paid flows and
    for alerts resolved by a later scan."""

    id: str
    kind: str
    alert: bool
    from_principal: str  # where the content originated
    to_principal: str  # who obtained it
    via: str = ""  # the relay, for laundering
    subject: str = ""  # the artifact or content the finding is about, when it is about one
    bytes: int
    score: float
    paid: int  # scrip that did pass from to_principal to from_principal in the window
    value: int  # what the content earned (0 when the detector does not use it)
    summary: str
    evidence: AlertEvidence
    thresholds: dict[str, float | int]
    audit_incomplete: list[str]  # runs in the evidence whose audit record has a gap
    first_scan: int
    last_scan: int
    created_at: datetime
    updated_at: datetime


class Flow(BaseModel):
    """Content of one principal that reached another, and the scrip that went back."""

    from_principal: str
    to_principal: str
    bytes: int
    fingerprints: int
    channels: dict[str, int]  # fingerprints first seen through: read, output, delivery, data, artifact, ...
    first_at: datetime
    last_at: datetime
    paid: int
    paid_by: dict[str, int]  # ledger kind (transfer, price, escrow_release) -> scrip
    value: int
    side_payments: int  # of ``paid``, plain transfers soon after the flow (reverse payments)
    alerts: list[str]


class ScanReport(BaseModel):
    scan: int
    artifacts_to: int
    events_to: int
    ledger_to: int
    sightings: int
    payments: int
    pairs: int
    new_alerts: list[str]
    updated_alerts: list[str]
    resolved_alerts: list[str]  # alerts looked at again and no longer raised (paid since, ...)
    recorded: int  # findings that are not alerts (paid flows)
    corpus_fingerprints: int | None
    notes: list[str]
    seconds: float
