"""The kernel's Python API: one object, one method per thing a user can do.

The CLI is a thin layer over this class; everything it does is callable from Python::

    k = Kernel()                        # state in $KERNEL_HOME or ./.kernel
    k.create_principal("alice", grant=100)
    art = k.submit(Path("examples/wordcount"), owner="alice").artifact
    run = k.invoke(art.id, principal="alice", value={"text": "a b"})
"""

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from kernel import home, ledger, process, runs, store
from kernel.audit import AuditWriter, export, list_events
from kernel.audit.scan import Auditor
from kernel.db import Database
from kernel.errors import InvalidInput
from kernel.graph import dependency_graph
from kernel.listing import MAX_LISTED
from kernel.models import Alert, Artifact, AuditEvent, Flow, Graph, RunResult, ScanReport, SubmitResult
from kernel.sandbox.base import HOME_LABEL, Sandbox
from kernel.sandbox.scratch import sweep as sweep_run_dirs
from kernel.settings import Settings

AFTERMATH_WORKERS = 4
AFTERMATH_BACKLOG = 16  # settled runs whose audit waits; beyond it a run finishes its audit before answering


def count(value: object, what: str, low: int) -> int:
    """A listing's size: a whole number in low..MAX_LISTED, or one sentence."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_LISTED:
        raise InvalidInput(f"{what} must be a whole number from {low} to {MAX_LISTED} (got {value!r}).")
    return value


def text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text (got {type(value).__name__}).")
    return value


class Kernel:
    """``background_audit``: an invocation returns once settled, its audit (the container's
    end, the workspace walk, fingerprints, events) finishes on a worker thread while the
    run shows ``auditing`` (the daemon does this); otherwise ``invoke`` returns a run that
    is ``done``. With ``settings.pool`` a warm pool of fresh containers is kept."""

    def __init__(
        self,
        settings: Settings | None = None,
        sandbox: Sandbox | None = None,
        image: str | None = None,
        background_audit: bool = False,
    ):
        self.settings = settings or Settings()
        self.writable = home.prepare(self.settings.home)
        self.db = Database(self.settings.db_path, read_only=not self.writable)
        self.recovered = runs.recover(self.db, self.settings.run_lease) if self.writable else []
        self.audit = AuditWriter(
            self.settings.db_path, batch=self.settings.audit_batch, per_run=self.settings.max_audit_events_per_run
        )
        self._sandbox = sandbox
        self._image = image
        self._swept = False
        self._pooled = False
        self._pool_lock = threading.Lock()
        self._backlog = threading.BoundedSemaphore(AFTERMATH_BACKLOG)
        self._aftermaths: ThreadPoolExecutor | None = None
        self._world_calls: Any = None
        if background_audit:
            self._aftermaths = ThreadPoolExecutor(max_workers=AFTERMATH_WORKERS, thread_name_prefix="aftermath")

    # -- engine ---------------------------------------------------------------------
    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            from kernel.sandbox.docker import DockerSandbox

            self._sandbox = DockerSandbox()
        return self._sandbox

    def warm_pool(self) -> None:
        """With ``settings.pool``: keep warm containers of the default invocation's shape from now
        on (other shapes warm up as they arrive). Runs (invocations, judgements) call it."""
        from kernel.sandbox.docker import DockerSandbox

        sandbox = self.sandbox
        if not self.settings.pool or not isinstance(sandbox, DockerSandbox):
            return
        with self._pool_lock:
            if self._pooled:
                return
            self._pooled = True
            s = self.settings
            pool = sandbox.start_pool(minimum=s.pool_min, maximum=s.pool_max, idle_seconds=s.pool_idle_seconds,
                                      fillers=s.pool_fillers, labels=runs.owner_labels(s))  # fmt: skip
            shape = runs.invoke_shape(s, self.image(), sandbox.runtime(s.runtime), s.default_limits)
            pool.warm(shape, s.run_dir, runs.owner_labels(s))

    def pool_status(self) -> dict[str, Any]:
        """The warm pool's sizes per shape and its counters (empty without a pool)."""
        pool = getattr(self._sandbox, "pool", None)
        if pool is None:
            return {}
        return {"shapes": pool.sizes(), "stats": dict(pool.stats), "recent_errors": list(pool.errors)}

    def image(self) -> str:
        if self._image is None:
            from kernel.sandbox.docker import DockerSandbox
            from kernel.sandbox.image import require

            sandbox = self.sandbox
            assert isinstance(sandbox, DockerSandbox)
            self._image = require(sandbox.client).tag
        return self._image

    def writing(self) -> None:
        """Refuse, with a sentence, a command that writes to a read-only home."""
        self.db.require_writable()

    def sweep(self) -> dict[str, list[str]]:
        """Remove what crashed kernels left: their runs (refunded), containers, run dirs, temp files."""
        self.writing()
        recovered, holds = runs.recover(self.db, self.settings.run_lease), store.recover_holds(self.db)
        containers = self.sandbox.sweep(process.alive, {HOME_LABEL: self.settings.home_id})
        dirs = sweep_run_dirs(self.settings.run_dir, process.alive)
        temp = store.sweep_temp(self.settings, process.alive) + store.sweep_orphans(self.db, self.settings)
        self._swept = True
        return {
            "runs": self.recovered + recovered,
            "storage_holds": holds,
            "containers": containers,
            "run_dirs": dirs,
            "temp_files": temp,
        }

    # -- principals and scrip ---------------------------------------------------------
    def create_principal(self, name: str, grant: int = 0) -> int:
        return ledger.create_principal(self.db, name, grant, self.settings.bounds)

    def transfer(self, payer: str, to: str, amount: int, memo: str = "") -> int:
        """Move scrip between two principals; returns the payer's new balance."""
        return ledger.transfer(self.db, payer, to, amount, text(memo, "a memo"), self.settings.bounds)

    def balance(self, name: str) -> int:
        return ledger.balance(self.db, name)

    def principals(self) -> list[dict[str, Any]]:
        return self.db.rows(
            "SELECT p.name, a.balance, p.created_at FROM principals p"
            " JOIN accounts a ON a.id = 'principal:' || p.name ORDER BY p.name"
        )

    def ledger_check(self) -> ledger.LedgerReport:
        return ledger.check(self.db, self.settings.bounds)

    # -- artifacts ------------------------------------------------------------------
    def submit(self, path: Path | str, owner: str, public: bool = False) -> SubmitResult:
        self.writing()
        if not isinstance(public, bool):
            raise InvalidInput(f"public must be True or False (got {public!r}).")
        return store.submit(self.db, self.settings, Path(path), owner, public)

    def artifact(self, ref: str) -> Artifact:
        return store.get(self.db, text(ref, "an artifact id"))

    def artifacts(self, owner: str | None = None) -> list[Artifact]:
        return store.list_artifacts(self.db, owner)

    # -- runs -----------------------------------------------------------------------
    def invoke(self, artifact: str, principal: str, value: Any = None) -> RunResult:
        """A person's (or a program's) invocation: its trigger is ``user``."""
        return self.run_as(artifact, principal, value, trigger="user")

    def run_as(
        self, artifact: str, principal: str, value: Any = None, *, trigger: str = "user", tick: int | None = None
    ) -> RunResult:
        """Invoke with the trigger recorded on the run: ``user``, or a world's ``tick`` or ``command``."""
        self.writing()
        if not self._swept:
            self.sweep()
        self.warm_pool()
        finisher = self._finish_later if self._aftermaths is not None else None
        services = runs.Services(self.db, self.settings, self.sandbox, self.image(), self.audit, finisher,
                                 extension=self.world_calls)  # fmt: skip
        return runs.Invocation(services)(artifact, principal, value, trigger=trigger, tick=tick)

    @property
    def world_calls(self) -> Any:
        """The economy's kernel_client calls (submit, escrows, pools, messages, reason, buy_config)."""
        if self._world_calls is None:
            from kernel.world.calls import WorldCalls

            self._world_calls = WorldCalls(self)
        return self._world_calls

    def use_court(self, court: Callable[[], Any]) -> None:
        """Settle the escrows runs open and deliver to with this court (a world's, e.g. a trusted benchmark's)."""
        from kernel.world.calls import WorldCalls

        self._world_calls = WorldCalls(self, court)

    def _finish_later(self, aftermath: Callable[[], None]) -> bool:
        """Queue a settled run's aftermath; False (the caller runs it) when the queue is full, so that
        finished runs' folders (tmpfs: memory) cannot pile up faster than they are audited."""
        assert self._aftermaths is not None
        if not self._backlog.acquire(blocking=False):
            return False

        def run() -> None:
            try:
                aftermath()
            finally:
                self._backlog.release()

        try:
            self._aftermaths.submit(run)
        except RuntimeError:  # the kernel is closing: no more background work
            self._backlog.release()
            return False
        return True

    def run(self, ref: str) -> RunResult:
        return runs.get_run(self.db, ref)

    def runs(self, limit: int = 50, principal: str | None = None) -> list[RunResult]:
        return runs.list_runs(self.db, count(limit, "limit", 1), principal)

    # -- audit and graph ------------------------------------------------------------------
    def events(
        self, run_id: str | None = None, principal: str | None = None, limit: int | None = 1000
    ) -> list[AuditEvent]:
        if principal:
            ledger.require_principal(self.db, principal)
        return list_events(self.db, run_id, principal, None if limit is None else count(limit, "limit", 0) or None)

    def export_events(self, fmt: Literal["jsonl", "csv"]) -> Iterator[str]:
        return export(self.db, fmt)

    # -- black-market detection ------------------------------------------------------------
    @property
    def auditor(self) -> Auditor:
        return Auditor(self.db, self.settings)

    def audit_scan(self, rescore: bool = False, progress: Callable[[str], None] | None = None) -> ScanReport:
        """Fingerprint what is new since the last scan and run the detectors (incremental, idempotent)."""
        return self.auditor.scan(rescore, progress)

    def audit_flows(self) -> list[Flow]:
        return self.auditor.flow_table()

    def audit_alerts(
        self, kind: str | None = None, principal: str | None = None, everything: bool = False
    ) -> list[Alert]:
        if principal:
            ledger.require_principal(self.db, principal)
        return self.auditor.alerts(kind, principal, everything)

    def audit_alert(self, ref: str) -> Alert:
        return self.auditor.alert(ref)

    def explain_alert(self, ref: str) -> list[str]:
        return self.auditor.explain(ref)

    def audit_pending(self) -> dict[str, int]:
        return self.auditor.pending()

    def graph(self) -> Graph:
        return dependency_graph(self.db)

    def close(self) -> None:
        if self._aftermaths is not None:
            self._aftermaths.shutdown(wait=True)  # every settled run's audit is committed first
        self.audit.close()
        if self._sandbox is not None:
            self._sandbox.close()
        self.db.close()
