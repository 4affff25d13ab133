"""One snapshot per world tick, read from what that tick added: never a recomputation of history.

A snapshot of tick T reads the ledger rows and artifacts after the previous snapshot's
cursors, the runs of the ticks since the previous snapshot (``runs.tick``, indexed) and
their proxy calls, folds them into per-artifact, per-agent and per-tie tables, and stores
the tick's metrics as one row, all in one transaction. Its cost grows with what the tick
did and with the number of agents (balances), not with the length of the history.
"""

import json
import time
from collections import Counter, defaultdict
from typing import Any

from kernel.db import Database, now
from kernel.telemetry import metrics

TRADE = ("transfer", "price", "escrow_release", "config_sale")  # value moved between principals
BURN = ("step", "call_fee", "reason", "storage", "message")  # scrip spent on compute and storage
SYSTEM = frozenset({"mint"})  # principals that are not economic actors
STEP_TRIGGERS = ("tick", "command")  # runs of an agent's policy; the others invoke artifacts

# The proxy calls of agents' runs in a span of ticks. A stored package is one audit event per file:
# one action per (run, artifact) stored. `+r.principal` keeps SQLite on the runs' tick index (by
# principal it would read every run each agent ever made: a snapshot's cost would grow with history).
ACTIONS = (
    "SELECT e.principal, e.op, a.kind, COUNT(DISTINCT CASE WHEN e.op IN ('submit', 'write_artifact')"
    " THEN e.run_id || ':' || e.artifact_id ELSE e.id END) FROM runs r"
    " JOIN audit_events e ON e.run_id = r.id AND e.source = 'proxy' AND e.ok = 1"
    " LEFT JOIN artifacts a ON a.id = e.artifact_id"
    " WHERE r.tick > ? AND r.tick <= ? AND +r.principal IN (SELECT name FROM agents)"
    " GROUP BY e.principal, e.op, a.kind"
)

# Every per-tick metric, with the one line the dashboard and the README show for it.
LABELS: dict[str, str] = {
    "agents": "active agents",
    "artifacts": "artifacts stored so far",
    "transfers": "payments between principals this tick (transfers, prices, escrow releases, config sales)",
    "trade_value": "scrip moved between principals this tick",
    "transfer_value": "scrip moved by direct transfers this tick",
    "price_value": "scrip paid to owners for invocations this tick",
    "escrow_value": "scrip released from escrows to workers this tick",
    "velocity": "scrip moved between principals this tick / scrip held by agents",
    "agent_supply": "scrip held by agents",
    "gini": "Gini coefficient of agents' balances (0 equal, near 1 one holds all)",
    "top10_share": "share of agents' scrip held by the richest 10%",
    "output": "artifacts first used by another principal, plus escrows released, this tick",
    "scrip_burned": "scrip spent on steps, calls, reasoning, messages and storage this tick",
    "cpu_seconds": "sandbox CPU-seconds of this tick's runs",
    "efficiency": "output per 100 scrip burned",
    "output_per_cpu": "output per sandbox CPU-second",
    "new_artifacts": "artifacts stored this tick",
    "compound_share": "share of this tick's new artifacts that build on another owner's artifact",
    "depth": "longest dependency chain among all artifacts",
    "depth_non_genesis": "longest dependency chain without the Genesis artifacts",
    "runs": "runs this tick (steps and invocations)",
    "autonomy": "share of agents' steps started by their own loop (tick) rather than a command",
    "control_entropy": "Shannon entropy of autonomous vs commanded steps (bits)",
    "specialization": "mean over agents of 1 - H(actions)/log K over the window",
    "alerts_new": "black-market alerts raised since the last tick",
    "alerts_total": "black-market alerts standing",
}


def take(db: Database, tick: int, window: int = 10) -> dict[str, Any]:
    """Snapshot tick ``tick`` (idempotent: an existing snapshot is returned as stored)."""
    started = time.perf_counter()
    with db.transaction() as conn:
        have = conn.execute("SELECT metrics, took_ms FROM telemetry_ticks WHERE tick = ?", (tick,)).fetchone()
        if have is not None:
            return {"tick": tick, "took_ms": have[1], "metrics": json.loads(have[0])}
        prev = conn.execute(
            "SELECT tick, ledger_to, artifacts_to, runs_to, metrics, at FROM telemetry_ticks WHERE tick < ?"
            " ORDER BY tick DESC LIMIT 1",
            (tick,),
        ).fetchone()
        since_tick, ledger_from, artifacts_from, runs_from = prev[:4] if prev else (-1, 0, 0, 0)
        before = json.loads(prev[4]) if prev else {}
        reader = _Tick(conn, tick, since_tick, window)
        new_artifacts, compound, artifacts_to = reader.artifacts(artifacts_from)
        depths = reader.depths(artifacts_from, before)
        trade, ledger_to = reader.ledger(ledger_from)
        runs, runs_to = reader.runs(runs_from)
        reader.actions()
        values = reader.finish(trade, runs, new_artifacts, compound, depths, prev[5] if prev else None)
        took = (time.perf_counter() - started) * 1000
        conn.execute(
            "INSERT INTO telemetry_ticks (tick, ledger_to, artifacts_to, runs_to, metrics, took_ms, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tick, ledger_to, artifacts_to, runs_to, json.dumps(values, sort_keys=True), took, now()),
        )
    return {"tick": tick, "took_ms": took, "metrics": values}


