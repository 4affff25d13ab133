"""Invoking an artifact: hold the price, run it in a fresh sandbox, classify, settle, record.

The price is held from the caller before anything starts (a caller who cannot pay is
``rejected``), paid to the owner when the run ends ``ok`` and refunded otherwise. The
hold, the run row and the settlement are ledger rows in SQLite transactions, so a crash
at any point leaves a hold that recovery refunds.
"""

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from kernel import ledger, process, store
from kernel.db import Database, now
from kernel.errors import InvalidInput, NotFound, SandboxError
from kernel.models import Artifact, Limits, RunResult, RunStatus, Usage
from kernel.sandbox.base import OWNER_LABEL, Mount, Sandbox, SandboxOutcome, SandboxSpec
from kernel.sandbox.scratch import RunDir
from kernel.settings import Settings

# -I: no PYTHON* variables, no user site, no script folder on sys.path (the runner adds
# what it needs); Debian's dist-packages (pytest) stay importable.
RUNNER = ["python3", "-I", "/opt/kernel/kernel_runner.py"]
SIGXCPU_EXIT = 128 + 24


def new_run_id() -> str:
    return secrets.token_hex(8)


def run_limits(artifact: Artifact, settings: Settings) -> Limits:
    return artifact.limits.over(settings.default_limits) if artifact.limits else settings.default_limits


def encode_input(value: Any, settings: Settings) -> str:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the input is not JSON-serialisable: {exc}.") from exc
    if len(text.encode()) > settings.max_input_bytes:
        raise InvalidInput(f"the input is larger than {settings.max_input_bytes} bytes; send less.")
    return text


class Invocation:
    """One call of ``invoke``: everything it needs, and the steps in order."""

    def __init__(self, db: Database, settings: Settings, sandbox: Sandbox, image: str):
        self.db, self.settings, self.sandbox, self.image = db, settings, sandbox, image

    def __call__(self, artifact_ref: str, principal: str, value: Any) -> RunResult:
        artifact = store.get(self.db, artifact_ref)
        ledger.require_principal(self.db, principal)
        if artifact.kind != "code":
            raise InvalidInput(f"artifact {artifact.short_id} is a {artifact.kind} artifact; only code can be invoked.")
        input_text = encode_input(value, self.settings)
        limits = run_limits(artifact, self.settings)
        runtime = self.sandbox.runtime(self.settings.runtime)
        run_id = new_run_id()
        refusal = self._start(run_id, artifact, principal, limits, runtime)
        if refusal:
            return self._finish(run_id, artifact, principal, RunStatus.REJECTED, refusal, None, None, Usage())
        return self._execute(run_id, artifact, principal, input_text, limits, runtime)

    def _start(self, run_id: str, artifact: Artifact, principal: str, limits: Limits, runtime: str) -> str | None:
        """Record the run and hold the price; returns a reason when the run is refused."""
        over = limits.exceeds(self.settings.max_limits)
        refusal = f"limits above the kernel's maximum: {', '.join(over)}" if over else None
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, artifact_id, principal, state, runtime, image, limits,"
                " owner_process, started_at) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (run_id, artifact.id, principal, runtime, self.image, limits.model_dump_json(), process.token(), now()),
            )
            ledger.ensure_mint(conn)
            if refusal is None and artifact.price > ledger.balance_in(conn, principal):
                refusal = (
                    f"{principal} cannot pay the price of {artifact.price} scrip"
                    f" (balance {ledger.balance_in(conn, principal)})"
                )
            if refusal is None:
                ledger.open_hold(conn, f"run:{run_id}", principal, artifact.price, run_id=run_id)
        return refusal

    def _execute(
        self, run_id: str, artifact: Artifact, principal: str, input_text: str, limits: Limits, runtime: str
    ) -> RunResult:
        rundir = RunDir(
            self.settings.run_dir,
            run_id,
            self.settings.workspace_mb,
            self.settings.result_bytes,
            self.settings.sandbox_uid,
        )
        try:
            (rundir.inputs / "call.json").write_text(json.dumps({"entrypoint": artifact.entrypoint}))
            (rundir.inputs / "input.json").write_text(input_text)
            spec = self._spec(run_id, artifact, limits, runtime, rundir)
            try:
                outcome = self.sandbox.run(spec)
            except SandboxError as exc:
                self._finish(run_id, artifact, principal, RunStatus.KILLED, str(exc), None, None, Usage())
                raise
            result, result_size = read_result(rundir.out / "result.json", self.settings.result_bytes)
            usage = measure(outcome, artifact.size + len(input_text.encode()), result_size, rundir.work)
        finally:
            rundir.close()
        status, reason = classify(outcome, result, result_size, limits, self.settings, spec.pids_limit)
        value = result.get("value") if status is RunStatus.OK and result else None
        return self._finish(run_id, artifact, principal, status, reason, outcome, value, usage)

    def _spec(self, run_id: str, artifact: Artifact, limits: Limits, runtime: str, rundir: RunDir) -> SandboxSpec:
        s = self.settings
        return SandboxSpec(
            run_id=run_id,
            image=self.image,
            runtime=runtime,
            command=RUNNER,
            env={"PYTHONPATH": "/opt/kernel", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"},
            mounts=[
                Mount(source=store.unpacked(s, artifact.id), target="/kernel/pkg"),
                Mount(source=rundir.inputs, target="/kernel/in"),
                Mount(source=rundir.out, target="/kernel/out", read_only=False),
                Mount(source=rundir.work, target="/work", read_only=False),
            ],
            limits=limits,
            cpus=s.cpus,
            pids_limit=s.pids_runsc if runtime == "runsc" else s.pids_runc,
            tmp_mb=s.tmp_mb,
            uid=s.sandbox_uid,
            output_bytes=s.output_bytes,
            kept_output_bytes=s.kept_output_bytes,
            labels={OWNER_LABEL: process.token()},
        )

    def _finish(
        self,
        run_id: str,
        artifact: Artifact,
        principal: str,
        status: RunStatus,
        reason: str | None,
        outcome: SandboxOutcome | None,
        value: Any,
        usage: Usage,
    ) -> RunResult:
        paid = status is RunStatus.OK
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (ledger.hold_account(f"run:{run_id}"),)).fetchone():
                to = artifact.owner if paid else principal
                ledger.settle_hold(conn, f"run:{run_id}", to, kind="price" if paid else "refund", run_id=run_id)
            conn.execute(
                "UPDATE runs SET state = 'done', status = ?, reason = ?, exit_code = ?, output = ?,"
                " stdout = ?, stderr = ?, stdout_truncated = ?, stderr_truncated = ?, usage = ?,"
                " cost = ?, finished_at = ? WHERE id = ?",
                (
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
                    now(),
                    run_id,
                ),
            )
        return get_run(self.db, run_id)


