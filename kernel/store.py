"""Artifact packages: validate, normalise, content-address, keep blobs.

The artifact id is the sha256 of the package's normal form (see ``kernel.package``), so
identical content always gets the same id. The blob is written before the database row
commits and removed again if the commit fails: nothing is stored half-way.
"""

import ast
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kernel import ledger, process
from kernel.db import NEW_DATABASE, Database, now
from kernel.errors import InsufficientFunds, InvalidInput, ManifestError, PackageError
from kernel.ledger import require_principal
from kernel.models import LABEL_RE, Artifact, LimitsOverride, Manifest, SubmitResult
from kernel.package import clean_path, normal_tar, read_package, untar
from kernel.settings import MiB, Settings


def parse_manifest(files: dict[str, bytes]) -> Manifest:
    raw = files.get("pyproject.toml")
    if raw is None:
        raise ManifestError("the package has no pyproject.toml at its top level; add one.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"pyproject.toml is not UTF-8 text (byte {exc.start}); save it as UTF-8.") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"pyproject.toml is not valid TOML: {exc}.") from exc
    tool_kernel = data.get("tool", {}).get("kernel") if isinstance(data.get("tool"), dict) else None
    if tool_kernel is None:
        raise ManifestError("pyproject.toml has no [tool.kernel] table; add kind and entrypoint.")
    try:
        return Manifest.model_validate({"project": data.get("project"), "kernel": tool_kernel})
    except ValidationError as exc:
        raise ManifestError(f"pyproject.toml is invalid: {describe(exc)}.") from exc


def describe(exc: ValidationError) -> str:
    """Pydantic's first error as one phrase: where, and what was wrong."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]).replace("kernel.", "tool.kernel.")
    loc = loc or "the table"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{loc}: {err['msg']}{more}"


def module_files(module: str) -> list[str]:
    base = module.replace(".", "/")
    return [f"{root}{base}{suffix}" for root in ("", "src/") for suffix in (".py", "/__init__.py")]


def top_level_names(source: bytes, path: str) -> set[str]:
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise PackageError(f"'{path}' has a syntax error at line {exc.lineno}: {exc.msg}.") from exc
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def check_entrypoint(files: dict[str, bytes], entrypoint: str) -> None:
    """The entrypoint's module is in the package and defines the function at top level."""
    module, _, func = entrypoint.partition(":")
    found = [p for p in module_files(module) if p in files]
    if not found:
        raise PackageError(
            f"entrypoint '{entrypoint}': no module '{module}' in the package"
            f" (looked for {', '.join(module_files(module)[:2])})."
        )
    if func not in top_level_names(files[found[0]], found[0]):
        raise PackageError(f"entrypoint '{entrypoint}': '{found[0]}' defines no '{func}' at top level.")


def resolve(db: Database, ref: str) -> str:
    """The full artifact id for an id or unique prefix."""
    return str(artifact_row(db, ref)["id"])


def artifact_row(db: Database, ref: str) -> dict[str, Any]:
    ref = ref.strip().lower().removeprefix("sha256:")
    return db.by_prefix("artifacts", ref, "an artifact", "kernel artifacts")


def to_artifact(row: dict[str, Any]) -> Artifact:
    return Artifact(
        **{
            **row,
            "depends": json.loads(row["depends"]),
            "limits": LimitsOverride.model_validate_json(row["limits"]) if row["limits"] else None,
            "public": bool(row["public"]),
        }
    )


def get(db: Database, ref: str) -> Artifact:
    return to_artifact(artifact_row(db, ref))


def list_artifacts(db: Database, owner: str | None = None) -> list[Artifact]:
    where, params = ("WHERE owner = ?", (owner,)) if owner else ("", ())
    return [to_artifact(r) for r in db.rows(f"SELECT * FROM artifacts {where} ORDER BY created_at", params)]


def blob_path(settings: Settings, artifact_id: str) -> Path:
    return settings.blob_dir / artifact_id[:2] / f"{artifact_id}.tar"


# Temp files carry their writer's process token, so a sweep removes only those of dead kernels.
INCOMING, UNPACKING = ".incoming-", ".unpack-"


def temp_prefix(kind: str) -> str:
    return f"{kind}{process.token()}-"


def write_blob(settings: Settings, artifact_id: str, data: bytes) -> bool:
    """Write the blob atomically; False if it was already there."""
    dest = blob_path(settings, artifact_id)
    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=temp_prefix(INCOMING))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def sweep_temp(settings: Settings, owner_alive: Callable[[str], bool]) -> list[str]:
    """Remove half-written blobs and half-unpacked packages whose kernel process is gone."""
    removed = []
    candidates = [
        *settings.blob_dir.glob(f"*/{INCOMING}*"),
        *settings.package_dir.glob(f"{UNPACKING}*"),
        *settings.home.glob(f"{NEW_DATABASE}*"),
    ]
    for path in candidates:
        kind = next(k for k in (INCOMING, UNPACKING, NEW_DATABASE) if path.name.startswith(k))
        owner, dash, _ = path.name.removeprefix(kind).partition("-")  # the token holds no '-'
        owner = owner if dash else ""
        if owner and owner_alive(owner):
            continue
        if path.is_dir() and not path.is_symlink():
            for dirpath, dirnames, _ in os.walk(path):
                for d in (dirpath, *(os.path.join(dirpath, n) for n in dirnames)):
                    with contextlib.suppress(OSError):
                        os.chmod(d, 0o700)  # unpacked folders are read-only
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(str(path.relative_to(settings.home)))
    return removed


