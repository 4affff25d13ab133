"""The Mint and externally valued work: tasks loaded from folders, posted as escrows it funds.

A task folder holds ``task.toml`` (name, kind, reward, target, function, signature,
description, uses) and ``suite/``, a tests artifact package: the hidden suite. Loading
stores every suite as a private tests artifact of the system principal ``mint`` and
records the tasks; nothing is stored unless every folder is valid. Each tick the Mint
posts up to ``KERNEL_MINT_TASKS_PER_TICK`` tasks that are not open, as escrows of
``reward x weight[kind]`` scrip, minting what it lacks (explicit ``mint`` ledger rows,
at most ``KERNEL_MINT_PER_TICK`` a tick, logged in ``mint_log``). The judiciary settles
deliveries as for any escrow; a settled task is posted again ``KERNEL_TASK_REPOST_TICKS``
later. The weights per kind are state the Governor adjusts.
"""

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernel import ledger, store
from kernel.db import Database, now
from kernel.errors import InvalidInput, KernelError, NotFound
from kernel.models import PRINCIPAL_RE
from kernel.package import read_package
from kernel.settings import Settings

if TYPE_CHECKING:
    from judiciary.court import Court

MINT_PRINCIPAL = "mint"  # the system principal that holds the Mint's suites and funds its escrows
TASK_KINDS = ("code", "tests")
KIND_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=rf"^{PRINCIPAL_RE.pattern}$")
    kind: str = Field(pattern=rf"^{KIND_RE.pattern}$")
    reward: int = Field(gt=0, le=10**9)
    target: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
    function: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
    signature: str = Field(default="", max_length=500)
    description: str = Field(default="", max_length=4000)
    uses: list[str] = Field(default_factory=list, max_length=20)


def _has_tests(files: dict[str, bytes]) -> bool:
    for path, data in files.items():
        if not path.endswith(".py") or not path.rsplit("/", 1)[-1].startswith("test"):
            continue
        tree = ast.parse(data, filename=path)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                return True
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                return True
    return False


def read_task(folder: Path, settings: Settings) -> tuple[TaskSpec, dict[str, bytes]]:
    """One task folder, validated: its spec and its suite's files (nothing stored)."""
    where = folder.name
    try:
        raw = tomllib.loads((folder / "task.toml").read_text())
    except FileNotFoundError as exc:
        raise InvalidInput(f"task folder {where} has no task.toml.") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"task folder {where}: task.toml is not valid TOML: {exc}.") from exc
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(
            f"task folder {where}: task.toml {'.'.join(map(str, first['loc']))}: {first['msg']}."
        ) from exc
    if not (folder / "suite").is_dir():
        raise InvalidInput(f"task folder {where} has no suite/ folder (the hidden tests artifact).")
    try:
        files = read_package(folder / "suite", settings.max_package_files, settings.max_package_bytes)
        manifest = store.parse_manifest(files)
        for path, data in files.items():
            if path.endswith(".py"):
                store.top_level_names(data, path)
    except KernelError as exc:
        raise InvalidInput(f"task folder {where}: its suite is broken: {exc}") from exc
    if manifest.kernel.kind != "tests":
        raise InvalidInput(f"task folder {where}: suite/ is a {manifest.kernel.kind} package; it must be kind tests.")
    if manifest.kernel.target != spec.target:
        raise InvalidInput(
            f"task folder {where}: the suite tests '{manifest.kernel.target}', the task '{spec.target}'."
        )
    if not _has_tests(files):
        raise InvalidInput(f"task folder {where}: the suite has no test functions (test_*.py with def test_...).")
    return spec, files


