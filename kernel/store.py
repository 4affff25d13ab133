"""Artifact packages: validate, normalise, content-address, keep blobs.

The artifact id is the sha256 of the package's normal form (see ``kernel.package``), so
identical content always gets the same id. The blob is written before the database row
commits and removed again if the commit fails: nothing is stored half-way.
"""

import ast
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kernel.db import Database, now
from kernel.errors import InvalidInput, ManifestError, PackageError
from kernel.ledger import require_principal
from kernel.models import Artifact, LimitsOverride, Manifest, SubmitResult
from kernel.package import clean_path, normal_tar, read_package, untar
from kernel.settings import Settings


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


def write_blob(settings: Settings, artifact_id: str, data: bytes) -> bool:
    """Write the blob atomically; False if it was already there."""
    dest = blob_path(settings, artifact_id)
    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, dest)
    return True


def submit(db: Database, settings: Settings, path: Path, owner: str, public: bool = False) -> SubmitResult:
    """Validate and store a package; the same content always yields the same id."""
    require_principal(db, owner)
    files = read_package(path, settings.max_package_files, settings.max_package_bytes)
    manifest = parse_manifest(files)
    if manifest.kernel.entrypoint:
        check_entrypoint(files, manifest.kernel.entrypoint)
    for name, data in files.items():
        if name.endswith(".py"):
            top_level_names(data, name)  # every module must at least parse
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
        "depends": json.dumps([resolve(db, ref) for ref in manifest.kernel.depends]),
        "limits": manifest.kernel.limits.model_dump_json() if manifest.kernel.limits else None,
        "public": public,
    }
    return store_files(db, settings, files, row)


def store_data(
    db: Database, settings: Settings, owner: str, name: str, files: dict[str, bytes], public: bool
) -> SubmitResult:
    """A data artifact written by a run: the files as given, owned by the run's principal."""
    if not 0 < len(name) <= 100:
        raise InvalidInput("a data artifact needs a name of 1-100 characters.")
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
    return store_files(db, settings, clean, row)


def store_files(db: Database, settings: Settings, files: dict[str, bytes], row: dict[str, Any]) -> SubmitResult:
    """Content-address ``files`` and record them with ``row``; an existing id is returned as is."""
    blob = normal_tar(files)
    artifact_id = hashlib.sha256(blob).hexdigest()
    existing = db.one("SELECT * FROM artifacts WHERE id = ?", (artifact_id,))
    if existing:
        return SubmitResult(artifact=to_artifact(existing), created=False)
    new_blob = write_blob(settings, artifact_id, blob)
    record = {**row, "id": artifact_id, "files": len(files), "size": sum(len(d) for d in files.values())}
    try:
        with db.transaction() as conn:
            conn.execute(
                f"INSERT INTO artifacts ({', '.join(record)}, created_at) VALUES ({', '.join('?' * len(record))}, ?)",
                (*record.values(), now()),
            )
    except BaseException:
        if new_blob:
            blob_path(settings, artifact_id).unlink(missing_ok=True)
        raise
    return SubmitResult(artifact=get(db, artifact_id), created=True)


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
    tmp = Path(tempfile.mkdtemp(dir=settings.package_dir, prefix=".unpack-"))
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