def sweep_orphans(db: Database, settings: Settings) -> list[str]:
    """Remove blobs no artifact row names (their writer died between the write and the commit).

    Each removal is decided inside a write transaction, and a writer re-checks its blob
    inside the one that commits its row, so a live writer's blob is either kept or
    written again: never a row without a blob."""
    if not settings.blob_dir.is_dir():
        return []
    known = {r["id"] for r in db.rows("SELECT id FROM artifacts")}
    removed = []
    for path in settings.blob_dir.glob("*/*.tar"):
        if path.stem in known:
            continue
        with db.transaction() as conn:
            if conn.execute("SELECT 1 FROM artifacts WHERE id = ?", (path.stem,)).fetchone():
                continue
            path.unlink(missing_ok=True)
        removed.append(str(path.relative_to(settings.home)))
    return removed


def submit(db: Database, settings: Settings, path: Path, owner: str, public: bool = False) -> SubmitResult:
    """Validate and store a package; the same content always yields the same id."""
    require_principal(db, owner)
    files = read_package(path, settings.max_package_files, settings.max_package_bytes)
    return submit_files(db, settings, files, owner, public)


def submit_files(
    db: Database, settings: Settings, files: dict[str, bytes], owner: str, public: bool = False,
    run_id: str | None = None, run_room: int | None = None,
) -> SubmitResult:  # fmt: skip
    """A package given as its files (path -> bytes): validated and stored exactly like ``submit``."""
    require_principal(db, owner)
    manifest = parse_manifest(files)
    if manifest.kernel.entrypoint:
        check_entrypoint(files, manifest.kernel.entrypoint)
    for name, data in files.items():
        if name.endswith(".py"):
            top_level_names(data, name)  # every module must at least parse
    if manifest.kernel.price > settings.max_amount:
        raise ManifestError(
            f"tool.kernel.price {manifest.kernel.price} is above the largest amount, {settings.max_amount} scrip"
            " (setting KERNEL_MAX_AMOUNT); ask less."
        )
    if manifest.kernel.limits:
        over = manifest.kernel.limits.over(settings.default_limits).exceeds(settings.max_limits)
        if over:
            raise ManifestError(f"[tool.kernel.limits] above the kernel's maximum: {', '.join(over)}.")
    row = {
        "name": manifest.project.name,
        "version": manifest.project.version,
        "kind": manifest.kernel.kind,
        "owner": owner,
        "price": manifest.kernel.price,
        "entrypoint": manifest.kernel.entrypoint,
        "target": manifest.kernel.target,
        "depends": json.dumps(list(dict.fromkeys(resolve(db, ref) for ref in manifest.kernel.depends))),
        "limits": manifest.kernel.limits.model_dump_json() if manifest.kernel.limits else None,
        "public": public,
    }
    return store_files(db, settings, files, row, run_id=run_id, run_room=run_room)


