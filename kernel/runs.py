"""Invoking an artifact: hold the price, run it in a fresh sandbox, classify, settle, record.

The price is held from the caller before anything starts (a caller who cannot pay is
``rejected``), paid to the owner when the run ends ``ok`` and refunded otherwise. The
hold, the run row and the settlement are ledger rows in SQLite transactions, so a crash
at any point leaves a hold that recovery refunds.
"""

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kernel import ids, ledger, process, store
from kernel.audit.files import WorkspaceWatcher
from kernel.audit.files import walk as walk_files
from kernel.audit.fingerprint import BlobPrint, Fingerprinter
from kernel.audit.log import AuditWriter
from kernel.audit.provenance import INPUT_PATH, fingerprinter_for, print_file, save_prints, sha256_and_print
from kernel.calls import CallHandler, RunContext
from kernel.db import Database, now
from kernel.errors import InvalidInput
from kernel.models import Artifact, Limits, RunResult, RunStatus, Usage
from kernel.proxy import ProxyServer
from kernel.safe_io import Unreadable, read_capped
from kernel.sandbox.base import (
    HOME_LABEL,
    OWNER_LABEL,
    SOCKET_DIR,
    Dir,
    Sandbox,
    SandboxOutcome,
    SandboxSpec,
    Shape,
    Slot,
)
from kernel.sandbox.scratch import stage
from kernel.settings import Settings

# -I: no PYTHON* variables, no user site, no script folder on sys.path (the runner adds
# what it needs); Debian's dist-packages (pytest) stay importable.
RUNNER = ["python3", "-I", "/opt/kernel/kernel_runner.py"]
SOCKET_TARGET = f"{SOCKET_DIR}/kernel.sock"
SIGXCPU_EXIT = 128 + 24


def new_run_id() -> str:
    return ids.new_id()


def run_limits(artifact: Artifact, settings: Settings) -> Limits:
    return artifact.limits.over(settings.default_limits) if artifact.limits else settings.default_limits


