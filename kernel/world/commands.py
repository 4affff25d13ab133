"""`kernel agent|agents|world|pool|message`: the economy's commands, thin over kernel.world."""

import json
from pathlib import Path
from typing import Any

import click

from kernel.cli import UserPath, as_option, emit, json_option, kernel_of, main, new_table, out, parse_input
from kernel.errors import InvalidInput
from kernel.listing import MAX_LISTED

params_option = click.option("--params", "params_text", help="The config's parameters: a JSON object.")
params_file_option = click.option(
    "--params-file",
    type=UserPath(dir_okay=False, allow_dash=True, path_type=Path),
    help="Read the parameters from a JSON file ('-': standard input).",
)


def world_of(ctx: click.Context) -> Any:
    from kernel.world.clock import World

    obj = ctx.find_root().obj
    if "world" not in obj:
        obj["world"] = World(kernel_of(ctx))
    return obj["world"]


def settings_of(ctx: click.Context) -> Any:
    return ctx.find_root().obj["settings"]


def read_params(ctx: click.Context, text: str | None, file: Path | None) -> Any:
    if text is None and file is None:
        return None
    try:
        return parse_input(text, file, settings_of(ctx))
    except InvalidInput as exc:
        raise InvalidInput(str(exc).replace("--input", "--params")) from None


def print_agent(a: Any) -> None:
    owner = "itself (a free agent)" if a.free else a.config_owner
    sale = "" if a.sale_price is None else f", its config for sale at {a.sale_price}"
    out.print(
        f"agent {a.name}: {a.state}, balance {a.balance} scrip, config {a.artifact_id[:12]} owned by {owner}{sale}"
    )
    role = a.params.get("role") if isinstance(a.params, dict) else None
    out.print(f"spawned at tick {a.spawned_tick} by {a.spawned_by} for {a.spawn_cost} scrip" +
              (f"; role {role}" if role else ""))  # fmt: skip


# -- agents ---------------------------------------------------------------------------------------
@main.group()
def agent() -> None:
    """Agents: principals animated by a config (a policy artifact plus parameters)."""


@agent.command("spawn")
@click.argument("config")
@click.option("--name", required=True, help="The new agent's principal name.")
@click.option("--owner", help="The config's owner (a manager): pays the spawn cost and the grant. Default: itself.")
@click.option("--grant", default=0, show_default=True, type=int, help="Scrip it starts with.")
@params_option
@params_file_option
@json_option
@click.pass_context
def agent_spawn(ctx: click.Context, config: str, name: str, owner: str | None, grant: int,
                params_text: str | None, params_file: Path | None, as_json: bool) -> None:  # fmt: skip
    """Create agent NAME animated by CONFIG (a code artifact whose entrypoint is its policy).

    With --owner, the owner pays the config's spawn cost and gives the grant from its
    balance, and owns the agent's config (it can change, pause, command and sell it).
    Without, the agent is free: the grant is minted and the spawn cost burned from it.

    \b
    Example:
      kernel agent spawn 16c297 --name ada --grant 100 --params '{"role": "builder"}'
    """
    from kernel.world import agents

    settings = settings_of(ctx)
    kernel_of(ctx).writing()
    made = agents.spawn(kernel_of(ctx).db, settings, config, name, owner, grant,
                        read_params(ctx, params_text, params_file))  # fmt: skip
    emit(made, as_json, lambda: print_agent(made))


@agent.command("show")
@click.argument("name")
@click.option("--steps", default=10, show_default=True, type=click.IntRange(0, MAX_LISTED), help="Recent steps shown.")
@json_option
@click.pass_context
def agent_show(ctx: click.Context, name: str, steps: int, as_json: bool) -> None:
    """An agent: its config and owner, balance, history (spawn, sales, pauses) and recent steps.

    \b
    Example:
      kernel agent show worker-1 --json
    """
    from kernel.world import agents

    db = kernel_of(ctx).db
    a = agents.get(db, name)
    data = {
        **a.model_dump(),
        "history": agents.history(db, name),
        "steps": world_of(ctx).steps(name, steps or 1)[:steps],
    }

    def human() -> None:
        print_agent(a)
        for h in data["history"][:10]:
            out.print(f"  tick {h['tick']}: {h['kind']} by {h['actor']}: {h['detail']}")
        for s in data["steps"]:
            out.print(f"  step at tick {s['tick']} ({s['trigger']}): {s['status']}: {s['reasoning'] or ''}")

    emit(data, as_json, human)