def read_result(path: Path, cap: int) -> tuple[dict[str, Any] | None, int]:
    """The runner's result document and its size; None if absent, unreadable or over the cap."""
    try:
        size = path.stat().st_size
    except OSError:
        return None, 0
    if size > cap:
        return None, size
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {"ok": False, "error": "the result file was not valid JSON"}, size
    return (doc if isinstance(doc, dict) else None), size


def measure(outcome: SandboxOutcome, bytes_in: int, result_size: int, work: Path) -> Usage:
    return Usage(
        cpu_seconds=round(outcome.cpu_seconds, 4),
        peak_memory_bytes=outcome.peak_memory_bytes,
        wall_seconds=round(outcome.wall_seconds, 4),
        io_read_bytes=outcome.io_read_bytes,
        io_write_bytes=outcome.io_write_bytes,
        workspace_bytes=tree_size(work),
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


def classify(
    outcome: SandboxOutcome,
    result: dict[str, Any] | None,
    result_size: int,
    limits: Limits,
    settings: Settings,
    pids_limit: int,
) -> tuple[RunStatus, str | None]:
    """The run's status and, unless ok, the reason in words."""
    if outcome.timed_out:
        return RunStatus.TIMEOUT, f"still running after the wall limit of {limits.wall_seconds} s; killed"
    if outcome.output_exceeded:
        return RunStatus.OUTPUT_LIMIT, f"printed more than {settings.output_bytes} bytes; killed"
    if result_size > settings.result_bytes:
        return RunStatus.OUTPUT_LIMIT, f"returned {result_size} bytes, above the cap of {settings.result_bytes}"
    if outcome.pids_exhausted and not (result and result.get("ok")):
        return RunStatus.KILLED, f"reached the process limit ({pids_limit}); killed"
    if outcome.oom_killed:
        return RunStatus.MEMORY_LIMIT, f"exceeded the memory limit of {limits.memory_mb} MB; killed"
    if outcome.died:
        return RunStatus.KILLED, "the sandbox stopped before the run finished (a limit was hit inside it)"
    if outcome.cpu_exceeded or outcome.exit_code == SIGXCPU_EXIT:
        return RunStatus.TIMEOUT, f"used its CPU limit of {limits.cpu_seconds} s; killed"
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
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def get_run(db: Database, ref: str) -> RunResult:
    ref = ref.strip().lower()
    if len(ref) < 6:
        raise InvalidInput(f"'{ref}' is too short for a run id: give at least 6 characters.")
    rows = db.rows("SELECT * FROM runs WHERE id >= ? AND id < ? LIMIT 2", (ref, ref + "g"))
    if not rows:
        raise NotFound(f"no run with id '{ref}': `kernel runs` lists them.")
    if len(rows) > 1:
        raise InvalidInput(f"'{ref}' matches several runs; give more characters.")
    return to_result(rows[0])


def list_runs(db: Database, limit: int = 50, principal: str | None = None) -> list[RunResult]:
    where, params = ("WHERE principal = ?", [principal]) if principal else ("", [])
    rows = db.rows(f"SELECT * FROM runs {where} ORDER BY started_at DESC LIMIT ?", (*params, limit))
    return [to_result(r) for r in rows]


def recover(db: Database) -> list[str]:
    """Runs whose kernel process is gone: mark them killed and refund their holds."""
    stale = [
        r
        for r in db.rows("SELECT id, principal, owner_process FROM runs WHERE state = 'running'")
        if not process.alive(r["owner_process"])
    ]
    for run in stale:
        with db.transaction() as conn:
            if conn.execute("SELECT state FROM runs WHERE id = ?", (run["id"],)).fetchone()[0] != "running":
                continue
            hold = ledger.hold_account(f"run:{run['id']}")
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (hold,)).fetchone():
                ledger.settle_hold(conn, f"run:{run['id']}", run["principal"], kind="refund", run_id=run["id"])
            conn.execute(
                "UPDATE runs SET state = 'done', status = 'killed', reason = ?, finished_at = ? WHERE id = ?",
                ("the kernel process running it stopped; its hold was refunded", now(), run["id"]),
            )
    return [r["id"] for r in stale]