def store_data(
    db: Database,
    settings: Settings,
    owner: str,
    name: str,
    files: dict[str, bytes],
    public: bool,
    *,
    run_id: str | None = None,
    run_room: int | None = None,
) -> SubmitResult:
    """A data artifact written by a run: the files as given, owned by the run's principal."""
    if not 0 < len(name) <= 100 or not LABEL_RE.fullmatch(name):
        raise InvalidInput("a data artifact needs a name of 1-100 characters, none of them control characters.")
    if not files:
        raise InvalidInput("a data artifact needs at least one file.")
    if len(files) > settings.max_package_files:
        raise PackageError(f"a data artifact holds at most {settings.max_package_files} files.")
    clean = {clean_path(path): data for path, data in files.items()}
    if "" in clean or len(clean) != len(files):
        raise PackageError("data artifact paths must be distinct, non-empty relative paths.")
    if sum(len(d) for d in clean.values()) > settings.max_package_bytes:
        raise PackageError(f"a data artifact holds at most {settings.max_package_bytes} bytes.")
    row = {
        "name": name,
        "version": "0",
        "kind": "data",
        "owner": owner,
        "price": 0,
        "entrypoint": None,
        "target": None,
        "depends": "[]",
        "limits": None,
        "public": public,
    }
    return store_files(db, settings, clean, row, run_id=run_id, run_room=run_room)


def store_files(
    db: Database,
    settings: Settings,
    files: dict[str, bytes],
    row: dict[str, Any],
    *,
    run_id: str | None = None,
    run_room: int | None = None,
) -> SubmitResult:
    """Content-address ``files`` and record them with ``row``; an existing id is returned as is.

    New content is paid for by its owner: the storage price is held before the blob is
    written, burned when the artifact row commits, refunded if anything fails. ``run_room``
    is what the writing run may still store (settings.max_stored_bytes_per_run).
    """
    blob = normal_tar(files)
    artifact_id = hashlib.sha256(blob).hexdigest()
    existing = db.one("SELECT * FROM artifacts WHERE id = ?", (artifact_id,))
    if existing:
        return SubmitResult(artifact=to_artifact(existing), created=False)
    owner, stored = row["owner"], len(blob)
    if run_room is not None and stored > run_room:
        raise PackageError(
            f"storing {stored} more bytes would pass this run's bound of {settings.max_stored_bytes_per_run}"
            " stored bytes (setting KERNEL_MAX_STORED_BYTES_PER_RUN); store less."
        )
    record = {**row, "id": artifact_id, "files": len(files), "size": sum(len(d) for d in files.values()),
              "stored_bytes": stored}  # fmt: skip
    hold = f"store:{process.token()}:{secrets.token_hex(4)}"
    with db.transaction() as conn:
        held = _hold_price(conn, settings, hold, owner, stored, run_id)
    new_blob = False
    try:
        new_blob = write_blob(settings, artifact_id, blob)
        with db.transaction() as conn:
            if conn.execute("SELECT 1 FROM artifacts WHERE id = ?", (artifact_id,)).fetchone():
                ledger.settle_hold(conn, hold, owner, kind="refund", run_id=run_id, memo="content already stored")
                created = False
            else:
                if not blob_path(settings, artifact_id).exists():  # removed by a writer that failed meanwhile
                    write_blob(settings, artifact_id, blob)
                _charge(conn, settings, hold, owner, stored, held, run_id)
                columns, marks = ", ".join(record), ", ".join("?" * len(record))
                conn.execute(
                    f"INSERT INTO artifacts ({columns}, created_at) VALUES ({marks}, ?)", (*record.values(), now())
                )
                created = True
    except BaseException:
        with db.transaction() as conn:
            ledger.settle_hold(conn, hold, owner, kind="refund", run_id=run_id, memo="storage failed")
            if new_blob and not conn.execute("SELECT 1 FROM artifacts WHERE id = ?", (artifact_id,)).fetchone():
                blob_path(settings, artifact_id).unlink(missing_ok=True)
        raise
    return SubmitResult(artifact=get(db, artifact_id), created=created)


def stored_by(conn: sqlite3.Connection, owner: str) -> int:
    return int(
        conn.execute("SELECT COALESCE(SUM(stored_bytes), 0) FROM artifacts WHERE owner = ?", (owner,)).fetchone()[0]
    )