@agent.command("command")
@click.argument("name")
@as_option
@click.option("--input", "input_text", help="The order: a JSON value the policy sees as observation['command'].")
@click.option(
    "--input-file",
    type=UserPath(dir_okay=False, allow_dash=True, path_type=Path),
    help="Read the order from a file ('-': standard input).",
)
@json_option
@click.pass_context
def agent_command(ctx: click.Context, name: str, principal: str, input_text: str | None, input_file: Path | None,
                  as_json: bool) -> None:  # fmt: skip
    """Order agent NAME to take one step now (trigger `command`); --as must own its config.

    \b
    Example:
      kernel agent command worker-1 --as manager-1 --input '{"do": "build", "task": "slugify"}'
    """
    value = parse_input(input_text, input_file, settings_of(ctx))
    step = world_of(ctx).command(name, principal, value)
    emit(step, as_json, lambda: print_step(step))


def print_step(s: dict[str, Any]) -> None:
    out.print(f"{s['agent']} at tick {s['tick']} ({s['trigger']}): {s['status']}, run {s['run_id'] or '-'}")
    if s["reasoning"]:
        out.print(f"reasoning: {s['reasoning']}")
    if isinstance(s["decision"], dict) and s["decision"].get("actions"):
        out.print(f"actions: {'; '.join(map(str, s['decision']['actions']))}")


@agent.command("buy-config")
@click.argument("name")
@json_option
@click.pass_context
def agent_buy_config(ctx: click.Context, name: str, as_json: bool) -> None:
    """Agent NAME buys its own config from its owner at the owner's price (one ledger
    transaction); from then on it owns itself.

    \b
    Example:
      kernel agent buy-config worker-1
    """
    from kernel.world import agents

    kernel_of(ctx).writing()
    a = agents.buy_config(kernel_of(ctx).db, name)
    emit(a, as_json, lambda: print_agent(a))


@agent.command("price")
@click.argument("name")
@click.argument("amount", type=int, required=False)
@as_option
@click.option("--not-for-sale", is_flag=True, help="Withdraw the offer.")
@json_option
@click.pass_context
def agent_price(ctx: click.Context, name: str, amount: int | None, principal: str, not_for_sale: bool,
                as_json: bool) -> None:  # fmt: skip
    """Offer agent NAME its own config for AMOUNT scrip (--as: the config's owner).

    \b
    Example:
      kernel agent price worker-1 60 --as manager-1
    """
    from kernel.world import agents

    if (amount is None) == (not not_for_sale):
        raise click.UsageError("give an AMOUNT or --not-for-sale.")
    kernel_of(ctx).writing()
    a = agents.set_price(kernel_of(ctx).db, settings_of(ctx), name, principal, None if not_for_sale else amount)
    emit(a, as_json, lambda: print_agent(a))


@agent.command("set")
@click.argument("name")
@as_option
@click.option("--config", help="A new policy: a code artifact id.")
@params_option
@params_file_option
@click.option("--reset-memory", is_flag=True, help="Forget the memory its policy kept.")
@json_option
@click.pass_context
def agent_set(ctx: click.Context, name: str, principal: str, config: str | None, params_text: str | None,
              params_file: Path | None, reset_memory: bool, as_json: bool) -> None:  # fmt: skip
    """Replace agent NAME's policy code, its parameters, or both (--as: the config's owner).

    \b
    Example:
      kernel agent set worker-1 --as manager-1 --params '{"role": "builder", "verify": true}'
    """
    from kernel.world import agents

    kernel_of(ctx).writing()
    params = read_params(ctx, params_text, params_file)
    a = agents.change(kernel_of(ctx).db, name, principal, config, params, reset_memory)
    emit(a, as_json, lambda: print_agent(a))


def _state_command(state: str, verb: str) -> Any:
    @agent.command(verb, help=f"{verb.capitalize()} agent NAME (--as: the config's owner).\n\n"
                   f"\b\nExample:\n  kernel agent {verb} worker-1 --as manager-1")  # fmt: skip
    @click.argument("name")
    @as_option
    @json_option
    @click.pass_context
    def command(ctx: click.Context, name: str, principal: str, as_json: bool) -> None:
        from kernel.world import agents

        kernel_of(ctx).writing()
        a = agents.set_state(kernel_of(ctx).db, name, principal, state)
        emit(a, as_json, lambda: print_agent(a))

    return command


agent_pause = _state_command("paused", "pause")
agent_resume = _state_command("active", "resume")


