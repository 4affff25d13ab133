"""The audit log: one ``audit_events`` table, written by one batching thread.

Events are queued by whoever sees them (proxy threads, the kernel's copies, workspace
watchers) and inserted by a single writer thread in transactions of up to ``batch``
rows, on its own SQLite connection. ``flush()`` returns once everything queued before it
is committed, so a run's events are all readable when the run returns.
"""

import csv
import io
import json
import queue
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from kernel.db import Database, now
from kernel.errors import KernelError
from kernel.models import AuditEvent

COLUMNS = (
    "at", "run_id", "principal", "source", "op", "artifact_id", "path", "bytes", "digest", "ok", "detail", "reasoning",
)  # fmt: skip
INSERT = f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
Row = tuple[Any, ...]


def gap_row(run_id: str, principal: str, detail: str) -> Row:
    """The row that says some of a run's events were not recorded."""
    return (now(), run_id, principal, "kernel", "audit_incomplete", None, None, None, None, 0, detail, None)


class AuditWriter:
    """Queues audit rows for the writer thread.

    ``per_run`` bounds the rows one run may add: the row that reaches the bound is a gap
    marker, later rows are counted, not written, and ``end_run`` records how many were
    left out. Nothing is dropped without a row saying so.
    """

    def __init__(self, db_path: Path, batch: int = 500, interval: float = 0.05, per_run: int | None = None):
        self.db_path, self.batch, self.interval, self.per_run = db_path, batch, interval, per_run
        self._counts: dict[str, int] = {}
        self._dropped: dict[str, tuple[str, int]] = {}
        self._count_lock = threading.Lock()
        self.queue: queue.SimpleQueue[Row | threading.Event | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.written = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def record(
        self,
        run_id: str,
        principal: str,
        source: str,
        op: str,
        *,
        artifact_id: str | None = None,
        path: str | None = None,
        size: int | None = None,
        digest: str | None = None,
        ok: bool = True,
        detail: str | None = None,
        reasoning: str | None = None,
    ) -> None:
        self._ensure_thread()
        if self._admit(run_id, principal):
            row = (now(), run_id, principal, source, op, artifact_id, path, size, digest, int(ok), detail, reasoning)
            self.queue.put(row)

    def _admit(self, run_id: str, principal: str) -> bool:
        if self.per_run is None:
            return True
        with self._count_lock:
            n = self._counts.get(run_id, 0) + 1
            self._counts[run_id] = n
            if n < self.per_run:
                return True
            self._dropped[run_id] = (principal, self._dropped.get(run_id, (principal, 0))[1] + 1)
            if n > self.per_run:
                return False
        detail = (
            f"this run reached {self.per_run} audit events (KERNEL_MAX_AUDIT_EVENTS_PER_RUN); later ones are counted"
        )
        self.queue.put(gap_row(run_id, principal, detail))
        return False

    def end_run(self, run_id: str) -> int:
        """Forget a finished run's count; returns how many of its events were not written (and records that)."""
        with self._count_lock:
            self._counts.pop(run_id, None)
            principal, dropped = self._dropped.pop(run_id, ("", 0))
        if dropped:
            detail = f"{dropped} events of this run were not recorded: it passed {self.per_run} audit events"
            self.queue.put(gap_row(run_id, principal, detail))
        return dropped

    def record_rows(self, rows: list[Row]) -> None:
        """Queue pre-built rows (in COLUMNS order): the fast path for bulk producers."""
        self._ensure_thread()
        for row in rows:
            self.queue.put(row)

    def flush(self) -> None:
        """Block until every event queued so far is committed."""
        if self._thread is None:
            return
        done = threading.Event()
        self.queue.put(done)
        while not done.wait(1.0):
            if self._thread is None or not self._thread.is_alive():
                self.error = self.error or RuntimeError("the writer thread stopped")
                break
        if self.error is not None:
            raise KernelError(f"the audit writer failed: {self.error}; events after it were not recorded.")

    def close(self) -> None:
        if self._thread is not None:
            self.flush()
            self.queue.put(None)
            self._thread.join()
            self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=60)
        except sqlite3.Error as exc:
            self.error = exc
            return
        try:
            while True:
                rows: list[Row] = []
                waiters: list[threading.Event] = []
                stop = self._collect(rows, waiters)
                if rows and self.error is None:
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                        conn.executemany(INSERT, rows)
                        conn.execute("COMMIT")
                        self.written += len(rows)
                    except sqlite3.Error as exc:
                        self.error = exc
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                for w in waiters:
                    w.set()
                if stop:
                    return
        finally:
            conn.close()

    def _collect(self, rows: list[Row], waiters: list[threading.Event]) -> bool:
        """Gather up to one batch; returns True when asked to stop."""
        item = self.queue.get()
        while True:
            if item is None:
                return True
            if isinstance(item, threading.Event):
                waiters.append(item)
                return False
            rows.append(item)
            if len(rows) >= self.batch:
                return False
            try:
                item = self.queue.get(timeout=self.interval)
            except queue.Empty:
                return False


def list_events(
    db: Database,
    run_id: str | None = None,
    principal: str | None = None,
    limit: int | None = 1000,
    after_id: int = 0,
) -> list[AuditEvent]:
    where: list[str] = ["id > ?"]
    params: list[object] = [after_id]
    if run_id:
        where.append("run_id = ?")
        params.append(db.by_prefix("runs", run_id, "a run", "kernel runs")["id"])
    if principal:
        where.append("principal = ?")
        params.append(principal)
    sql = f"SELECT * FROM audit_events WHERE {' AND '.join(where)} ORDER BY id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [AuditEvent(**{**r, "ok": bool(r["ok"])}) for r in db.rows(sql, tuple(params))]


def export(db: Database, fmt: Literal["jsonl", "csv"]) -> Iterator[str]:
    """Every audit event as JSON lines or CSV, streamed in pages."""
    fields = ["id", *COLUMNS]
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerow(fields)
        yield buf.getvalue()
    last = 0
    while page := list_events(db, limit=5000, after_id=last):
        last = page[-1].id or last
        if fmt == "jsonl":
            yield "".join(json.dumps(e.model_dump(mode="json")) + "\n" for e in page)
        else:
            buf = io.StringIO()
            writer = csv.writer(buf)
            for e in page:
                writer.writerow([getattr(e, f) if f != "at" else e.at.isoformat() for f in fields])
            yield buf.getvalue()