def storage_price(conn: sqlite3.Connection, settings: Settings, owner: str, stored: int) -> int:
    """What storing ``stored`` more bytes costs ``owner`` now; refused above the per-principal bound."""
    used = stored_by(conn, owner)
    if used + stored > settings.max_stored_bytes_per_principal:
        raise PackageError(
            f"{owner} stores {used} bytes; {stored} more would pass the bound of"
            f" {settings.max_stored_bytes_per_principal} (setting KERNEL_MAX_STORED_BYTES_PER_PRINCIPAL)."
        )
    billable = max(0, stored - max(0, settings.storage_free_bytes - used))
    price = -(-billable // MiB) * settings.storage_price_per_mib
    if price > settings.max_amount:
        raise PackageError(f"storing {stored} bytes would cost {price} scrip, above the largest amount; store less.")
    return price


def _hold_price(conn: sqlite3.Connection, settings: Settings, hold: str, owner: str, stored: int,
                run_id: str | None) -> int:  # fmt: skip
    price = storage_price(conn, settings, owner, stored)
    try:
        ledger.open_hold(conn, hold, owner, price, run_id=run_id, memo=f"storage of {stored} bytes")
    except InsufficientFunds:
        raise InsufficientFunds(
            f"{owner} has {ledger.balance_in(conn, owner)} scrip and storing {stored} bytes costs {price}"
            f" ({settings.storage_price_per_mib} per MiB above {settings.storage_free_bytes} free bytes each)."
        ) from None
    return price


def _charge(conn: sqlite3.Connection, settings: Settings, hold: str, owner: str, stored: int, held: int,
            run_id: str | None) -> None:  # fmt: skip
    """Burn the price due now (writers may have raced for the free bytes) from the hold, then the owner."""
    due = storage_price(conn, settings, owner, stored)
    memo = f"storage of {stored} bytes"
    ledger.move(conn, ledger.hold_account(hold), ledger.MINT, min(due, held), kind="storage", memo=memo, run_id=run_id)
    ledger.settle_hold(conn, hold, owner, kind="refund", run_id=run_id, memo=memo)
    if due > held:
        ledger.move(conn, ledger.principal_account(owner), ledger.MINT, due - held, kind="storage", memo=memo,
                    run_id=run_id)  # fmt: skip


STORE_LEASE = 3600  # no write takes longer: a storage hold owned from another pid namespace lapses after it


def _store_holds(db: Database) -> list[tuple[str, str, bool]]:
    """Each non-empty storage hold: account, payer, and whether its writer may still be at work."""
    rows = db.rows(
        "SELECT a.id, a.principal, MIN(l.at) AS since FROM accounts a JOIN ledger l ON l.credit = a.id"
        " WHERE a.id LIKE 'hold:store:%' AND a.balance > 0 GROUP BY a.id"
    )
    return [
        (r["id"], r["principal"], not process.lapsed(_hold_owner(r["id"]), _epoch(r["since"]), STORE_LEASE))
        for r in rows
    ]


def _epoch(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()


def store_holds(db: Database) -> dict[str, str]:
    """Storage holds of kernel processes still at work (for `ledger check`)."""
    return {
        account: f"a storage write by process {_hold_owner(account).split(':')[0]}"
        for account, _, at_work in _store_holds(db)
        if at_work
    }


def _hold_owner(account: str) -> str:
    return account.removeprefix("hold:store:").rpartition(":")[0]


def recover_holds(db: Database) -> list[str]:
    """Refund storage holds whose writer died between the hold and the write."""
    refunded = []
    for account, payer, at_work in _store_holds(db):
        if at_work:
            continue
        with db.transaction() as conn:
            ledger.settle_hold(conn, account.removeprefix("hold:"), payer, kind="refund",
                               memo="the kernel process storing it stopped")  # fmt: skip
        refunded.append(account.removeprefix("hold:"))
    return refunded


ledger.HOLD_OWNERS.append(store_holds)


def read_files(settings: Settings, artifact_id: str) -> dict[str, bytes]:
    """The files of a stored artifact, from its blob."""
    files: dict[str, bytes] = {}
    with tarfile.open(blob_path(settings, artifact_id)) as tar:
        for info in tar:
            stream = tar.extractfile(info)
            if stream is not None:
                files[info.name] = stream.read()
    return files


def unpacked(settings: Settings, artifact_id: str) -> Path:
    """A read-only unpacked copy of the package, made once and shared by its runs."""
    dest = settings.package_dir / artifact_id
    if dest.is_dir():
        return dest
    settings.package_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=settings.package_dir, prefix=temp_prefix(UNPACKING)))
    try:
        untar(blob_path(settings, artifact_id), tmp)
        for dirpath, _, filenames in os.walk(tmp):
            os.chmod(dirpath, 0o555)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o444)
        os.replace(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():
            raise
    return dest
