"""Agents and their configs: spawn, change, pause, sell and buy a config.

A config is a code artifact (the policy, ``step(observation) -> decision``) plus a JSON
document of parameters. An agent is a principal bound to a config; whoever owns the
binding (``config_owner``: its manager, or the agent itself) may change its code or
parameters, pause and resume it, command it, and put it up for sale to the agent. A
config's spawn cost is state (``config_costs``), not a constant: the Governor raises it.
"""

import json
from typing import Any

from pydantic import BaseModel

from kernel import ledger, store
from kernel.db import Database, now
from kernel.errors import InsufficientFunds, InvalidInput, NotFound
from kernel.settings import Settings
from kernel.world.errors import NotOwner

MAX_PARAMS_BYTES = 256 * 1024


class Agent(BaseModel):
    name: str
    artifact_id: str
    params: Any
    config_owner: str
    state: str
    sale_price: int | None
    balance: int
    spawned_by: str
    spawn_cost: int
    spawned_tick: int
    seq: int
    free: bool  # owns its own config


def parse_params(value: Any) -> str:
    """Parameters as stored: a JSON object of at most MAX_PARAMS_BYTES."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise InvalidInput(f"the parameters are not valid JSON: {exc}; give a JSON object.") from exc
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidInput(f"the parameters must be a JSON object (got {type(value).__name__}).")
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"the parameters are not plain JSON ({exc}); no NaN or Infinity.") from exc
    if len(text.encode()) > MAX_PARAMS_BYTES:
        raise InvalidInput(f"the parameters are larger than {MAX_PARAMS_BYTES} bytes; keep big data in an artifact.")
    return text


def config_artifact(db: Database, ref: str) -> str:
    """The id of a code artifact usable as a config (a policy), or one sentence."""
    art = store.get(db, ref)
    if art.kind != "code":
        raise InvalidInput(
            f"artifact {art.short_id} is a {art.kind} artifact; a config is a code artifact whose entrypoint is"
            " the policy (step(observation) -> decision)."
        )
    return art.id


def spawn_cost(db: Database, settings: Settings, artifact_id: str) -> int:
    row = db.one("SELECT spawn_cost FROM config_costs WHERE artifact_id = ?", (artifact_id,))
    return int(row["spawn_cost"]) if row else settings.spawn_cost


def set_spawn_cost(db: Database, settings: Settings, ref: str, cost: int) -> int:
    """Set what spawning an agent of this config costs (the Governor's selection pressure)."""
    artifact_id = config_artifact(db, ref)
    settings.bounds.amount(cost, "a spawn cost", zero=True)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO config_costs VALUES (?, ?, ?) ON CONFLICT (artifact_id) DO UPDATE"
            " SET spawn_cost = excluded.spawn_cost, updated_at = excluded.updated_at",
            (artifact_id, cost, now()),
        )
    return cost


