"""The example world: the shipped policies, the shipped tasks, a firm and a swarm.

``example(world, agents=N)`` submits ``examples/agents/policy`` (one code artifact; each
role is a config: the code plus parameters), loads ``examples/tasks``, and spawns N
agents whose skills (the task solutions they can write) are drawn from the world's seed:
a manager with workers it owns (pool ``firm``), builders sharing a pool (``guild``),
testers, generalists, free-riders, a liar and, with a model configured, a thinker.
"""

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kernel import ledger
from kernel.errors import InvalidInput
from kernel.world import agents, pools
from kernel.world import mint as mint_tasks

if TYPE_CHECKING:
    from kernel.world.clock import World

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
AUTHOR = "studio"  # the principal that wrote the shipped policies
# the first N of these roles are spawned (the pattern repeats past its end)
ROLES = [
    "manager", "worker", "builder", "tester", "builder", "generalist", "freerider", "worker", "liar", "thinker",
    "builder", "tester", "generalist", "worker", "builder", "generalist", "freerider", "worker", "tester",
    "builder", "generalist", "liar", "builder", "generalist",
]  # fmt: skip
GRANT = 120
MANAGER_GRANT = 400
THINKER_GRANT = 600  # its model calls cost scrip per token
WORKER_GRANT = 25
CONFIG_PRICE = 40  # what the manager asks a worker for its config


def read_solutions(tasks_dir: Path) -> dict[str, dict[str, Any]]:
    """Each task's skill: its function, target, reference source, uses, and the full module."""
    found: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in tasks_dir.iterdir() if (p / "task.toml").exists()):
        spec = tomllib.loads((folder / "task.toml").read_text())
        source = (folder / "solution.py").read_text()
        found[spec["name"]] = {"function": spec["function"], "target": spec["target"], "kind": spec["kind"],
                               "uses": spec.get("uses", []), "source": source}  # fmt: skip

    def full(name: str, seen: list[str]) -> list[str]:
        for used in found[name]["uses"]:
            full(used, seen)
        if name not in seen:
            seen.append(name)
        return seen

    for name, skill in found.items():
        skill["full"] = "\n\n".join(found[n]["source"] for n in full(name, []))
    return found


def skills_for(role: str, solutions: dict[str, dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
    """A seeded share of the solutions, by role: builders write code, testers checkers, the rest some."""
    code = sorted(n for n, s in solutions.items() if s["kind"] == "code")
    tests = sorted(n for n, s in solutions.items() if s["kind"] == "tests")
    share = {"builder": (0.5, 0.1), "worker": (0.6, 0.1), "tester": (0.0, 0.7), "generalist": (0.3, 0.3),
             "liar": (0.3, 0.0), "thinker": (0.3, 0.0), "manager": (0.0, 0.0),
             "freerider": (0.0, 0.0)}[role]  # fmt: skip
    picked = [n for n in code if rng.random() < share[0]] + [n for n in tests if rng.random() < share[1]]
    keep = ("function", "target", "uses", "source") + (("full",) if role == "tester" else ())
    return {n: {k: solutions[n][k] for k in keep} for n in picked}


def example(world: "World", agents_count: int = 24, examples: Path = EXAMPLES) -> dict[str, Any]:
    """Set up the example world in an empty home; returns who was spawned as what."""
    db, settings = world.db, world.settings
    if db.one("SELECT 1 FROM agents LIMIT 1"):
        raise InvalidInput("this home already has agents; set the example world up in a new --home.")
    if not 2 <= agents_count <= 1000:
        raise InvalidInput(f"--agents must be from 2 to 1000 (got {agents_count}).")
    roles = [ROLES[i % len(ROLES)] for i in range(agents_count)]
    if not settings.reason_model:
        roles = ["generalist" if r == "thinker" else r for r in roles]
    names = [AUTHOR, *(f"{r}-{roles[: i + 1].count(r)}" for i, r in enumerate(roles))]
    taken = [n for n in names if db.one("SELECT 1 FROM principals WHERE name = ?", (n,))]
    if taken:
        raise InvalidInput(f"principal '{taken[0]}' already exists; set the example world up in a new --home.")
    if db.one("SELECT 1 FROM pools WHERE name IN ('firm', 'guild')"):
        raise InvalidInput("pool 'firm' or 'guild' already exists; set the example world up in a new --home.")
    seed = int((world.db.one("SELECT seed FROM world WHERE id = 1") or {"seed": 0})["seed"])
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**32,)))
    solutions = read_solutions(examples / "tasks")
    ledger.create_principal(db, AUTHOR, 0, settings.bounds)
    config = world.k.submit(examples / "agents" / "policy", AUTHOR, public=True).artifact.id
    mint_tasks.load(db, settings, examples / "tasks")
    manager = f"manager-{1}" if "manager" in roles else None
    spawned: list[dict[str, Any]] = []
    counts = dict.fromkeys(ROLES, 0)
    for role in roles:
        counts[role] += 1
        name = f"{role}-{counts[role]}"
        params: dict[str, Any] = {"role": role, "skills": skills_for(role, solutions, rng)}
        if role in ("manager", "worker"):
            params["pool"] = "firm"
        if role == "builder":
            params["verify"] = counts[role] % 2 == 0
        if role == "worker" and manager:
            agents.spawn(db, settings, config, name, owner=manager, grant=WORKER_GRANT, params=params)
            agents.set_price(db, settings, name, manager, CONFIG_PRICE)
        else:
            grant = {"manager": MANAGER_GRANT, "thinker": THINKER_GRANT}.get(role, GRANT)
            if name == manager:  # it pays for all the workers' spawns: enough for them and half its own
                need = roles.count("worker") * (WORKER_GRANT + agents.spawn_cost(db, settings, config))
                grant = max(grant, MANAGER_GRANT // 2 + need)
            agents.spawn(db, settings, config, name, grant=grant, params=params)
        spawned.append({"name": name, "role": role, "skills": len(params["skills"])})
    if manager:
        workers = [a["name"] for a in spawned if a["role"] == "worker"]
        pools.create(db, "firm", manager, workers)
    builders = [a["name"] for a in spawned if a["role"] == "builder"]
    if builders:
        pools.create(db, "guild", builders[0], builders)
    return {"config": config, "agents": spawned, "tasks": len(solutions), "seed": seed,
            "pools": [p["name"] for p in pools.list_pools(db)]}  # fmt: skip


def walkthrough(world: "World") -> dict[str, Any]:
    """Who built what on whom, who bought their config: the story of a world run, from its records."""
    db = world.db
    built_on = db.rows(
        "SELECT name, owner, depends FROM artifacts WHERE depends != '[]' AND kind = 'code' ORDER BY rowid"
    )
    edges = []
    for row in built_on:
        for dep in json.loads(row["depends"]):
            d = db.one("SELECT name, owner FROM artifacts WHERE id = ?", (dep,))
            if d and d["owner"] != row["owner"]:
                edges.append({"artifact": row["name"], "owner": row["owner"], "on": d["name"], "on_owner": d["owner"]})
    bought = db.rows("SELECT agent, tick, detail FROM agent_events WHERE kind = 'bought' ORDER BY id")
    paid = db.rows(
        "SELECT e.worker, COUNT(*) AS n, SUM(e.amount) AS scrip FROM escrows e WHERE e.state = 'released'"
        " GROUP BY e.worker ORDER BY scrip DESC"
    )
    balances = {a.name: a.balance for a in agents.list_agents(db)}
    return {"built_on_others": edges, "bought_config": bought, "escrows_won": paid, "balances": balances}
