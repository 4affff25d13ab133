"""All configuration in one object, read from ``KERNEL_*`` environment variables."""

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.models import Limits

if TYPE_CHECKING:
    from kernel.ledger import Bounds

MiB = 1024 * 1024
YEAR = 365 * 24 * 3600
from kernel.listing import MAX_LISTED  # noqa: E402,F401 - re-exported: the settings' module is where users look


class Settings(BaseSettings):
    """Kernel settings. Every field can be set as ``KERNEL_<FIELD>`` (e.g. KERNEL_RUNTIME)."""

    model_config = SettingsConfigDict(env_prefix="KERNEL_", extra="ignore")

    home: Path = Field(default=Path(".kernel"), description="state directory")
    runtime: Literal["auto", "runc", "runsc"] = "auto"
    image_source: Literal["auto", "registry", "debootstrap"] = "auto"
    registry_base: str = "debian:bookworm-slim"

    # scrip: every amount (grant, price, transfer, escrow) and the total supply are bounded,
    # checked before anything is written, so balances stay exact 64-bit integers
    max_amount: int = Field(default=10**12, ge=1, le=2**62, description="largest single amount of scrip")
    max_supply: int = Field(default=10**15, ge=1, le=2**62, description="largest total supply of scrip")

    # packages
    max_package_files: int = Field(default=2000, ge=1, le=1_000_000)
    max_package_bytes: int = Field(default=50 * MiB, ge=1024, le=64 * 1024 * MiB)
    max_input_bytes: int = Field(default=1 * MiB, ge=16, le=1024 * MiB)
    max_input_depth: int = Field(default=100, ge=1, le=1000, description="nesting of a JSON input")

    # storage: every new blob is paid for by the byte (held before it is written) and bounded
    storage_price_per_mib: int = Field(default=1, ge=0, le=10**9, description="scrip per started MiB stored")
    storage_free_bytes: int = Field(
        default=4 * MiB, ge=0, le=2**50, description="stored bytes free of charge per principal"
    )
    max_stored_bytes_per_principal: int = Field(default=1024 * MiB, ge=1024, le=2**50)
    max_stored_bytes_per_run: int = Field(default=64 * MiB, ge=0, le=2**50, description="bytes one run may store")

    # runs
    default_limits: Limits = Limits(cpu_seconds=10, memory_mb=256, wall_seconds=30)
    max_limits: Limits = Limits(cpu_seconds=120, memory_mb=2048, wall_seconds=600)
    cpus: float = Field(default=1.0, gt=0, le=256)
    output_bytes: int = Field(default=1 * MiB, ge=1024, le=1024 * MiB, description="cap on stdout+stderr of one run")
    kept_output_bytes: int = Field(default=64 * 1024, ge=0, le=64 * MiB, description="stdout/stderr kept per stream")
    result_bytes: int = Field(default=1 * MiB, ge=1024, le=1024 * MiB, description="cap on the returned JSON value")
    tmp_mb: int = Field(default=64, ge=1, le=64 * 1024)
    workspace_mb: int = Field(default=64, ge=1, le=64 * 1024)
    pids_runc: int = Field(default=128, ge=8, le=65536)
    # gVisor's own threads count against the host's pids limit: 64 aborts the sandbox
    # at once on a fork bomb, and a normal artifact needs headroom above ~40 idle threads.
    pids_runsc: int = Field(default=1024, ge=64, le=65536)
    sandbox_uid: int = Field(default=10001, ge=1, le=2**31 - 1)
    deliverable_uid: int = Field(
        default=10002, ge=1, le=2**31 - 1, description="the user a judged deliverable runs as (its own container)"
    )

    # the warm pool (`kernel serve`, or KERNEL_POOL=true): fresh containers made ahead of runs
    pool: bool = Field(default=False, description="keep a warm pool of fresh containers (the daemon always does)")
    pool_min: int = Field(default=2, ge=0, le=256, description="ready containers kept per warm shape")
    pool_max: int = Field(default=8, ge=1, le=1024, description="most ready containers per shape")
    pool_idle_seconds: int = Field(
        default=300, ge=1, le=YEAR, description="a shape unused this long keeps no ready containers"
    )
    pool_fillers: int = Field(default=2, ge=1, le=64, description="threads making pool containers")

    # the daemon (`kernel serve`) and its HTTP API
    listen: str = Field(
        default="127.0.0.1:8765", max_length=300, description="where `kernel serve` listens (host:port)"
    )
    api_max_body_bytes: int = Field(
        default=64 * MiB, ge=1024, le=4096 * MiB, description="largest HTTP request body (an upload, an input)"
    )
    api_rate_per_minute: int = Field(default=600, ge=1, le=10**7, description="requests one token may make a minute")
    api_burst: int = Field(default=60, ge=1, le=10**6, description="requests one token may make at once")
    api_concurrent_per_token: int = Field(default=8, ge=1, le=10**4, description="requests of one token in flight")

    # the kernel proxy (kernel_client calls from inside a run)
    max_message_bytes: int = Field(default=8 * MiB, ge=1024, le=1024 * MiB, description="largest single proxy message")
    max_calls_per_run: int = Field(default=1000, ge=0, le=10_000_000)
    max_connections_per_run: int = Field(default=4, ge=1, le=1024)
    max_depth: int = Field(default=8, ge=1, le=64, description="invocations in one chain, the top-level one included")
    max_tree_runs: int = Field(default=64, ge=1, le=100_000, description="runs started under one top-level invocation")
    call_price: int = Field(
        default=0, ge=0, le=10**9, description="scrip burned per proxy call, charged to the run's principal"
    )

    # the economy (`kernel world`, `kernel agent`): every price is per count, never per measured
    # quantity, so a world replays to the same ledger (see README "The economy")
    step_price: int = Field(default=1, ge=0, le=10**9, description="scrip burned per policy step (tick or command)")
    spawn_cost: int = Field(
        default=10, ge=0, le=10**12, description="a config's spawn cost until it is set for that config"
    )
    mint_per_tick: int = Field(default=200, ge=0, le=10**12, description="most scrip the Mint creates for tasks a tick")
    mint_tasks_per_tick: int = Field(default=2, ge=0, le=1000, description="most tasks the Mint posts a tick")
    task_repost_ticks: int = Field(
        default=5, ge=1, le=10**6, description="a settled task is posted again after this many ticks"
    )
    agent_memory_bytes: int = Field(default=64 * 1024, ge=0, le=64 * MiB, description="memory a policy may keep")
    observe_artifacts: int = Field(default=200, ge=1, le=10_000, description="artifacts listed in an observation")
    message_price: int = Field(default=1, ge=0, le=10**9, description="scrip burned per message sent")
    pool_entry_bytes: int = Field(default=16 * 1024, ge=16, le=64 * MiB, description="largest pool entry")
    max_pool_entries: int = Field(default=100_000, ge=1, le=10**9, description="entries one pool may hold")
    reason_model: str | None = Field(
        default=None, max_length=200, description="the `llm` model reason() asks (none: reason() is refused)"
    )
    reason_price_per_token: int = Field(default=1, ge=0, le=10**6, description="scrip burned per reason() token")
    reason_max_tokens: int = Field(default=256, ge=1, le=10**6, description="tokens one reason() call may use")

    # telemetry (`kernel telemetry`, the dashboard)
    telemetry_window: int = Field(
        default=10, ge=1, le=10**6, description="ticks a windowed metric covers; unused this long, an artifact dies"
    )
    audit_every_ticks: int = Field(
        default=5, ge=0, le=10**6, description="a world runs the black-market scan every this many ticks (0: never)"
    )

    # the judiciary
    appeal_runs: int = Field(
        default=3, ge=1, le=9, description="suite runs in fresh sandboxes when a verdict is disputed"
    )
    max_escrow_seconds: int = Field(
        default=366 * 86400, ge=60, le=YEAR * 10, description="longest escrow deadline or dispute window"
    )
    judge_within_seconds: int = Field(
        default=7 * 86400,
        ge=60,
        le=YEAR,
        description="a delivery (or appeal) with no verdict this long ends without one",
    )
    judge_call_seconds: float = Field(
        default=10.0, gt=0, le=600, description="how long one call from a suite may wait for the deliverable's answer"
    )

    # the audit log
    audit_batch: int = Field(default=500, ge=1, le=100_000)
    max_file_events_per_run: int = Field(default=20_000, ge=0, le=10_000_000)
    max_audit_events_per_run: int = Field(
        default=50_000, ge=100, le=10_000_000, description="audit rows one run may add; the rest is counted as a gap"
    )

    # black-market detection (`kernel audit scan`); every alert reports the thresholds it used
    audit_max_fingerprints: int = Field(
        default=16384, ge=64, le=2**24, description="fingerprints kept per blob (sampled above)"
    )
    audit_max_decoded_bytes: int = Field(
        default=64 * MiB, ge=0, le=2**36, description="bytes decoded (gzip, base64) per blob"
    )
    audit_common_authors: int = Field(
        default=3, ge=2, le=10**6, description="content written independently by this many principals is boilerplate"
    )
    audit_common_corpus: list[Path] | None = Field(
        default=None, description="files or folders whose content is boilerplate (default: the standard library)"
    )
    audit_window_seconds: int = Field(
        default=7 * 24 * 3600, ge=0, le=YEAR * 100, description="payments this long before or after a flow count"
    )
    audit_min_bytes: int = Field(default=256, ge=1, le=2**40, description="smaller flows are never alerts")
    audit_paid_ratio: float = Field(
        default=0.5, gt=0, le=1, description="a flow is unpaid when less than this share of its value was paid"
    )
    audit_min_value: int = Field(
        default=1, ge=1, le=2**62, description="content that earned less than this is not unpaid trade"
    )
    audit_dead_drop_seconds: int = Field(default=24 * 3600, ge=0, le=YEAR * 100, description="'soon' for a drop's read")
    audit_dead_drop_entropy: float = Field(
        default=7.2, ge=0, le=8, description="bits per byte that make content opaque"
    )
    audit_relay_share: float = Field(default=0.9, gt=0, le=1, description="share of an artifact copied to relay it")
    audit_reverse_seconds: int = Field(
        default=24 * 3600, ge=0, le=YEAR * 100, description="a transfer this close to a flow pays for it"
    )

    @field_validator("home", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty: unset it to use ./.kernel, or name a folder")
        return value

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        try:
            return value.expanduser().absolute()
        except RuntimeError as exc:  # '~nobody/x'
            raise ValueError(f"cannot expand '~' in {value}: give an absolute path") from exc

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.max_amount > self.max_supply:
            raise ValueError(f"max_amount ({self.max_amount}) must not be above max_supply ({self.max_supply})")
        if self.call_price > self.max_amount:
            raise ValueError(f"call_price ({self.call_price}) must not be above max_amount ({self.max_amount})")
        if self.pool_min > self.pool_max:
            raise ValueError(f"pool_min ({self.pool_min}) must not be above pool_max ({self.pool_max})")
        if self.default_limits.exceeds(self.max_limits):
            raise ValueError(
                f"default_limits exceed max_limits: {', '.join(self.default_limits.exceeds(self.max_limits))}"
            )
        return self

    @property
    def home_id(self) -> str:
        """A short name for this home, carried as a label by its containers."""
        return hashlib.sha256(str(self.home).encode()).hexdigest()[:16]

    @property
    def run_lease(self) -> int:
        """Longer than any run can last: a run owned from another pid namespace is over after it."""
        return 2 * self.max_limits.wall_seconds + 600

    @property
    def judge_lease(self) -> int:
        """Longer than a judgement with the most runs can take: a claim from another pid namespace lapses after it."""
        return (self.appeal_runs + 1) * self.max_limits.wall_seconds + 600

    @property
    def bounds(self) -> "Bounds":
        from kernel.ledger import Bounds

        return Bounds(self.max_amount, self.max_supply)

    @property
    def db_path(self) -> Path:
        return self.home / "kernel.db"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def package_dir(self) -> Path:
        return self.home / "packages"

    @property
    def run_dir(self) -> Path:
        return self.home / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"