class _Tick:
    """What one snapshot reads and folds, inside its transaction."""

    def __init__(self, conn: Any, tick: int, since_tick: int, window: int):
        self.conn, self.tick, self.since, self.window = conn, tick, since_tick, max(1, window)
        self.output: Counter[str] = Counter()

    def q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return list(self.conn.execute(sql, params).fetchall())

    # -- artifacts: depth, compound value, who depends on whom ----------------------------------
    def artifacts(self, after: int) -> tuple[int, int, int]:
        rows = self.q("SELECT rowid, id, name, owner, kind, depends FROM artifacts WHERE rowid > ? ORDER BY rowid",
                      (after,))  # fmt: skip
        if not rows:
            return 0, 0, after
        genesis = {r[0] for r in self.q("SELECT artifact_id FROM genesis")}
        wanted = {d for r in rows for d in json.loads(r[5])}
        known: dict[str, tuple[str, int, int]] = {}
        for chunk in _chunks(sorted(wanted)):
            marks = ",".join("?" * len(chunk))
            for aid, owner, depth, depth_ng in self.q(
                f"SELECT artifact_id, owner, depth, depth_ng FROM telemetry_artifacts WHERE artifact_id IN ({marks})",
                tuple(chunk),
            ):
                known[aid] = (owner, depth, depth_ng)
        compound = 0
        for _, aid, name, owner, kind, depends_json in rows:
            depends = json.loads(depends_json)
            owners = {d: known[d][0] for d in depends if d in known}
            depth = metrics.depth_of(depends, {d: known[d][1] for d in depends if d in known})
            depth_ng = metrics.depth_non_genesis(depends, {d: known[d][2] for d in depends if d in known},
                                                 aid in genesis)  # fmt: skip
            builds_on = metrics.compounds(owner, depends, owners)
            compound += builds_on
            self.conn.execute(
                "INSERT OR IGNORE INTO telemetry_artifacts (artifact_id, name, owner, kind, born_tick, depth, depth_ng,"
                " compound) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (aid, name, owner, kind, self.tick, depth, depth_ng, int(builds_on)),
            )
            known[aid] = (owner, depth, depth_ng)
            for dep in depends:
                if owners.get(dep, owner) != owner:
                    self._productive(dep)
        return len(rows), compound, rows[-1][0]

    def _productive(self, artifact_id: str) -> None:
        """An artifact first used by another principal: one unit of its owner's output."""
        row = self.conn.execute(
            "UPDATE telemetry_artifacts SET productive_tick = ? WHERE artifact_id = ? AND productive_tick IS NULL"
            " RETURNING owner",
            (self.tick, artifact_id),
        ).fetchone()
        if row is not None:
            self.output[row[0]] += 1

    def depths(self, after: int, before: dict[str, Any]) -> tuple[int, int, int]:
        """(deepest, deepest without Genesis, artifacts): the last snapshot's, with this tick's new ones."""
        new = self.conn.execute(
            "SELECT COALESCE(MAX(t.depth), 0), COALESCE(MAX(t.depth_ng), 0), COUNT(*) FROM artifacts a"
            " JOIN telemetry_artifacts t ON t.artifact_id = a.id WHERE a.rowid > ?",
            (after,),
        ).fetchone()
        return (max(before.get("depth", 0), new[0]), max(before.get("depth_non_genesis", 0), new[1]),
                before.get("artifacts", 0) + new[2])  # fmt: skip

    # -- the ledger: trade, burn, ties ----------------------------------------------------------------
    def ledger(self, after: int) -> tuple[dict[str, Any], int]:
        rows = self.q("SELECT id, debit, credit, amount, kind, run_id FROM ledger WHERE id > ? ORDER BY id", (after,))
        values: Counter[str] = Counter()
        ties: Counter[tuple[str, str, str]] = Counter()
        escrows = {r[1].removeprefix("hold:escrow:") for r in rows if r[4] == "escrow_release"}
        buyers = dict(self._lookup("SELECT id, buyer FROM escrows WHERE id IN ({})", escrows))
        paying_runs = {r[5] for r in rows if r[4] == "price" and r[5]}
        invokers = dict(self._lookup("SELECT id, principal FROM runs WHERE id IN ({})", paying_runs))
        earned: Counter[str] = Counter()
        for _, debit, credit, amount, kind, run_id in rows:
            if kind in TRADE:
                payee = credit.removeprefix("principal:")
                payer = (
                    buyers.get(debit.removeprefix("hold:escrow:"))
                    if kind == "escrow_release"
                    else invokers.get(run_id)
                    if kind == "price"
                    else debit.removeprefix("principal:")
                )
                if payer == payee:
                    continue  # paying oneself (invoking one's own priced artifact) moves nothing
                values["transfers"] += 1
                values[{"transfer": "transfer_value", "price": "price_value",
                        "escrow_release": "escrow_value"}.get(kind, "sale_value")] += amount  # fmt: skip
                values["trade_value"] += amount
                if payer and payer not in SYSTEM and payee not in SYSTEM:
                    a, b = sorted((payer, payee))
                    ties[(a, b, "escrow" if kind == "escrow_release" else "payment")] += 1
                if kind == "escrow_release":
                    self.output[payee] += 1
                if kind == "price" and run_id:
                    earned[run_id] += amount
            if kind in BURN:
                values["scrip_burned"] += amount if credit == "mint" else -amount if debit == "mint" else 0
        for (a, b, kind), n in ties.items():
            self.conn.execute(
                "INSERT INTO telemetry_ties (a, b, kind, weight) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (a, b, kind) DO UPDATE SET weight = weight + excluded.weight",
                (a, b, kind, float(n)),
            )
        for artifact_id, amount in self._earned_by_artifact(earned).items():
            self.conn.execute("UPDATE telemetry_artifacts SET earned = earned + ? WHERE artifact_id = ?",
                              (amount, artifact_id))  # fmt: skip
        return dict(values), (rows[-1][0] if rows else after)

    def _earned_by_artifact(self, earned: Counter[str]) -> Counter[str]:
        by_artifact: Counter[str] = Counter()
        for run_id, artifact_id in self._lookup("SELECT id, artifact_id FROM runs WHERE id IN ({})", set(earned)):
            by_artifact[artifact_id] += earned[run_id]
        return by_artifact

    def _lookup(self, sql: str, keys: set[str]) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        for chunk in _chunks(sorted(keys)):
            found += self.q(sql.format(",".join("?" * len(chunk))), tuple(chunk))
        return found

    # -- runs: control, invocations, reuse, CPU -------------------------------------------------------
    def runs(self, after: int) -> tuple[dict[str, Any], int]:
        """The runs of the ticks since the last snapshot, and the runs outside any tick (a person's,
        between ticks) started since then; returns their figures and the runs cursor."""
        cols = "r.rowid, r.artifact_id, r.principal, r.trigger, COALESCE(json_extract(r.usage, '$.cpu_seconds'), 0)"
        rows = self.q(f"SELECT {cols} FROM runs r WHERE r.tick > ? AND r.tick <= ?", (self.since, self.tick))
        outside = self.q(f"SELECT {cols} FROM runs r WHERE r.rowid > ? AND r.tick IS NULL", (after,))
        last = self.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM runs").fetchone()[0]
        triggers: Counter[str] = Counter()
        control: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        cpu = 0.0
        calls: Counter[tuple[str, str]] = Counter()
        for _, artifact_id, principal, trigger, cpu_seconds in rows + outside:
            triggers[trigger] += 1
            cpu += float(cpu_seconds or 0)
            if trigger in STEP_TRIGGERS:
                control[principal][trigger == "command"] += 1
            else:
                calls[(artifact_id, principal)] += 1
        self.conn.executemany(
            "INSERT INTO telemetry_control (principal, ticks, commands) VALUES (?, ?, ?) ON CONFLICT (principal)"
            " DO UPDATE SET ticks = ticks + excluded.ticks, commands = commands + excluded.commands",
            [(p, c[0], c[1]) for p, c in control.items()],
        )
        per_artifact: dict[str, set[str]] = defaultdict(set)
        uses: Counter[str] = Counter()
        for (artifact_id, principal), n in calls.items():
            per_artifact[artifact_id].add(principal)
            uses[artifact_id] += n
            self.conn.execute(
                "INSERT INTO telemetry_invocations (artifact_id, tick, principal, runs) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (artifact_id, tick, principal) DO UPDATE SET runs = runs + excluded.runs",
                (artifact_id, self.tick, principal, n),
            )
        for artifact_id, invokers in per_artifact.items():
            fresh = 0
            for principal in invokers:  # the first time this principal invokes it: one more invoker
                fresh += self.conn.execute("INSERT OR IGNORE INTO telemetry_invokers (artifact_id, principal)"
                                           " VALUES (?, ?)", (artifact_id, principal)).rowcount  # fmt: skip
            owner = self.conn.execute(
                "UPDATE telemetry_artifacts SET uses = uses + ?, last_use = ?, invokers = invokers + ?"
                " WHERE artifact_id = ? RETURNING owner",
                (uses[artifact_id], self.tick, fresh, artifact_id),
            ).fetchone()
            if owner is not None and any(p != owner[0] for p in invokers):
                self._productive(artifact_id)
        return {"triggers": triggers, "cpu": cpu, "count": len(rows) + len(outside)}, last

    # -- actions: specialization --------------------------------------------------------------------
    def actions(self) -> None:
        rows = self.q(ACTIONS, (self.since, self.tick))
        counts: Counter[tuple[str, str]] = Counter()
        for principal, op, kind, n in rows:
            found = metrics.category(op, kind)
            if found:
                counts[(principal, found)] += n
        self.conn.executemany(
            "INSERT INTO telemetry_actions (agent, tick, category, n) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (tick, agent, category) DO UPDATE SET n = n + excluded.n",
            [(agent, self.tick, cat, n) for (agent, cat), n in counts.items()],
        )

    # -- the tick's row ----------------------------------------------------------------------------------
    def finish(
        self,
        trade: dict[str, Any],
        runs: dict[str, Any],
        new: int,
        compound: int,
        depth: tuple[int, int, int],
        since: str | None,
    ) -> dict[str, Any]:
        balances = [b for (b,) in self.q(
            "SELECT a.balance FROM agents g JOIN accounts a ON a.id = 'principal:' || g.name")]  # fmt: skip
        supply = sum(balances)
        self.conn.executemany(
            "INSERT INTO telemetry_output (principal, tick, n) VALUES (?, ?, ?)"
            " ON CONFLICT (tick, principal) DO UPDATE SET n = n + excluded.n",
            [(p, self.tick, n) for p, n in self.output.items()],
        )
        output = sum(self.output.values())
        triggers = runs["triggers"]
        autonomy, entropy = metrics.control(triggers["tick"], triggers["command"])
        burned = int(trade.get("scrip_burned", 0))
        alerts = self.conn.execute("SELECT COUNT(*) FROM audit_alerts WHERE alert = 1").fetchone()[0]
        raised = self.conn.execute(  # alerts first raised after the previous snapshot was taken
            "SELECT COUNT(*) FROM audit_alerts WHERE alert = 1 AND created_at > ?", (since or "",)
        ).fetchone()[0]
        values = {
            "agents": self.conn.execute("SELECT COUNT(*) FROM agents WHERE state = 'active'").fetchone()[0],
            "artifacts": depth[2],
            "transfers": trade.get("transfers", 0),
            "trade_value": trade.get("trade_value", 0),
            "transfer_value": trade.get("transfer_value", 0),
            "price_value": trade.get("price_value", 0),
            "escrow_value": trade.get("escrow_value", 0),
            "velocity": metrics.velocity(trade.get("trade_value", 0), supply),
            "agent_supply": supply,
            "gini": metrics.gini(balances),
            "top10_share": metrics.top_share(balances, 0.1),
            "output": output,
            "scrip_burned": burned,
            "cpu_seconds": round(runs["cpu"], 6),
            "efficiency": metrics.efficiency(output, burned),
            "output_per_cpu": metrics.per_cpu_second(output, runs["cpu"]),
            "new_artifacts": new,
            "compound_share": metrics.share(compound, new),
            "depth": depth[0],
            "depth_non_genesis": depth[1],
            "runs": runs["count"],
            "autonomy": autonomy,
            "control_entropy": entropy,
            "specialization": metrics.mean(self.specializations().values()),
            "alerts_new": raised,
            "alerts_total": alerts,
        }
        return values

    def specializations(self) -> dict[str, float | None]:
        """Each agent's specialization over the window of ticks ending at this one."""
        per_agent: dict[str, dict[str, int]] = defaultdict(dict)
        for agent, cat, n in self.q(
            "SELECT agent, category, SUM(n) FROM telemetry_actions WHERE tick > ? AND tick <= ?"
            " GROUP BY agent, category",
            (self.tick - self.window, self.tick),
        ):
            per_agent[agent][cat] = n
        return {agent: metrics.specialization(counts) for agent, counts in per_agent.items()}


def _chunks(keys: list[str], size: int = 500) -> list[list[str]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]