def too_deep(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` deep (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | tuple | dict):
            if depth > limit:
                return True
            stack.extend((x, depth + 1) for x in (item.values() if isinstance(item, dict) else item))
    return False


def encode_input(value: Any, settings: Settings) -> str:
    if too_deep(value, settings.max_input_depth):
        raise InvalidInput(
            f"the input nests deeper than {settings.max_input_depth} levels (setting KERNEL_MAX_INPUT_DEPTH);"
            " flatten it."
        )
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"the input is not JSON-serialisable: {exc}.") from exc
    if len(text.encode()) > settings.max_input_bytes:
        raise InvalidInput(f"the input is larger than {settings.max_input_bytes} bytes; send less.")
    return text


@dataclass
class Services:
    """What a run needs from the kernel; shared by nested runs of one kernel."""

    db: Database
    settings: Settings
    sandbox: Sandbox
    image: str
    audit: AuditWriter
    # takes a run's aftermath to run later (the daemon); False: run it now (a full queue, a closing kernel)
    finisher: Callable[[Callable[[], None]], bool] | None = None
    # the economy's calls (submit, escrows, pools, messages, reason, buy_config): kernel.world.calls
    extension: Callable[[Any, Any], Any] | None = None  # (the run's CallHandler, the call) -> value


class Invocation:
    """One call of ``invoke``, top-level or nested: the steps in order."""

    def __init__(self, services: Services):
        self.s = services
        self.db, self.settings, self.sandbox, self.image = (
            services.db,
            services.settings,
            services.sandbox,
            services.image,
        )

    def __call__(
        self,
        artifact_ref: str,
        principal: str,
        value: Any,
        parent: RunContext | None = None,
        trigger: str = "user",
        tick: int | None = None,
    ) -> RunResult:
        artifact = store.get(self.db, artifact_ref)
        ledger.require_principal(self.db, principal)
        if artifact.kind != "code":
            raise InvalidInput(f"artifact {artifact.short_id} is a {artifact.kind} artifact; only code can be invoked.")
        input_text = encode_input(value, self.settings)
        limits = run_limits(artifact, self.settings)
        runtime = self.sandbox.runtime(self.settings.runtime)
        source = parent.ids if parent else ids.current()
        with ids.using(source):
            run_id = new_run_id()
        ctx = RunContext(
            run_id=run_id,
            principal=principal,
            artifact=artifact,
            root_run_id=parent.root_run_id if parent else run_id,
            depth=parent.depth + 1 if parent else 1,
            trigger="call" if parent else trigger,
            tick=parent.tick if parent else tick,
            ids=source,
        )
        refusal = self._start(ctx, parent, limits, runtime)
        if refusal:
            return self._finish(ctx, RunStatus.REJECTED, refusal, None, None, Usage())
        try:
            return self._execute(ctx, input_text, limits, runtime)  # its aftermath ends its audit
        except BaseException as exc:
            # Whatever failed (engine, disk, interrupt), the run ends and its hold is refunded.
            self._finish(ctx, RunStatus.KILLED, f"the kernel could not complete the run: {exc}", None, None, Usage())
            self.s.audit.end_run(run_id)  # a failed run's gap, if any, is recorded too
            self.s.audit.flush()
            raise

    def _refusal(self, conn: sqlite3.Connection, ctx: RunContext, limits: Limits) -> str | None:
        over = limits.exceeds(self.settings.max_limits)
        if over:
            return f"limits above the kernel's maximum: {', '.join(over)}"
        if ctx.depth > self.settings.max_depth:
            return f"nesting deeper than {self.settings.max_depth} invocations"
        in_tree = conn.execute("SELECT COUNT(*) FROM runs WHERE root_run_id = ?", (ctx.root_run_id,)).fetchone()[0]
        if in_tree > self.settings.max_tree_runs:
            return f"more than {self.settings.max_tree_runs} runs under one top-level invocation"
        balance = ledger.balance_in(conn, ctx.principal)
        if ctx.artifact.price > balance:
            return f"{ctx.principal} cannot pay the price of {ctx.artifact.price} scrip (balance {balance})"
        return None

    def _start(self, ctx: RunContext, parent: RunContext | None, limits: Limits, runtime: str) -> str | None:
        """Record the run and hold the price; returns a reason when the run is refused."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, artifact_id, principal, state, runtime, image, limits, owner_process,"
                " started_at, parent_run_id, root_run_id, depth, trigger, tick)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ctx.run_id, ctx.artifact.id, ctx.principal, runtime, self.image, limits.model_dump_json(),
                    process.token(), now(), parent.run_id if parent else None, ctx.root_run_id, ctx.depth,
                    ctx.trigger, ctx.tick,
                ),
            )  # fmt: skip
            ledger.ensure_mint(conn)
            refusal = self._refusal(conn, ctx, limits)
            if refusal is None:
                ledger.open_hold(conn, f"run:{ctx.run_id}", ctx.principal, ctx.artifact.price, run_id=ctx.run_id)
        return refusal

    def _execute(self, ctx: RunContext, input_text: str, limits: Limits, runtime: str) -> RunResult:
        s = self.settings
        audit = RunAudit(self.s.audit, ctx, fingerprinter_for(s))
        slot = self.sandbox.slot(invoke_shape(s, self.image, runtime, limits), s.run_dir, owner_labels(s))
        rundir = slot.rundir
        proxy = ProxyServer(
            rundir.sock / "kernel.sock",
            CallHandler(self.s, ctx),
            audit.refusal,
            max_message=s.max_message_bytes,
            max_calls=s.max_calls_per_run,
            max_connections=s.max_connections_per_run,
        )
        watcher = WorkspaceWatcher(rundir.work, audit.file_event, s.max_file_events_per_run)
        try:
            stage(store.unpacked(s, ctx.artifact.id), rundir.pkg)
            (rundir.inputs / "call.json").write_text(json.dumps({"entrypoint": ctx.artifact.entrypoint}))
            (rundir.inputs / "input.json").write_text(input_text)
            audit.copy_in(ctx.artifact, input_text.encode())
            proxy.start()
            watcher.start()
            spec = sandbox_spec(s, run_id=ctx.run_id, slot=slot, command=RUNNER, inline="runner", limits=limits,
                                env={"KERNEL_SOCKET": SOCKET_TARGET})  # fmt: skip
            try:
                outcome = self.sandbox.run(spec, slot)
            finally:
                proxy.close(wait=s.max_limits.wall_seconds)
            result, result_size, result_bytes = read_result_bytes(rundir.out / "result.json", s.result_bytes)
            slot.hang_up()  # its first process ends, and every process of the container with it
            status, reason = classify(outcome, result, result_size, limits, s, spec.shape.pids_limit)
            value = result.get("value") if status is RunStatus.OK and result else None
            if result and not result.get("ok") and result.get("traceback"):
                # The artifact's traceback, as it would have printed it, within the kept size.
                tail = str(result["traceback"]).encode()[-s.kept_output_bytes :]
                outcome.stderr = (outcome.stderr + b"\n" + tail)[-s.kept_output_bytes :]
            usage = measure(outcome, ctx.artifact.size + len(input_text.encode()), result_size)
            usage.proxy_calls, usage.proxy_bytes_in, usage.proxy_bytes_out = (
                proxy.calls,
                proxy.bytes_in,
                proxy.bytes_out,
            )
            # Settled now, the caller's answer; the run shows `auditing` until its audit is committed.
            done = self._finish(ctx, status, reason, outcome, value, usage, state="auditing")
        except BaseException:
            watcher.stop()
            proxy.close(wait=s.max_limits.wall_seconds)
            slot.close()
            raise
        after = Aftermath(self.s, ctx, slot, watcher, audit, result_bytes, usage)
        if self.s.finisher is not None and self.s.finisher(after):
            return done
        after()
        return get_run(self.db, ctx.run_id)

    def _finish(
        self,
        ctx: RunContext,
        status: RunStatus,
        reason: str | None,
        outcome: SandboxOutcome | None,
        value: Any,
        usage: Usage,
        incomplete: bool = False,
        state: str = "done",
    ) -> RunResult:
        paid = status is RunStatus.OK
        run_id, artifact = ctx.run_id, ctx.artifact
        with self.db.transaction() as conn:
            now_in = conn.execute("SELECT state FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
            if now_in != "running":  # already finished (or recovered): never settle twice
                return get_run(self.db, run_id)
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (ledger.hold_account(f"run:{run_id}"),)).fetchone():
                to = artifact.owner if paid else ctx.principal
                ledger.settle_hold(conn, f"run:{run_id}", to, kind="price" if paid else "refund", run_id=run_id)
            conn.execute(
                "UPDATE runs SET state = ?, status = ?, reason = ?, exit_code = ?, output = ?,"
                " stdout = ?, stderr = ?, stdout_truncated = ?, stderr_truncated = ?, usage = ?,"
                " cost = ?, audit_incomplete = ?, finished_at = ? WHERE id = ?",
                (
                    state,
                    status.value,
                    reason,
                    outcome.exit_code if outcome else None,
                    json.dumps(value) if status is RunStatus.OK else None,
                    outcome.stdout.decode("utf-8", "replace") if outcome else "",
                    outcome.stderr.decode("utf-8", "replace") if outcome else "",
                    bool(outcome and outcome.stdout_total > len(outcome.stdout)),
                    bool(outcome and outcome.stderr_total > len(outcome.stderr)),
                    usage.model_dump_json(),
                    artifact.price if paid else 0,
                    incomplete,
                    now(),
                    run_id,
                ),
            )
        return get_run(self.db, run_id)


class Aftermath:
    """What follows a settled run, off the caller's path: the container is killed (nothing
    more can write the workspace), the workspace is walked and fingerprinted, the audit
    events are committed, and only then does the run show ``done``. A failure here marks
    the run's audit incomplete; it never touches the settlement."""

    def __init__(
        self, s: "Services", ctx: RunContext, slot: Slot, watcher: WorkspaceWatcher, audit: "RunAudit",
        result: bytes, usage: Usage,
    ):  # fmt: skip
        self.s, self.ctx, self.slot, self.watcher, self.audit = s, ctx, slot, watcher, audit
        self.result, self.usage = result, usage

    def __call__(self) -> None:
        problems: list[str] = []
        rundir, run_id = self.slot.rundir, self.ctx.run_id
        try:
            self.slot.release()
            problems += self.watcher.stop()
            self.audit.incomplete(problems)
            problems += self.audit.walk(rundir.work)
            save_prints(self.s.db, self.audit.prints)
            self.audit.copy_out(self.result)
            self.usage.workspace_bytes = tree_size(rundir.work)
        except Exception as exc:  # noqa: BLE001 - recorded on the run, never raised into a settled run
            problems.append(f"the kernel could not finish the run's audit: {exc}")
        finally:
            self.watcher.stop()
            with contextlib.suppress(Exception):
                self.slot.close()
            if self.s.audit.end_run(run_id):
                problems.append("more audit events than KERNEL_MAX_AUDIT_EVENTS_PER_RUN")
            self.s.audit.flush()  # the run's events are committed before it shows as done (scans rely on it)
            with self.s.db.transaction() as conn:
                conn.execute(
                    "UPDATE runs SET state = 'done', usage = ?, audit_incomplete = audit_incomplete OR ?"
                    " WHERE id = ? AND state = 'auditing'",
                    (self.usage.model_dump_json(), bool(problems), run_id),
                )


class RunAudit:
    """The kernel's and the workspace's audit events of one run."""

    def __init__(self, writer: AuditWriter, ctx: RunContext, fingerprinter: Fingerprinter):
        self.writer, self.ctx, self.fingerprinter = writer, ctx, fingerprinter
        self.prints: list[tuple[str, BlobPrint]] = []  # content the run saw that is gone after it

    def _record(self, source: str, op: str, **kw: Any) -> None:
        self.writer.record(self.ctx.run_id, self.ctx.principal, source, op, **kw)

    def copy_in(self, artifact: Artifact, input_bytes: bytes) -> None:
        self._record("kernel", "copy_in", artifact_id=artifact.id, path="/kernel/pkg", size=artifact.size,
                     digest=artifact.id)  # fmt: skip
        digest, blob = sha256_and_print(self.fingerprinter, [input_bytes], len(input_bytes))
        self.prints.append((digest, blob))
        self._record("kernel", "copy_in", path=INPUT_PATH, size=len(input_bytes), digest=digest)

    def copy_out(self, data: bytes) -> None:
        """The result document the kernel copied out: the very bytes it read the value from."""
        if data:
            digest = hashlib.sha256(data).hexdigest()
            self._record("kernel", "copy_out", path="/kernel/out/result.json", size=len(data), digest=digest)

    def incomplete(self, problems: list[str]) -> None:
        for problem in problems:
            self._record("file", "audit_incomplete", ok=False, detail=problem)

    def refusal(self, op: str, code: str, message: str, size: int) -> None:
        self._record("proxy", op, size=size, ok=False, detail=f"{code}: {message}")

    def file_event(self, op: str, path: str, detail: str | None) -> None:
        self._record("file", op, path=path, detail=detail)

    def walk(self, root: Path) -> list[str]:
        """Hash and fingerprint every file the run left: the authoritative record of its writes."""
        try:
            for rel, full in walk_files(root):
                digest, size, blob = print_file(self.fingerprinter, full)
                self.prints.append((digest, blob))
                self._record("file", "written", path=rel, size=size, digest=digest)
        except OSError as exc:
            message = f"the post-run walk failed: {exc}"
            self._record("file", "audit_incomplete", ok=False, detail=message)
            return [message]
        return []


def owner_labels(settings: Settings) -> dict[str, str]:
    """The labels of this process's containers in this home (a sweep reads them)."""
    return {OWNER_LABEL: process.token(), HOME_LABEL: settings.home_id}


def shape(
    settings: Settings, *, image: str, runtime: str, limits: Limits, dirs: tuple[Dir, ...], uid: int | None = None
) -> Shape:
    """A hardened one-shot container for this kernel: every limit from ``settings``."""
    return Shape(
        image=image,
        runtime=runtime,
        uid=settings.sandbox_uid if uid is None else uid,
        memory_mb=limits.memory_mb,
        cpu_seconds=limits.cpu_seconds,
        cpus=settings.cpus,
        pids_limit=settings.pids_runsc if runtime == "runsc" else settings.pids_runc,
        tmp_mb=settings.tmp_mb,
        dirs=dirs,
    )


def invoke_shape(settings: Settings, image: str, runtime: str, limits: Limits) -> Shape:
    """The container of an invocation: its package and input read-only, its workspace and result capped."""
    dirs = (
        Dir(name="pkg", target="/kernel/pkg"),
        Dir(name="in", target="/kernel/in"),
        Dir(name="out", target="/kernel/out", writable=True, tmpfs_mb=settings.result_bytes // 2**20 + 1),
        Dir(name="work", target="/work", writable=True, tmpfs_mb=settings.workspace_mb),
        Dir(name="sock", target=SOCKET_DIR, writable=True),
    )
    return shape(settings, image=image, runtime=runtime, limits=limits, dirs=dirs)


def sandbox_spec(
    settings: Settings,
    *,
    run_id: str,
    slot: Slot,
    command: list[str],
    limits: Limits,
    env: dict[str, str] | None = None,
    inline: str | None = None,
) -> SandboxSpec:
    """One run in ``slot``: its command, its limits and this kernel's output caps."""
    return SandboxSpec(
        run_id=run_id,
        shape=slot.shape,
        root=slot.root,
        command=command,
        inline=inline,
        env={"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
        limits=limits,
        output_bytes=settings.output_bytes,
        kept_output_bytes=settings.kept_output_bytes,
        labels=owner_labels(settings),
    )


def read_result(path: Path, cap: int) -> tuple[dict[str, Any] | None, int]:
    """The runner's result document and its size; None if absent or over the cap."""
    doc, size, _ = read_result_bytes(path, cap)
    return doc, size


def read_result_bytes(path: Path, cap: int) -> tuple[dict[str, Any] | None, int, bytes]:
    """The runner's result document, its size and the bytes it was read from (what the audit's
    copy-out records); the document is None if absent or over the cap.

    The sandbox controlled this path: a link, FIFO or device there is an error result,
    never followed or waited on.
    """
    try:
        data = read_capped(path, cap)
    except Unreadable as exc:
        if "above the cap" in str(exc) or "grew past" in str(exc):
            return None, cap + 1, b""
        return {"ok": False, "error": f"the result is unusable: {exc}"}, 0, b""
    if data is None:
        return None, 0, b""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return {"ok": False, "error": "the result file was not valid JSON"}, len(data), data
    return (doc if isinstance(doc, dict) else None), len(data), data


def measure(outcome: SandboxOutcome, bytes_in: int, result_size: int) -> Usage:
    """What the run used; its workspace's size is added when the run's aftermath walks it."""
    return Usage(
        cpu_seconds=round(outcome.cpu_seconds, 4),
        peak_memory_bytes=outcome.peak_memory_bytes,
        wall_seconds=round(outcome.wall_seconds, 4),
        io_read_bytes=outcome.io_read_bytes,
        io_write_bytes=outcome.io_write_bytes,
        bytes_in=bytes_in,
        bytes_out=result_size + outcome.stdout_total + outcome.stderr_total,
    )


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):  # deleted while we walked
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def limit_status(
    outcome: SandboxOutcome, limits: Limits, settings: Settings, pids_limit: int
) -> tuple[RunStatus, str] | None:
    """The status of a run that a limit ended (wall, CPU, output, processes, memory), if one did."""
    if outcome.timed_out:
        return RunStatus.TIMEOUT, f"still running after the wall limit of {limits.wall_seconds} s; killed"
    if outcome.output_exceeded:
        return RunStatus.OUTPUT_LIMIT, f"printed more than {settings.output_bytes} bytes; killed"
    if outcome.pids_exhausted:
        return RunStatus.KILLED, f"reached the process limit{f' ({pids_limit})' if pids_limit else ''}; killed"
    if outcome.oom_killed:
        return RunStatus.MEMORY_LIMIT, f"exceeded the memory limit of {limits.memory_mb} MB; killed"
    if outcome.died:
        return RunStatus.KILLED, "the sandbox stopped before the run finished (a limit was hit inside it)"
    if outcome.cpu_exceeded or outcome.exit_code == SIGXCPU_EXIT:
        return RunStatus.TIMEOUT, f"used its CPU limit of {limits.cpu_seconds} s; killed"
    return None


def classify(
    outcome: SandboxOutcome,
    result: dict[str, Any] | None,
    result_size: int,
    limits: Limits,
    settings: Settings,
    pids_limit: int,
) -> tuple[RunStatus, str | None]:
    """The run's status and, unless ok, the reason in words."""
    if result_size > settings.result_bytes and not outcome.stopped_by_kernel:
        return RunStatus.OUTPUT_LIMIT, f"returned {result_size} bytes, above the cap of {settings.result_bytes}"
    if outcome.pids_exhausted and result and result.get("ok"):
        return RunStatus.OK, None  # it hit the process limit but recovered and returned
    stopped = limit_status(outcome, limits, settings, pids_limit)
    if stopped:
        return stopped
    if result is None:
        return RunStatus.ERROR, f"exited (code {outcome.exit_code}) without returning a value"
    if result.get("ok"):
        return RunStatus.OK, None
    error = str(result.get("error", "failed"))
    if error.startswith("MemoryError"):
        return RunStatus.MEMORY_LIMIT, f"ran out of memory (limit {limits.memory_mb} MB): {error}"
    return RunStatus.ERROR, f"raised {error}"


def to_result(row: dict[str, Any]) -> RunResult:
    return RunResult(
        id=row["id"],
        artifact_id=row["artifact_id"],
        principal=row["principal"],
        status=RunStatus(row["status"] or "killed"),
        reason=row["reason"],
        exit_code=row["exit_code"],
        output=json.loads(row["output"]) if row["output"] is not None else None,
        stdout=row["stdout"],
        stderr=row["stderr"],
        stdout_truncated=bool(row["stdout_truncated"]),
        stderr_truncated=bool(row["stderr_truncated"]),
        usage=Usage.model_validate_json(row["usage"]),
        cost=row["cost"],
        runtime=row["runtime"],
        image=row["image"],
        limits=Limits.model_validate_json(row["limits"]) if row["limits"] else None,
        parent_run_id=row["parent_run_id"],
        root_run_id=row["root_run_id"],
        depth=row["depth"],
        trigger=row["trigger"],
        tick=row["tick"],
        audit_incomplete=bool(row["audit_incomplete"]),
        state=row["state"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def get_run(db: Database, ref: str) -> RunResult:
    return to_result(db.by_prefix("runs", ref, "a run", "kernel runs"))


def list_runs(db: Database, limit: int = 50, principal: str | None = None) -> list[RunResult]:
    where, params = ("WHERE principal = ?", [principal]) if principal else ("", [])
    rows = db.rows(f"SELECT * FROM runs {where} ORDER BY started_at DESC LIMIT ?", (*params, limit))
    return [to_result(r) for r in rows]


def recover(db: Database, lease: float = 2 * 86400) -> list[str]:
    """Runs whose kernel process is gone: mark them killed and refund their holds.

    A run owned from another pid namespace (which cannot be seen) counts as gone once it
    is older than ``lease``: longer than any run can last (settings: ``run_lease``). A run
    that was settled but whose audit was still being written (``auditing``) keeps its
    settlement and is marked done with its audit incomplete."""
    stale = [
        r
        for r in db.rows(
            "SELECT id, principal, owner_process, started_at, state FROM runs WHERE state IN ('running', 'auditing')"
        )
        if process.lapsed(r["owner_process"], datetime.fromisoformat(r["started_at"]).timestamp(), lease)
    ]
    for run in stale:
        with db.transaction() as conn:
            state = conn.execute("SELECT state FROM runs WHERE id = ?", (run["id"],)).fetchone()[0]
            if state == "auditing":
                conn.execute("UPDATE runs SET state = 'done', audit_incomplete = 1 WHERE id = ?", (run["id"],))
                continue
            if state != "running":
                continue
            hold = ledger.hold_account(f"run:{run['id']}")
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (hold,)).fetchone():
                ledger.settle_hold(conn, f"run:{run['id']}", run["principal"], kind="refund", run_id=run["id"])
            conn.execute(
                "UPDATE runs SET state = 'done', status = 'killed', reason = ?, finished_at = ? WHERE id = ?",
                ("the kernel process running it stopped; its hold was refunded", now(), run["id"]),
            )
    return [r["id"] for r in stale]
