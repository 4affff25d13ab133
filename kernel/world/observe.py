"""What an agent's policy sees on a step: one JSON document, the same on every replay.

Everything in it comes from the kernel's records in a fixed order (no wall clock, no
random ids: a world's ids are seeded), so the same seed and policies give the same
observations. ``seed`` is the agent's own random stream for this tick, split from the
world's seed by (agent, tick) as numpy's SeedSequence does.
"""

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from kernel import ledger
from kernel.db import Database
from kernel.settings import Settings
from kernel.world import mint, pools
from kernel.world.calls import escrow_brief

if TYPE_CHECKING:
    from judiciary.court import Court

POOL_ENTRIES = 10  # the latest entries of each pool an observation shows
MESSAGES = 50


def agent_seed(world_seed: int, agent_seq: int, tick: int) -> int:
    """The agent's random seed for ``tick``: a stream of its own, split from the world's seed."""
    sequence = np.random.SeedSequence(world_seed, spawn_key=(agent_seq, tick))
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def artifacts(db: Database, settings: Settings, viewer: str) -> list[dict[str, Any]]:
    """Public artifacts and the viewer's own, newest last, with their use by others."""
    rows = db.rows(
        "SELECT a.id, a.name, a.kind, a.owner, a.price, a.public, a.depends, a.target, a.entrypoint,"
        " (SELECT COUNT(*) FROM runs r WHERE r.artifact_id = a.id AND r.status = 'ok') AS uses,"
        " (SELECT COUNT(DISTINCT r.principal) FROM runs r WHERE r.artifact_id = a.id AND r.status = 'ok') AS invokers"
        " FROM artifacts a WHERE (a.public = 1 OR a.owner = ?) AND a.kind != 'data'"
        " ORDER BY a.rowid DESC LIMIT ?",
        (viewer, settings.observe_artifacts),
    )
    listed = []
    for r in reversed(rows):
        listed.append({**r, "public": bool(r["public"]), "depends": json.loads(r["depends"])})
    return listed


def observation(
    db: Database,
    settings: Settings,
    court: "Court",
    agent: dict[str, Any],
    *,
    tick: int,
    world_seed: int,
    trigger: str,
    command: Any = None,
) -> dict[str, Any]:
    name = agent["name"]
    tasks = mint.task_of_escrow(db)
    open_escrows = [escrow_brief(e, tasks, db) for e in court.escrows("open", settings.observe_artifacts)]
    mine = [p for p in pools.pools_of(db, name)]
    workers = db.rows("SELECT name, state FROM agents WHERE config_owner = ? AND name != ? ORDER BY seq", (name, name))
    whole = {
        "tick": tick,
        "agent": name,
        "trigger": trigger,
        "command": command,
        "seed": agent_seed(world_seed, agent["seq"], tick),
        "balance": ledger.balance(db, name),
        "memory": json.loads(agent["memory"]),
        "params": json.loads(agent["params"]),
        "config": {
            "artifact_id": agent["artifact_id"],
            "owner": agent["config_owner"],
            "free": agent["config_owner"] == name,
            "sale_price": agent["sale_price"],
        },
        "workers": [{**w, "balance": ledger.balance(db, w["name"])} for w in workers],
        "escrows": open_escrows,
        "artifacts": artifacts(db, settings, name),
        "messages": pools.inbox(db, name, agent["inbox_seen"], MESSAGES),
        "pools": [
            {
                "name": p,
                "members": pools.show(db, p)["members"],
                "entries": pools.read(db, p, name, since=_latest(db, p), limit=POOL_ENTRIES),
            }
            for p in mine
        ],
    }
    return fit(whole, settings.max_input_bytes - 4096)


# What gives way, in this order, when an observation would pass the input cap: the oldest
# artifacts, the oldest pool entries, the newest messages (they wait for a later step), the
# oldest escrows. Deterministic, so a replay trims the same way; ``truncated`` says how much.
TRIM_ORDER = (("artifacts", "oldest"), ("pools", "oldest"), ("messages", "newest"), ("escrows", "oldest"))


def size(obs: dict[str, Any]) -> int:
    return len(json.dumps(obs).encode())


def fit(obs: dict[str, Any], budget: int) -> dict[str, Any]:
    """``obs`` within ``budget`` bytes of JSON, its listings cut as TRIM_ORDER says."""
    cut: dict[str, int] = {}
    for key, end in TRIM_ORDER:
        while size(obs) > budget:
            if key == "pools":
                fullest = max(obs["pools"], key=lambda p: len(p["entries"]), default=None)
                if fullest is None or not fullest["entries"]:
                    break
                fullest["entries"].pop(0)
                cut[key] = cut.get(key, 0) + 1
            elif obs[key]:
                n = max(1, len(obs[key]) // 8)  # a few re-measures, not one per item
                obs[key] = obs[key][n:] if end == "oldest" else obs[key][:-n]
                cut[key] = cut.get(key, 0) + n
            else:
                break
    obs["truncated"] = cut
    return obs


def _latest(db: Database, pool: str) -> int:
    row = db.one("SELECT COALESCE(MAX(seq), 0) AS n FROM pool_entries WHERE pool = ?", (pool,))
    return max(0, int(row["n"] if row else 0) - POOL_ENTRIES)
