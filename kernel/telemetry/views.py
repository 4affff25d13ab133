"""What the dashboard, `kernel telemetry` and the API show: each view a JSON-ready dict read
from the snapshots (and, for state such as ownership and pools, from the world's tables)."""

import json
from collections import Counter, defaultdict
from typing import Any

from kernel.db import Database
from kernel.errors import InvalidInput
from kernel.telemetry import metrics
from kernel.telemetry.snapshot import LABELS, STEP_TRIGGERS, SYSTEM

MAX_LIMIT = 1000


def _limit(value: int, what: str = "limit") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"{what} must be a whole number from 1 to {MAX_LIMIT} (got {value!r}).")
    return value


def _window(value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**6:
        raise InvalidInput(f"--window must be a whole number of ticks from 1 to 1000000 (got {value!r}).")
    return value


def last_tick(db: Database) -> int | None:
    row = db.one("SELECT MAX(tick) AS t FROM telemetry_ticks")
    return None if row is None or row["t"] is None else int(row["t"])


def series(db: Database, since: int | None = None) -> dict[str, Any]:
    """Every per-tick metric over the ticks after ``since`` (all when None), oldest first."""
    rows = db.rows("SELECT tick, metrics FROM telemetry_ticks WHERE tick > ? ORDER BY tick",
                   (-1 if since is None else since,))  # fmt: skip
    names = list(LABELS)
    for r in rows:  # metrics a later version added, or one this version does not know, are kept
        names += [n for n in json.loads(r["metrics"]) if n not in names]
    decoded = [json.loads(r["metrics"]) for r in rows]
    return {
        "ticks": [r["tick"] for r in rows],
        "metrics": {n: [d.get(n) for d in decoded] for n in names},
        "labels": {n: LABELS.get(n, n) for n in names},
    }


def current(db: Database, window: int | None = None, default_window: int = 10) -> dict[str, Any]:
    """The latest tick's values, and sums or means over the last ``window`` ticks."""
    w = _window(window, default_window)
    tick = last_tick(db)
    if tick is None:
        return {"tick": None, "window": w, "values": {}, "over_window": {}, "labels": LABELS, "took_ms": None}
    rows = db.rows("SELECT metrics, took_ms FROM telemetry_ticks WHERE tick > ? ORDER BY tick", (tick - w,))
    decoded = [json.loads(r["metrics"]) for r in rows]
    latest = decoded[-1]
    summed = ("transfers", "trade_value", "transfer_value", "price_value", "escrow_value", "output", "scrip_burned",
              "cpu_seconds", "new_artifacts", "runs", "alerts_new")  # fmt: skip
    over: dict[str, Any] = {n: sum(d.get(n) or 0 for d in decoded) for n in summed}
    over["velocity"] = metrics.mean(d.get("velocity") for d in decoded)
    over["efficiency"] = metrics.efficiency(over["output"], over["scrip_burned"])
    new_artifacts = db.one("SELECT COUNT(*) AS n, COALESCE(SUM(compound), 0) AS c FROM telemetry_artifacts"
                           " WHERE born_tick > ?", (tick - w,))  # fmt: skip
    assert new_artifacts is not None
    over["compound_share"] = metrics.share(new_artifacts["c"], new_artifacts["n"])
    triggers = dict.fromkeys(STEP_TRIGGERS, 0)
    for r in db.rows("SELECT trigger, COUNT(*) AS n FROM runs WHERE tick > ? AND tick <= ? AND trigger IN"
                     " ('tick', 'command') GROUP BY trigger", (tick - w, tick)):  # fmt: skip
        triggers[r["trigger"]] = r["n"]
    over["autonomy"], over["control_entropy"] = metrics.control(triggers["tick"], triggers["command"])
    return {
        "tick": tick,
        "window": w,
        "values": latest,
        "over_window": over,
        "labels": LABELS,
        "took_ms": rows[-1]["took_ms"],
    }


def graph(db: Database) -> dict[str, Any]:
    """The artifact dependency graph: nodes (Genesis marked) and edges dependent -> dependency."""
    genesis = {r["artifact_id"] for r in db.rows("SELECT artifact_id FROM genesis")}
    nodes = [
        {**r, "genesis": r["id"] in genesis}
        for r in db.rows(
            "SELECT t.artifact_id AS id, t.name, t.owner, t.kind, t.depth, t.depth_ng, t.uses, t.born_tick"
            " FROM telemetry_artifacts t ORDER BY t.rowid"
        )
    ]
    ids = {n["id"] for n in nodes}
    edges = []
    for r in db.rows("SELECT id, depends FROM artifacts WHERE depends != '[]'"):
        if r["id"] in ids:
            edges += [{"source": r["id"], "target": d} for d in json.loads(r["depends"]) if d in ids]
    return {
        "nodes": nodes,
        "edges": edges,
        "depth": max((n["depth"] for n in nodes), default=0),
        "depth_non_genesis": max((n["depth_ng"] for n in nodes), default=0),
    }


def lindy(db: Database, window: int | None = None, default_window: int = 10, candidates: int = 10) -> dict[str, Any]:
    """Age against reuse (distinct invokers in the last ``window`` ticks), survival of artifacts
    (dead once unused ``window`` ticks; Kaplan-Meier), and the candidates for Genesis promotion:
    code that is still alive, at least ``window`` ticks old, used by at least two principals in
    the window, most reused first."""
    w = _window(window, default_window)
    now = last_tick(db)
    if now is None:
        return {"window": w, "heatmap": metrics.heatmap([]), "survival": metrics.survival([], 0, w), "candidates": []}
    reuse = {
        r["artifact_id"]: r["n"]
        for r in db.rows(
            "SELECT artifact_id, COUNT(DISTINCT principal) AS n FROM telemetry_invocations WHERE tick > ?"
            " GROUP BY artifact_id",
            (now - w,),
        )
    }
    arts = db.rows(
        "SELECT artifact_id, name, owner, kind, born_tick, last_use, uses FROM telemetry_artifacts WHERE kind = 'code'"
    )
    genesis = {r["artifact_id"] for r in db.rows("SELECT artifact_id FROM genesis")}
    lives = [metrics.Life(a["born_tick"], a["last_use"]) for a in arts]
    points = [(now - a["born_tick"], reuse.get(a["artifact_id"], 0)) for a in arts]
    found = [
        {
            "id": a["artifact_id"],
            "name": a["name"],
            "owner": a["owner"],
            "age": now - a["born_tick"],
            "invokers": reuse.get(a["artifact_id"], 0),
            "uses": a["uses"],
        }  # fmt: skip
        for a, life in zip(arts, lives, strict=True)
        if not metrics.lifetime(life, now, w)[1]
        and now - a["born_tick"] >= w
        and reuse.get(a["artifact_id"], 0) >= 2
        and a["artifact_id"] not in genesis
    ]
    found.sort(key=lambda c: (-c["invokers"], -c["uses"], c["id"]))
    return {
        "window": w,
        "heatmap": metrics.heatmap(points),
        "survival": metrics.survival(lives, now, w),
        "candidates": found[:candidates],
    }


def firms(db: Database, seed: int = 0) -> dict[str, Any]:
    """Firms: Louvain communities of principals tied by config ownership, pools, escrows and payments."""
    owner = {r["name"]: r["config_owner"] for r in db.rows("SELECT name, config_owner FROM agents")}
    ties: list[tuple[str, str, float]] = [(a, o, 3.0) for a, o in owner.items() if a != o]
    members: dict[str, list[str]] = defaultdict(list)
    for r in db.rows("SELECT pool, principal FROM pool_members ORDER BY pool, principal"):
        members[r["pool"]].append(r["principal"])
    for people in members.values():
        weight = 1.0 / max(1, len(people) - 1)  # a pool ties each member by one in all
        ties += [(a, b, weight) for i, a in enumerate(people) for b in people[i + 1 :]]
    ties += [(r["a"], r["b"], float(r["weight"])) for r in db.rows("SELECT a, b, weight FROM telemetry_ties")]
    ties = [t for t in ties if t[0] not in SYSTEM and t[1] not in SYSTEM]
    parts, modularity = metrics.firms(ties, seed)
    output = Counter({r["principal"]: r["n"] for r in db.rows(
        "SELECT principal, SUM(n) AS n FROM telemetry_output GROUP BY principal")})  # fmt: skip
    total = sum(output.values())
    autonomy = _autonomy_by_principal(db)
    listed = []
    for i, part in enumerate(parts):
        runs = [autonomy.get(p, (0, 0)) for p in part]
        auto, entropy = metrics.control(sum(r[0] for r in runs), sum(r[1] for r in runs))
        listed.append({
            "id": i, "members": sorted(part), "manager": metrics.manager(part, owner),
            "output": sum(output[p] for p in part),
            "output_share": metrics.share(sum(output[p] for p in part), total) or 0.0,
            "autonomy": auto, "control_entropy": entropy,
        })  # fmt: skip
    return {"modularity": modularity, "firms": listed}


def _autonomy_by_principal(db: Database) -> dict[str, tuple[int, int]]:
    """Per principal, its steps by its own loop and by command (kept by the snapshots)."""
    return {r["principal"]: (r["ticks"], r["commands"]) for r in db.rows("SELECT * FROM telemetry_control")}


def specialization(db: Database, window: int | None = None, default_window: int = 10) -> dict[str, Any]:
    """Per agent: 1 - H/log K over its action categories in the window, and the same a window earlier."""
    w = _window(window, default_window)
    now = last_tick(db)
    if now is None:
        return {"window": w, "agents": []}

    def over(lo: int, hi: int) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = defaultdict(dict)
        for r in db.rows("SELECT agent, category, SUM(n) AS n FROM telemetry_actions WHERE tick > ? AND tick <= ?"
                         " GROUP BY agent, category", (lo, hi)):  # fmt: skip
            found[r["agent"]][r["category"]] = r["n"]
        return found

    recent, before = over(now - w, now), over(now - 2 * w, now - w)
    agents = [
        {
            "name": a,
            "specialization": metrics.specialization(recent.get(a, {})),
            "before": metrics.specialization(before.get(a, {})),
            "top": max(recent[a], key=lambda c: (recent[a][c], c)) if recent.get(a) else None,
            "actions": dict(sorted(recent.get(a, {}).items())),
        }  # fmt: skip
        for a in sorted(set(recent) | set(before))
    ]
    return {"window": w, "categories": list(metrics.CATEGORIES), "agents": agents}


def top(db: Database, limit: int = 10, window: int | None = None, default_window: int = 10) -> dict[str, Any]:
    """The most used artifacts and the richest agents, with their output and specialization."""
    n = _limit(limit)
    arts = db.rows(
        "SELECT artifact_id AS id, name, owner, uses, invokers, earned FROM telemetry_artifacts"
        " ORDER BY uses DESC, earned DESC, rowid LIMIT ?",
        (n,),
    )
    output = {r["principal"]: r["n"] for r in db.rows(
        "SELECT principal, SUM(n) AS n FROM telemetry_output GROUP BY principal")}  # fmt: skip
    spec = {a["name"]: a["specialization"] for a in specialization(db, window, default_window)["agents"]}
    agents = [
        {**r, "output": output.get(r["name"], 0), "specialization": spec.get(r["name"])}
        for r in db.rows(
            "SELECT g.name, a.balance FROM agents g JOIN accounts a ON a.id = 'principal:' || g.name"
            " ORDER BY a.balance DESC, g.name LIMIT ?",
            (n,),
        )
    ]
    return {"artifacts": arts, "agents": agents}


def recent(db: Database, limit: int = 20) -> dict[str, Any]:
    """The latest runs and the black-market alerts standing, newest first."""
    n = _limit(limit)
    runs = db.rows(
        "SELECT r.id, COALESCE(a.name, r.artifact_id) AS artifact, r.principal, r.trigger, r.tick,"
        " COALESCE(r.status, r.state) AS status, r.cost FROM runs r LEFT JOIN artifacts a ON a.id = r.artifact_id"
        " ORDER BY r.rowid DESC LIMIT ?",
        (n,),
    )
    alerts = db.rows(
        "SELECT id, kind, from_principal AS 'from', to_principal AS 'to', score, summary, created_at,"
        # the tick of the first snapshot taken after the alert was raised: when telemetry saw it
        " (SELECT MIN(t.tick) FROM telemetry_ticks t WHERE t.at >= a.created_at) AS tick"
        " FROM audit_alerts a WHERE alert = 1 ORDER BY updated_at DESC LIMIT ?",
        (n,),
    )
    return {"runs": runs, "alerts": alerts}