@agent.command("spawn-cost")
@click.argument("config")
@click.argument("amount", type=int, required=False)
@json_option
@click.pass_context
def agent_spawn_cost(ctx: click.Context, config: str, amount: int | None, as_json: bool) -> None:
    """Show, or set to AMOUNT, what spawning an agent of CONFIG costs (per-config state).

    \b
    Example:
      kernel agent spawn-cost 16c297 25
    """
    from kernel.world import agents

    k = kernel_of(ctx)
    art = agents.config_artifact(k.db, config)
    cost = agents.set_spawn_cost(k.db, k.settings, art, amount) if amount is not None else None
    cost = agents.spawn_cost(k.db, k.settings, art) if cost is None else cost
    emit({"config": art, "spawn_cost": cost}, as_json, lambda: out.print(f"config {art[:12]}: spawn cost {cost}"))


@main.command("agents")
@click.option("--owner", help="Only agents whose config this principal owns (a firm).")
@json_option
@click.pass_context
def agents_cmd(ctx: click.Context, owner: str | None, as_json: bool) -> None:
    """List agents: config, owner, state, balance.

    \b
    Example:
      kernel agents --owner manager-1 --json
    """
    from kernel.world import agents

    items = agents.list_agents(kernel_of(ctx).db, owner)

    def human() -> None:
        table = new_table("agent", "role", "config", "owner", "state", "balance", "for sale")
        for a in items:
            role = a.params.get("role", "") if isinstance(a.params, dict) else ""
            owner_ = "(itself)" if a.free else a.config_owner
            sale = "" if a.sale_price is None else str(a.sale_price)
            table.add_row(a.name, str(role), a.artifact_id[:12], owner_, a.state, str(a.balance), sale)
        out.print(table)

    emit(items, as_json, human)


# -- the world ------------------------------------------------------------------------------------------
@main.group()
def world() -> None:
    """The world: its clock (ticks), its status, the Mint's tasks and weights."""