def load(db: Database, settings: Settings, folder: Path) -> list[dict[str, Any]]:
    """Load every task under ``folder`` (or ``folder`` itself if it is one task); all or nothing."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder of tasks.")
    dirs = [folder] if (folder / "task.toml").exists() else sorted(p for p in folder.iterdir() if p.is_dir()
                                                                   and (p / "task.toml").exists())  # fmt: skip
    if not dirs:
        raise InvalidInput(f"{folder} holds no task folders (each with a task.toml and a suite/).")
    read = [read_task(d, settings) for d in dirs]
    names = [spec.name for spec, _ in read]
    if len(set(names)) != len(names):
        raise InvalidInput(f"{folder}: two tasks are named the same; task names must be distinct.")
    known = {r["name"] for r in db.rows("SELECT name FROM tasks")} | set(names)
    for spec, _ in read:
        missing = [u for u in spec.uses if u not in known]
        if missing:
            raise InvalidInput(f"task {spec.name} uses '{missing[0]}', which is neither loaded nor in {folder}.")
    ensure_mint_principal(db)
    loaded = []
    for spec, files in read:
        manifest = store.parse_manifest(files)
        row = {"name": manifest.project.name, "version": manifest.project.version, "kind": "tests",
               "owner": MINT_PRINCIPAL, "price": 0, "entrypoint": None, "target": manifest.kernel.target,
               "depends": "[]", "limits": manifest.kernel.limits.model_dump_json() if manifest.kernel.limits else None,
               "public": False}  # fmt: skip
        tests = store.store_files(db, settings, files, row).artifact
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO tasks (name, kind, reward, tests_id, spec, loaded_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, reward = excluded.reward,"
                " tests_id = excluded.tests_id, spec = excluded.spec",
                (spec.name, spec.kind, spec.reward, tests.id, spec.model_dump_json(), now()),
            )
        loaded.append({"name": spec.name, "kind": spec.kind, "reward": spec.reward, "tests_id": tests.id})
    return loaded


def ensure_mint_principal(db: Database) -> None:
    with db.transaction() as conn:
        if not conn.execute("SELECT 1 FROM principals WHERE name = ?", (MINT_PRINCIPAL,)).fetchone():
            ledger.add_principal(conn, MINT_PRINCIPAL, "Mint")


def weights(db: Database) -> dict[str, float]:
    stored = {r["kind"]: float(r["weight"]) for r in db.rows("SELECT kind, weight FROM mint_weights")}
    kinds = {r["kind"] for r in db.rows("SELECT DISTINCT kind FROM tasks")} | set(TASK_KINDS)
    return {k: stored.get(k, 1.0) for k in sorted(kinds)}


def set_weight(db: Database, kind: str, weight: float) -> dict[str, float]:
    """The Mint's reward weight for a kind of task (the Governor's incentive lever)."""
    if not isinstance(kind, str) or not KIND_RE.fullmatch(kind):
        raise InvalidInput(f"{kind!r} is not a kind of task: 1-40 lowercase letters, digits, '-' or '_'.")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 100:
        raise InvalidInput(f"a Mint weight is a number from 0 to 100 (got {weight!r}).")
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO mint_weights VALUES (?, ?, ?) ON CONFLICT (kind) DO UPDATE SET weight = excluded.weight,"
            " updated_at = excluded.updated_at",
            (kind, float(weight), now()),
        )
    return weights(db)


def tasks(db: Database) -> list[dict[str, Any]]:
    rows = db.rows(
        "SELECT name, kind, reward, tests_id, escrow_id, posted, settled_tick, spec FROM tasks ORDER BY name"
    )
    return [{**{k: v for k, v in r.items() if k != "spec"}, "spec": json.loads(r["spec"])} for r in rows]


def task_of_escrow(db: Database) -> dict[str, dict[str, Any]]:
    """Open tasks by escrow id: what an observation shows beside the escrow."""
    return {r["escrow_id"]: {**json.loads(r["spec"]), "task": r["name"]}
            for r in db.rows("SELECT name, escrow_id, spec FROM tasks WHERE escrow_id IS NOT NULL")}  # fmt: skip


def adopt_orphans(db: Database) -> list[str]:
    """Open Mint escrows no task points at (a run killed between opening one and recording it):
    linked to their task, so a task is never posted (nor its reward minted) twice."""
    orphans = db.rows(
        "SELECT e.id, e.tests_id FROM escrows e WHERE e.buyer = ? AND e.state IN ('open', 'delivered', 'judged',"
        " 'disputed') AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.escrow_id = e.id) ORDER BY e.created_at",
        (MINT_PRINCIPAL,),
    )
    adopted = []
    with db.transaction() as conn:
        for orphan in orphans:
            linked = conn.execute(
                "UPDATE tasks SET escrow_id = ?, posted = posted + 1 WHERE name = (SELECT name FROM tasks"
                " WHERE tests_id = ? AND escrow_id IS NULL ORDER BY name LIMIT 1)",
                (orphan["id"], orphan["tests_id"]),
            ).rowcount
            if linked:
                adopted.append(orphan["id"])
    return adopted


def post(db: Database, settings: Settings, court: "Court", tick: int) -> list[dict[str, Any]]:
    """Post this tick's tasks as escrows the Mint funds; returns what was posted.

    Tasks are taken least-posted first; one whose reward (x weight) is 0 or does not fit
    what is left of this tick's minting budget is skipped, not a stop for the others."""
    adopt_orphans(db)
    due = db.rows(
        "SELECT name, kind, reward, tests_id FROM tasks WHERE escrow_id IS NULL"
        " AND (settled_tick IS NULL OR settled_tick + ? <= ?) ORDER BY posted, name",
        (settings.task_repost_ticks, tick),
    )
    weight = weights(db)
    spent = db.one("SELECT COALESCE(SUM(amount), 0) AS s FROM mint_log WHERE tick = ?", (tick,))
    budget = settings.mint_per_tick - int(spent["s"] if spent else 0)
    posted: list[dict[str, Any]] = []
    for task in due:
        if len(posted) >= settings.mint_tasks_per_tick:
            break
        amount = int(round(task["reward"] * weight.get(task["kind"], 1.0)))
        if amount <= 0 or amount > settings.max_amount:
            continue
        with db.transaction() as conn:
            lacking = max(0, amount - ledger.balance_in(conn, MINT_PRINCIPAL))
            if lacking > budget:
                continue
            budget -= lacking
            if lacking:
                ledger.mint(conn, ledger.principal_account(MINT_PRINCIPAL), lacking, settings.bounds,
                            memo=f"task {task['name']} at tick {tick}")  # fmt: skip
            conn.execute("INSERT INTO mint_log (tick, task, amount, at) VALUES (?, ?, ?, ?)",
                         (tick, task["name"], lacking, now()))  # fmt: skip
        try:
            escrow = court.open(MINT_PRINCIPAL, amount, task["tests_id"])
        except KernelError as exc:  # a suite that does not collect: not posted until it is reloaded
            with db.transaction() as conn:
                conn.execute("UPDATE tasks SET settled_tick = ? WHERE name = ?", (tick, task["name"]))
            posted.append({"task": task["name"], "error": str(exc)})
            continue
        with db.transaction() as conn:
            conn.execute(
                "UPDATE tasks SET escrow_id = ?, posted = posted + 1 WHERE name = ?", (escrow.id, task["name"])
            )
            conn.execute("UPDATE mint_log SET escrow_id = ? WHERE id = (SELECT MAX(id) FROM mint_log WHERE task = ?)",
                         (escrow.id, task["name"]))  # fmt: skip
        posted.append({"task": task["name"], "escrow_id": escrow.id, "amount": amount})
    return posted


def close_settled(db: Database, tick: int) -> list[str]:
    """Tasks whose escrow ended (released, refunded, expired): free to be posted again later."""
    done = db.rows(
        "SELECT t.name FROM tasks t JOIN escrows e ON e.id = t.escrow_id WHERE e.state IN ('released', 'refunded')"
    )
    with db.transaction() as conn:
        for row in done:
            conn.execute("UPDATE tasks SET escrow_id = NULL, settled_tick = ? WHERE name = ?", (tick, row["name"]))
    return [r["name"] for r in done]


def require_task(db: Database, name: str) -> dict[str, Any]:
    row = db.one("SELECT * FROM tasks WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no task named '{name}': `kernel world tasks list` lists them.")
    return row