def current_tick(conn: Any) -> int:
    row = conn.execute("SELECT tick FROM world WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def event(conn: Any, agent: str, kind: str, actor: str | None, detail: str) -> None:
    conn.execute(
        "INSERT INTO agent_events (agent, tick, kind, actor, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
        (agent, current_tick(conn), kind, actor, detail, now()),
    )


def spawn(
    db: Database,
    settings: Settings,
    config: str,
    name: str,
    owner: str | None = None,
    grant: int = 0,
    params: Any = None,
) -> Agent:
    """Create principal ``name`` bound to ``config``.

    With ``owner`` (a manager): the owner pays the config's spawn cost (burned) and gives the
    agent ``grant`` from its balance, and owns the agent's config. Without: a free agent that
    owns itself, funded by a minted ``grant`` from which the spawn cost is burned.
    """
    ledger.check_name(name)
    artifact_id = config_artifact(db, config)
    text = parse_params(params)
    settings.bounds.amount(grant, "--grant", zero=True)
    if owner is not None:
        ledger.require_principal(db, owner)
    cost = spawn_cost(db, settings, artifact_id)
    payer = owner or name
    with db.transaction() as conn:
        if owner is None and grant < cost:
            raise InsufficientFunds(
                f"spawning an agent of {artifact_id[:12]} costs {cost} scrip; give a --grant of at least {cost}"
                " (or spawn it for an --owner who pays)."
            )
        if owner is not None and ledger.balance_in(conn, owner) < cost + grant:
            have = ledger.balance_in(conn, owner)
            raise InsufficientFunds(f"{owner} has {have} scrip and spawning costs {cost} plus the grant of {grant}.")
        ledger.add_principal(conn, name, "agent")
        if owner is None:
            ledger.mint(conn, ledger.principal_account(name), grant, settings.bounds, memo="grant")
        else:
            ledger.move(conn, ledger.principal_account(owner), ledger.principal_account(name), grant,
                        kind="grant", memo=f"grant to agent {name}")  # fmt: skip
        ledger.move(conn, ledger.principal_account(payer), ledger.MINT, cost, kind="spawn", memo=f"spawn {name}")
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM agents").fetchone()[0]
        conn.execute(
            "INSERT INTO agents (name, artifact_id, params, config_owner, spawned_by, spawn_cost, spawned_tick, seq,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, artifact_id, text, owner or name, payer, cost, current_tick(conn), seq, now()),
        )
        event(conn, name, "spawned", payer, f"config {artifact_id[:12]}, cost {cost}, grant {grant}")
    return get(db, name)


def _row(db: Database, name: str) -> dict[str, Any]:
    row = db.one("SELECT * FROM agents WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no agent named '{name}': `kernel agents` lists them.")
    return row


def to_agent(db: Database, row: dict[str, Any]) -> Agent:
    return Agent(
        **{k: row[k] for k in ("name", "artifact_id", "config_owner", "state", "sale_price", "spawned_by")},
        params=json.loads(row["params"]),
        balance=ledger.balance(db, row["name"]),
        spawn_cost=row["spawn_cost"],
        spawned_tick=row["spawned_tick"],
        seq=row["seq"],
        free=row["config_owner"] == row["name"],
    )


def get(db: Database, name: str) -> Agent:
    return to_agent(db, _row(db, name))


def list_agents(db: Database, owner: str | None = None) -> list[Agent]:
    where, params = ("WHERE config_owner = ?", (owner,)) if owner else ("", ())
    return [to_agent(db, r) for r in db.rows(f"SELECT * FROM agents {where} ORDER BY seq", params)]


def require_owner(db: Database, name: str, actor: str) -> dict[str, Any]:
    row = _row(db, name)
    ledger.require_principal(db, actor)
    if row["config_owner"] != actor:
        raise NotOwner(f"{actor} does not own the config of agent {name} ({row['config_owner']} does).")
    return row


def change(
    db: Database, name: str, actor: str, config: str | None = None, params: Any = None, reset_memory: bool = False
) -> Agent:
    """Replace the agent's policy code, its parameters, or both, or forget its memory (its config's owner only)."""
    require_owner(db, name, actor)
    if config is None and params is None and not reset_memory:
        raise InvalidInput("give --config, --params or --reset-memory.")
    artifact_id = config_artifact(db, config) if config is not None else None
    text = parse_params(params) if params is not None else None
    with db.transaction() as conn:
        if artifact_id:
            conn.execute("UPDATE agents SET artifact_id = ? WHERE name = ?", (artifact_id, name))
            event(conn, name, "config", actor, f"code {artifact_id[:12]}")
        if text is not None:
            conn.execute("UPDATE agents SET params = ? WHERE name = ?", (text, name))
            event(conn, name, "params", actor, f"{len(text)} bytes of parameters")
        if reset_memory:
            conn.execute("UPDATE agents SET memory = 'null' WHERE name = ?", (name,))
            event(conn, name, "memory", actor, "memory forgotten")
    return get(db, name)


def set_state(db: Database, name: str, actor: str, state: str) -> Agent:
    """Pause or resume an agent: a paused agent takes no ticks (its owner may still command it)."""
    row = require_owner(db, name, actor)
    if row["state"] != state:
        with db.transaction() as conn:
            conn.execute("UPDATE agents SET state = ? WHERE name = ?", (state, name))
            event(conn, name, state, actor, "paused" if state == "paused" else "resumed")
    return get(db, name)


def set_price(db: Database, settings: Settings, name: str, actor: str, price: int | None) -> Agent:
    """Offer the agent its own config at ``price`` (None: withdraw the offer)."""
    row = require_owner(db, name, actor)
    if row["config_owner"] == name:
        raise InvalidInput(f"agent {name} already owns its config; there is nothing to sell it.")
    if price is not None:
        settings.bounds.amount(price, "a config's price", zero=True)
    with db.transaction() as conn:
        conn.execute("UPDATE agents SET sale_price = ? WHERE name = ?", (price, name))
        event(conn, name, "offer", actor, "not for sale" if price is None else f"its config for {price} scrip")
    return get(db, name)


def buy_config(db: Database, name: str, run_id: str | None = None) -> Agent:
    """The agent buys its own config from its owner at the owner's price: one ledger transaction."""
    row = _row(db, name)
    if row["config_owner"] == name:
        raise InvalidInput(f"agent {name} already owns its config.")
    with db.transaction() as conn:
        row = conn.execute("SELECT config_owner, sale_price FROM agents WHERE name = ?", (name,)).fetchone()
        seller, price = row
        if seller == name:
            raise InvalidInput(f"agent {name} already owns its config.")
        if price is None:
            raise InvalidInput(f"{seller} has not put the config of {name} up for sale (`kernel agent price`).")
        have = ledger.balance_in(conn, name)
        if have < price:
            raise InsufficientFunds(f"{name} has {have} scrip and its config costs {price}.")
        ledger.move(conn, ledger.principal_account(name), ledger.principal_account(seller), price,
                    kind="config_sale", memo=f"config of {name}", run_id=run_id)  # fmt: skip
        conn.execute("UPDATE agents SET config_owner = ?, sale_price = NULL WHERE name = ?", (name, name))
        event(conn, name, "bought", name, f"its config from {seller} for {price} scrip")
    return get(db, name)


def history(db: Database, name: str, limit: int = 50) -> list[dict[str, Any]]:
    _row(db, name)
    return db.rows(
        "SELECT tick, kind, actor, detail, at FROM agent_events WHERE agent = ? ORDER BY id DESC LIMIT ?", (name, limit)
    )