@world.command("run")
@click.option("--ticks", required=True, type=click.IntRange(1, 1_000_000), help="How many ticks to advance.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="The world's seed (fixed by its first run).")
@json_option
@click.pass_context
def world_run(ctx: click.Context, ticks: int, seed: int | None, as_json: bool) -> None:
    """Advance the world TICKS ticks: on each, every active agent's policy runs in a fresh
    sandbox as that agent, in an order drawn from the seed; then delivered escrows are judged.

    The same seed and policies replay to the same decisions and ledger. A run that was
    killed resumes its last tick.

    \b
    Example:
      kernel world run --ticks 20 --seed 7
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("world"), BarColumn(), MofNCompleteColumn(), TextColumn("ticks"), TimeElapsedColumn(),
                  console=console, transient=as_json, disable=as_json and not console.is_terminal) as bar:  # fmt: skip
        task = bar.add_task("ticks", total=ticks)
        summary = world_of(ctx).run(ticks, seed, lambda done, total: bar.update(task, completed=done))

    def human() -> None:
        out.print(f"world at tick {summary['tick']} (seed {summary['seed']}): {summary['steps']} steps this run,"
                  f" {summary['active']} active agents, {summary['tasks_open']} tasks open;"
                  f" ledger {'ok' if summary['ledger_ok'] else 'BROKEN'}, supply {summary['supply']}")  # fmt: skip

    emit(summary, as_json, human)


@world.command("status")
@json_option
@click.pass_context
def world_status(ctx: click.Context, as_json: bool) -> None:
    """The world's tick, seed, agents, tasks, Mint weights and ledger check.

    \b
    Example:
      kernel world status --json
    """
    status = world_of(ctx).status()

    def human() -> None:
        for key, value in status.items():
            out.print(f"{key}: {json.dumps(value) if isinstance(value, dict) else value}")

    emit(status, as_json, human)


@world.command("steps")
@click.option("--agent", "agent_name", help="Only this agent's steps.")
@click.option("--limit", default=30, show_default=True, type=click.IntRange(1, MAX_LISTED))
@json_option
@click.pass_context
def world_steps(ctx: click.Context, agent_name: str | None, limit: int, as_json: bool) -> None:
    """Recent policy steps, newest first: tick, agent, trigger, status, reasoning, actions.

    \b
    Example:
      kernel world steps --agent builder-1 --limit 5
    """
    steps = world_of(ctx).steps(agent_name, limit)

    def human() -> None:
        table = new_table("tick", "agent", "trigger", "status", "reasoning", "actions")
        for s in steps:
            actions = s["decision"].get("actions", []) if isinstance(s["decision"], dict) else []
            table.add_row(str(s["tick"]), s["agent"], s["trigger"], s["status"], (s["reasoning"] or "")[:60],
                          "; ".join(map(str, actions))[:80])  # fmt: skip
        out.print(table)

    emit(steps, as_json, human)


@world.command("example")
@click.option("--agents", "count", default=24, show_default=True, type=click.IntRange(2, 1000))
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@json_option
@click.pass_context
def world_example(ctx: click.Context, count: int, seed: int, as_json: bool) -> None:
    """Set up the example world in an empty home: the shipped policies and tasks, a firm
    (a manager and the workers it owns, pool `firm`) and a swarm of builders (pool `guild`).

    \b
    Example:
      kernel world example --agents 12 --seed 7 && kernel world run --ticks 20
    """
    from kernel.world import scenario

    w = world_of(ctx)
    w.start(seed)
    info = scenario.example(w, count)

    def human() -> None:
        roles: dict[str, int] = {}
        for a in info["agents"]:
            roles[a["role"]] = roles.get(a["role"], 0) + 1
        out.print(f"config {info['config'][:12]}: {len(info['agents'])} agents ("
                  + ", ".join(f"{n} {r}" for r, n in roles.items()) + f"), {info['tasks']} tasks,"
                  f" pools {', '.join(info['pools'])}, seed {info['seed']}")  # fmt: skip

    emit(info, as_json, human)


@world.command("story")
@json_option
@click.pass_context
def world_story(ctx: click.Context, as_json: bool) -> None:
    """Who built what on whom, who bought their config, who won escrows, and the balances.

    \b
    Example:
      kernel world story --json
    """
    from kernel.world import scenario

    story = scenario.walkthrough(world_of(ctx))

    def human() -> None:
        for e in story["built_on_others"][:15]:
            out.print(f"{e['owner']} built {e['artifact']} on {e['on_owner']}'s {e['on']}")
        for b in story["bought_config"]:
            out.print(f"{b['agent']} bought {b['detail']} at tick {b['tick']}")
        for w in story["escrows_won"][:10]:
            out.print(f"{w['worker']} won {w['n']} escrows for {w['scrip']} scrip")
        out.print("balances: " + ", ".join(f"{n} {b}" for n, b in story["balances"].items()))

    emit(story, as_json, human)


@world.group("tasks")
def tasks() -> None:
    """The Mint's externally valued tasks (each a hidden suite, a reward and a kind)."""


@tasks.command("load")
@click.argument("folder", type=UserPath(file_okay=False, path_type=Path))
@json_option
@click.pass_context
def tasks_load(ctx: click.Context, folder: Path, as_json: bool) -> None:
    """Load every task folder under FOLDER (task.toml and suite/); all or nothing.

    \b
    Example:
      kernel world tasks load examples/tasks
    """
    from kernel.world import mint

    k = kernel_of(ctx)
    k.writing()
    loaded = mint.load(k.db, k.settings, folder)
    emit(loaded, as_json, lambda: out.print(f"loaded {len(loaded)} tasks: {', '.join(t['name'] for t in loaded)}"))


@tasks.command("list")
@json_option
@click.pass_context
def tasks_list(ctx: click.Context, as_json: bool) -> None:
    """Every task: kind, reward, the escrow posted for it now, times posted.

    \b
    Example:
      kernel world tasks list --json
    """
    from kernel.world import mint

    items = mint.tasks(kernel_of(ctx).db)

    def human() -> None:
        table = new_table("task", "kind", "reward", "open escrow", "posted")
        for t in items:
            table.add_row(t["name"], t["kind"], str(t["reward"]), (t["escrow_id"] or "")[:12], str(t["posted"]))
        out.print(table)

    emit(items, as_json, human)


@world.command("weight")
@click.argument("kind")
@click.argument("weight", type=float)
@json_option
@click.pass_context
def world_weight(ctx: click.Context, kind: str, weight: float, as_json: bool) -> None:
    """Set the Mint's reward weight for tasks of KIND (a task pays reward x weight).

    \b
    Example:
      kernel world weight tests 1.5
    """
    from kernel.world import mint

    kernel_of(ctx).writing()
    weights = mint.set_weight(kernel_of(ctx).db, kind, weight)
    emit(weights, as_json, lambda: out.print(", ".join(f"{k} {w:g}" for k, w in weights.items())))


# -- pools and messages ------------------------------------------------------------------------------------
@main.group()
def pool() -> None:
    """Pools: a swarm's shared, append-only memory, read and written by its members."""


members_option = click.option("--members", default="", help="Comma-separated principal names.")


@pool.command("create")
@click.argument("name")
@as_option
@members_option
@json_option
@click.pass_context
def pool_create(ctx: click.Context, name: str, principal: str, members: str, as_json: bool) -> None:
    """Create pool NAME whose members are --as and --members.

    \b
    Example:
      kernel pool create guild --as builder-1 --members builder-2,builder-3
    """
    from kernel.world import pools

    kernel_of(ctx).writing()
    info = pools.create(kernel_of(ctx).db, name, principal, members)
    emit(info, as_json, lambda: print_pool(info))


def print_pool(info: dict[str, Any]) -> None:
    out.print(f"pool {info['name']} (by {info['creator']}): {info['entries']} entries, {info['bytes']} bytes;"
              f" members {', '.join(info['members'])}")  # fmt: skip


@pool.command("members")
@click.argument("name")
@as_option
@click.option("--add", default="", help="Comma-separated principals to add.")
@click.option("--remove", default="", help="Comma-separated principals to remove.")
@json_option
@click.pass_context
def pool_members(ctx: click.Context, name: str, principal: str, add: str, remove: str, as_json: bool) -> None:
    """Add or remove members of pool NAME (--as: a member); every change is logged.

    \b
    Example:
      kernel pool members guild --as builder-1 --add builder-4
    """
    from kernel.world import pools

    if not add and not remove:
        raise click.UsageError("give --add, --remove or both.")
    kernel_of(ctx).writing()
    info = pools.change_members(kernel_of(ctx).db, name, principal, pools.parse_members(add),
                                pools.parse_members(remove))  # fmt: skip
    emit(info, as_json, lambda: print_pool(info))


@pool.command("show")
@click.argument("name")
@json_option
@click.pass_context
def pool_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """A pool's members, size and membership log.

    \b
    Example:
      kernel pool show firm --json
    """
    from kernel.world import pools

    info = pools.show(kernel_of(ctx).db, name)
    emit(info, as_json, lambda: print_pool(info))


@pool.command("list")
@json_option
@click.pass_context
def pool_list(ctx: click.Context, as_json: bool) -> None:
    """Every pool with its member and entry counts.

    \b
    Example:
      kernel pool list
    """
    from kernel.world import pools

    items = pools.list_pools(kernel_of(ctx).db)

    def human() -> None:
        table = new_table("pool", "creator", "members", "entries")
        for p in items:
            table.add_row(p["name"], p["creator"], str(p["members"]), str(p["entries"]))
        out.print(table)

    emit(items, as_json, human)


@pool.command("read")
@click.argument("name")
@as_option
@click.option("--since", default=0, show_default=True, type=click.IntRange(0, 2**62), help="Entries after this.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@json_option
@click.pass_context
def pool_read(ctx: click.Context, name: str, principal: str, since: int, limit: int, as_json: bool) -> None:
    """Entries of pool NAME after --since, oldest first (--as: a member).

    \b
    Example:
      kernel pool read firm --as manager-1 --since 10
    """
    from kernel.world import pools

    entries = pools.read(kernel_of(ctx).db, name, principal, since, limit)

    def human() -> None:
        for e in entries:
            out.print(f"{e['seq']} (tick {e['tick']}, {e['author']}): {json.dumps(e['data'])}")

    emit(entries, as_json, human)


@pool.command("append")
@click.argument("name")
@as_option
@click.option("--data", "data_text", required=True, help="The entry: a JSON value.")
@json_option
@click.pass_context
def pool_append(ctx: click.Context, name: str, principal: str, data_text: str, as_json: bool) -> None:
    """Append a JSON value to pool NAME (--as: a member).

    \b
    Example:
      kernel pool append guild --as builder-1 --data '{"note": "slugify is on the market"}'
    """
    from kernel.world import pools

    kernel_of(ctx).writing()
    value = parse_input(data_text, None, settings_of(ctx))
    added = pools.append(kernel_of(ctx).db, settings_of(ctx), name, principal, value)
    emit(added, as_json, lambda: out.print(f"entry {added['seq']} in {name} ({added['bytes']} bytes)"))


@main.command("message")
@click.argument("to")
@click.argument("body")
@as_option
@json_option
@click.pass_context
def message(ctx: click.Context, to: str, body: str, principal: str, as_json: bool) -> None:
    """Leave a message for a principal (its policy sees it next step).

    \b
    Example:
      kernel message worker-1 "take slugify next" --as manager-1
    """
    from kernel.world import pools

    k = kernel_of(ctx)
    k.writing()
    sent = pools.send_message(k.db, k.settings, principal, to, body)
    emit({"id": sent, "from": principal, "to": to}, as_json, lambda: out.print(f"message {sent} left for {to}"))
