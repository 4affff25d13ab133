"""The economy on the trusted in-process backend: the kernel's real ledger, proxy and audit
path with the shipped policies (and small ones written here) running in this process."""

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from judiciary.court import Court
from judiciary.trusted import HostSuiteRunner
from kernel import ledger
from kernel.api import Kernel
from kernel.cli import main
from kernel.errors import InsufficientFunds, InvalidInput, KernelError, NotFound
from kernel.sandbox.trusted import TrustedPython
from kernel.settings import Settings
from kernel.world import agents, mint, pools, scenario
from kernel.world.clock import World
from tests.conftest import PackageFactory

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def make_world(home: Path, **settings: Any) -> World:
    s = Settings(home=home, audit_common_corpus=[], **settings)
    k = Kernel(s, sandbox=TrustedPython(), image="trusted")
    runner = HostSuiteRunner(s)
    return World(k, Court(k, runner=lambda: runner))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "home", reason_model="echo")
    w.k.create_principal("alice", grant=500)
    w.k.create_principal("bob", grant=50)
    yield w
    report = w.k.ledger_check()
    assert report.ok, report.problems
    w.k.close()


def policy(make_pkg: PackageFactory, body: str, name: str = "pol") -> Path:
    """A one-module policy package whose step runs ``body`` (obs and kc in scope)."""
    code = "import kernel_client as kc\n\n\ndef step(obs):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return make_pkg(files={"pol.py": code}, name=name, entrypoint="pol:step")


def ledger_rows(home: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(home / "kernel.db")
    rows = conn.execute("SELECT debit, credit, amount, kind, memo, run_id FROM ledger ORDER BY id").fetchall()
    return [tuple("hold:store" if str(v).startswith("hold:store:") else v for v in r) for r in rows]


# -- configs and agents -------------------------------------------------------------------------------
def test_spawn_free_and_owned_agents_pays_the_cost_as_state(world: World, make_pkg: PackageFactory) -> None:
    cfg = world.k.submit(policy(make_pkg, 'return {"reasoning": "idle"}'), "alice").artifact.id
    free = agents.spawn(world.db, world.settings, cfg, "ada", grant=30)
    assert (free.free, free.balance, free.spawn_cost) == (True, 30 - world.settings.spawn_cost, 10)
    agents.set_spawn_cost(world.db, world.settings, cfg, 25)  # the Governor's lever: per config
    owned = agents.spawn(world.db, world.settings, cfg, "wren", owner="alice", grant=40)
    assert (owned.free, owned.config_owner, owned.balance, owned.spawn_cost) == (False, "alice", 40, 25)
    assert world.k.balance("alice") == 500 - 25 - 40
    assert [a.name for a in agents.list_agents(world.db, "alice")] == ["wren"]


@pytest.mark.parametrize(
    ("case", "error", "words"),
    [
        ("unknown config", NotFound, "no artifact"),
        ("data config", InvalidInput, "a config is a code artifact"),
        ("grant below cost", InsufficientFunds, "costs 10 scrip"),
        ("owner cannot pay", InsufficientFunds, "bob has 50 scrip"),
        ("taken name", InvalidInput, "already exists"),
        ("bad params", InvalidInput, "must be a JSON object"),
    ],
)
def test_bad_spawns_store_nothing(world: World, make_pkg: PackageFactory, case: str, error: type, words: str) -> None:
    cfg = world.k.submit(policy(make_pkg, 'return {"reasoning": ""}'), "alice").artifact.id
    data = world.k.submit(make_pkg(files={"d.txt": "x"}, kind="data", entrypoint=None), "alice").artifact.id
    args: dict[str, Any] = {
        "unknown config": {"config": "abcdef0123"},
        "data config": {"config": data},
        "grant below cost": {"grant": 5},
        "owner cannot pay": {"owner": "bob", "grant": 45},
        "taken name": {"name": "bob", "grant": 20},
        "bad params": {"grant": 20, "params": "[1, 2]"},
    }[case]
    supply = world.k.ledger_check().supply
    with pytest.raises(error, match=words):
        agents.spawn(world.db, world.settings, **{"config": cfg, "name": "newt", **args})
    assert world.db.rows("SELECT * FROM agents") == []
    assert world.k.ledger_check().supply == supply and world.k.balance("bob") == 50


def test_a_worker_buys_its_config_in_one_transaction(world: World, make_pkg: PackageFactory) -> None:
    cfg = world.k.submit(policy(make_pkg, 'return {"reasoning": "idle"}'), "alice").artifact.id
    agents.spawn(world.db, world.settings, cfg, "wren", owner="alice", grant=40)
    with pytest.raises(InvalidInput, match="has not put the config"):
        agents.buy_config(world.db, "wren")
    with pytest.raises(InvalidInput, match="does not own the config"):
        agents.set_price(world.db, world.settings, "wren", "bob", 10)
    agents.set_price(world.db, world.settings, "wren", "alice", 41)
    with pytest.raises(InsufficientFunds, match="wren has 40 scrip and its config costs 41"):
        agents.buy_config(world.db, "wren")
    agents.set_price(world.db, world.settings, "wren", "alice", 30)
    before = len(ledger_rows(world.settings.home))
    bought = agents.buy_config(world.db, "wren")
    assert (bought.free, bought.config_owner, bought.balance, bought.sale_price) == (True, "wren", 10, None)
    sale = ledger_rows(world.settings.home)[before:]
    assert [(r[0], r[1], r[2], r[3]) for r in sale] == [("principal:wren", "principal:alice", 30, "config_sale")]
    with pytest.raises(InvalidInput, match="already owns its config"):
        agents.buy_config(world.db, "wren")
    with pytest.raises(InvalidInput, match="does not own"):  # alice no longer commands it
        world.command("wren", "alice", None)


def test_owner_changes_pauses_and_commands_an_agent(world: World, make_pkg: PackageFactory) -> None:
    said = policy(make_pkg, 'return {"reasoning": "ordered: " + json.dumps(obs["command"])}')
    said.joinpath("pol.py").write_text("import json\n" + said.joinpath("pol.py").read_text())
    cfg = world.k.submit(said, "alice").artifact.id
    agents.spawn(world.db, world.settings, cfg, "wren", owner="alice", grant=40)
    with pytest.raises(InvalidInput, match="bob does not own the config of agent wren"):
        world.command("wren", "bob", {"go": 1})
    step = world.command("wren", "alice", {"go": 1})
    assert step["reasoning"] == 'ordered: {"go": 1}'
    run = world.k.run(step["run_id"])
    assert (run.trigger, run.principal, run.tick) == ("command", "wren", 0)
    agents.set_state(world.db, "wren", "alice", "paused")
    world.run(2)
    assert world.db.rows("SELECT * FROM steps WHERE trigger = 'tick'") == []  # paused: no ticks
    agents.change(world.db, "wren", "alice", params={"role": "x"})
    assert agents.get(world.db, "wren").params == {"role": "x"}
    kinds = [h["kind"] for h in agents.history(world.db, "wren")]
    assert kinds == ["params", "paused", "spawned"]


# -- kernel_client's new calls --------------------------------------------------------------------------
def test_pools_messages_and_reasoning_from_inside_runs(world: World, make_pkg: PackageFactory) -> None:
    body = """\
seq = kc.pool_append("guild", {"note": obs["agent"]}, reasoning="tell the guild")
seen = kc.pool_read("guild", reasoning="read the guild")
kc.send_message("bob", "hello from " + obs["agent"])
try:
    kc.pool_read("secret")
    denied = None
except kc.KernelCallError as exc:
    denied = exc.code + ": " + exc.message
return {"reasoning": "shared a note", "memory": {"seq": seq}, "actions": [len(seen), denied]}"""
    cfg = world.k.submit(policy(make_pkg, body), "alice").artifact.id
    agents.spawn(world.db, world.settings, cfg, "ada", grant=30)
    pools.create(world.db, "guild", "alice", ["ada"])
    pools.create(world.db, "secret", "bob", [])
    world.run(1, seed=3)
    step = world.steps("ada")[0]
    assert step["status"] == "ok" and step["decision"]["memory"] == {"seq": 1}
    assert step["decision"]["actions"] == [1, "invalid: ada is not a member of pool 'secret'; a member can add it."]
    events = world.k.events(run_id=step["run_id"])
    appended = next(e for e in events if e.op == "pool_append")
    assert (appended.principal, appended.path, appended.reasoning) == ("ada", "pool:guild", "tell the guild")
    assert next(e for e in events if e.op == "decision").reasoning == "shared a note"
    assert pools.inbox(world.db, "bob")[0]["body"] == "hello from ada"
    with pytest.raises(InvalidInput, match="not a member"):
        pools.append(world.db, world.settings, "guild", "bob", {"x": 1})
    log = [(e["kind"], e["subject"]) for e in pools.show(world.db, "guild")["log"]]
    assert log == [("created", "alice"), ("joined", "ada"), ("joined", "alice")]
    shown = CliRunner().invoke(main, ["--home", str(world.settings.home), "audit", "events", "--run", step["run_id"]])
    assert shown.exit_code == 0 and "tell the guild" in shown.output


def test_submit_from_a_run_is_validated_like_kernel_submit(world: World, make_pkg: PackageFactory) -> None:
    base = world.k.submit(make_pkg("def main(v):\n    return v\n"), "alice", public=True).artifact.id
    body = f"""\
good = kc.submit({{"pyproject.toml": '[project]\\nname = "mine"\\nversion = "1"\\n[tool.kernel]\\nkind = "code"\\n'
                   'entrypoint = "m:f"\\ndepends = ["{base[:12]}"]\\n', "m.py": "def f(v):\\n    return v\\n"}})
bad = []
for files in ({{"m.py": "x = 1\\n"}}, {{"pyproject.toml": "[project]\\nname = 'x'\\nversion = '1'\\n[tool.kernel]\\n"
              "kind = 'code'\\nentrypoint = 'm:nothere'\\n", "m.py": "x = 1\\n"}}):
    try:
        kc.submit(files)
    except kc.KernelCallError as exc:
        bad.append(exc.code)
return {{"reasoning": "built on alice's", "actions": [good, bad]}}"""
    cfg = world.k.submit(policy(make_pkg, body), "alice").artifact.id
    agents.spawn(world.db, world.settings, cfg, "ada", grant=30)
    world.run(1)
    good, bad = world.steps("ada")[0]["decision"]["actions"]
    art = world.k.artifact(good)
    assert (art.owner, art.depends, art.public) == ("ada", [base], False)
    assert bad == ["invalid", "invalid"]


def test_reason_is_metered_in_tokens_and_refused_without_a_model(tmp_path: Path, make_pkg: PackageFactory) -> None:
    body = 'return {"reasoning": kc.reason("build or rest?"), "actions": [kc.balance()]}'
    for model, expect in (("echo", "ok"), (None, "error")):
        w = make_world(tmp_path / f"home-{model}", reason_model=model, step_price=0)
        w.k.create_principal("alice")
        cfg = w.k.submit(policy(make_pkg, body), "alice").artifact.id
        agents.spawn(w.db, w.settings, cfg, "ada", grant=2000)
        w.run(1)
        step = w.steps("ada")[0]
        assert step["status"] == expect, w.k.run(step["run_id"]).reason
        if model:
            assert json.loads(step["reasoning"])["prompt"] == "build or rest?"  # llm-echo answers with the prompt
            reserved = w.db.one("SELECT amount, memo FROM ledger WHERE kind = 'reason'")
            back = w.db.one("SELECT amount, memo FROM ledger WHERE kind = 'mint' AND memo LIKE 'reason:%'")
            assert reserved and back and reserved["memo"] == "up to 256 tokens of echo"
            assert back["memo"].endswith("tokens used") and 0 < reserved["amount"] - back["amount"] < 100
            assert step["decision"]["actions"] == [2000 - 10 - reserved["amount"] + back["amount"]]
        else:
            run = w.k.run(step["run_id"])
            assert "no language model is configured; set KERNEL_REASON_MODEL" in (run.reason or "")
            assert w.db.one("SELECT 1 FROM ledger WHERE kind = 'reason'") is None
        w.k.close()


def test_a_step_run_may_invoke_any_artifact_but_the_code_it_runs_is_bound_by_depends(
    world: World, make_pkg: PackageFactory
) -> None:
    echo = world.k.submit(make_pkg("def main(v):\n    return v\n", price=2), "bob", public=True).artifact.id
    body = f'return {{"reasoning": "use bob\'s", "actions": [kc.invoke("{echo}", 7)]}}'
    cfg = world.k.submit(policy(make_pkg, body), "alice").artifact.id
    agents.spawn(world.db, world.settings, cfg, "ada", grant=30)
    world.run(1)
    step = world.steps("ada")[0]
    assert step["decision"]["actions"] == [7]
    child = world.db.one("SELECT trigger, tick, principal FROM runs WHERE artifact_id = ?", (echo,))
    assert child == {"trigger": "call", "tick": 0, "principal": "ada"}
    assert world.k.balance("bob") == 52  # paid its price by the agent
    user = world.k.invoke(cfg, "alice", {"params": {}, "agent": "alice"})  # a person's run of the same code
    assert user.trigger == "user" and user.status == "error"  # not an agent step: the observation is missing


# -- the Mint --------------------------------------------------------------------------------------------
def copy_task(src: str, dest: Path) -> Path:
    import shutil

    shutil.copytree(EXAMPLES / "tasks" / src, dest / src)
    return dest


@pytest.mark.parametrize(
    ("breakage", "words"),
    [
        ("syntax", "its suite is broken"),
        ("kind", "must be kind tests"),
        ("no tests", "has no test functions"),
        ("reward", "task.toml reward"),
        ("uses", "uses 'nowhere'"),
    ],
)
def test_a_broken_task_folder_stores_nothing(world: World, tmp_path: Path, breakage: str, words: str) -> None:
    folder = copy_task("words", copy_task("slugify", copy_task("normalize-spaces", tmp_path / "tasks")))
    suite = folder / "slugify" / "suite"
    test_file = next(suite.glob("test_*.py"))
    toml = folder / "slugify" / "task.toml"
    if breakage == "syntax":
        test_file.write_text("def test_x(:\n")
    elif breakage == "kind":
        manifest = (suite / "pyproject.toml").read_text()
        (suite / "pyproject.toml").write_text(manifest.replace('"tests"', '"code"\nentrypoint = "m:f"'))
    elif breakage == "no tests":
        test_file.write_text("from slugify import slugify\n")
    elif breakage == "reward":
        toml.write_text(toml.read_text().replace("reward = 14", "reward = -1"))
    else:
        toml.write_text(toml.read_text().replace('uses = ["normalize-spaces"]', 'uses = ["nowhere"]'))
    artifacts = len(world.k.artifacts())
    with pytest.raises(InvalidInput, match=words):
        mint.load(world.db, world.settings, folder)
    assert mint.tasks(world.db) == [] and len(world.k.artifacts()) == artifacts


def test_the_mint_posts_by_weight_within_its_budget_and_the_judiciary_pays(world: World) -> None:
    loaded = mint.load(world.db, world.settings, EXAMPLES / "tasks")
    assert len(loaded) >= 30 and {t["kind"] for t in loaded} == {"code", "tests"}
    mint.set_weight(world.db, "tests", 2.0)
    posted = mint.post(world.db, world.settings, world.court, tick=0)
    assert len(posted) == world.settings.mint_tasks_per_tick
    for p in posted:
        task = mint.require_task(world.db, p["task"])
        assert p["amount"] == task["reward"] * (2 if task["kind"] == "tests" else 1)
    minted = world.db.one("SELECT SUM(amount) AS s FROM mint_log WHERE tick = 0")
    assert minted is not None and minted["s"] == sum(p["amount"] for p in posted) <= world.settings.mint_per_tick
    assert world.k.artifact(world.court.show(posted[0]["escrow_id"]).tests_id).public is False  # the suite is hidden
    with pytest.raises(InvalidInput, match="a Mint weight is a number"):
        mint.set_weight(world.db, "code", -1)
    with pytest.raises(InvalidInput, match="'mint' is the name of a system principal"):
        world.k.create_principal("mint")  # nobody else can hold (or spend) what the Mint funds escrows with


# -- the clock ---------------------------------------------------------------------------------------------
def example_world(home: Path, agents_count: int = 12, seed: int = 5) -> World:
    w = make_world(home, reason_model="echo", mint_tasks_per_tick=4)
    w.start(seed)
    scenario.example(w, agents_count)
    return w


def test_a_seeded_world_replays_to_the_same_decisions_ledger_and_events(tmp_path: Path) -> None:
    snapshots = []
    for name in ("a", "b"):
        w = example_world(tmp_path / name)
        if name == "a":
            w.run(6)
        else:  # the same six ticks one at a time (ids do not depend on how a world's ticks are run)
            for _ in range(6):
                w.run(1)
                report = w.k.ledger_check()  # conservation at every tick: mint and burn explicit rows
                minted = w.db.one("SELECT COALESCE(SUM(amount), 0) AS s FROM ledger WHERE kind = 'mint'")
                burned = w.db.one("SELECT COALESCE(SUM(amount), 0) AS s FROM ledger WHERE credit = 'mint'")
                assert report.ok and minted and burned and report.supply == minted["s"] - burned["s"]
        for t in range(6):
            stepped = w.db.one("SELECT COUNT(*) AS n FROM steps WHERE tick = ?", (t,))
            assert stepped is not None and stepped["n"] == 12
        w.k.audit.flush()
        conn = sqlite3.connect(w.settings.db_path)
        steps = conn.execute(
            "SELECT tick, agent, trigger, status, decision, reasoning FROM steps ORDER BY id"
        ).fetchall()
        events = conn.execute(
            "SELECT run_id, principal, source, op, artifact_id, path, bytes, digest, ok, detail, reasoning"
            " FROM audit_events ORDER BY run_id, id"
        ).fetchall()
        snapshots.append((steps, ledger_rows(w.settings.home), events))
        w.k.close()
    (steps_a, ledger_a, events_a), (steps_b, ledger_b, events_b) = snapshots
    assert steps_a == steps_b and ledger_a == ledger_b and events_a == events_b
    assert any(json.loads(s[4] or "null") and json.loads(s[4]).get("actions") for s in steps_a)  # they did act
    other = example_world(tmp_path / "c", seed=6)
    other.run(6)
    steps_c = sqlite3.connect(other.settings.db_path).execute("SELECT agent FROM steps ORDER BY id").fetchall()
    assert steps_c != [(s[1],) for s in steps_a]  # another seed, another order
    other.k.close()


def test_the_example_world_builds_on_itself(tmp_path: Path) -> None:
    w = example_world(tmp_path / "home", agents_count=12, seed=1)
    w.run(20)
    story = scenario.walkthrough(w)
    assert story["built_on_others"], "no artifact was built on another owner's"
    assert story["bought_config"], "no worker bought its config"
    assert story["escrows_won"], "no escrow was released"
    triggers = {r["trigger"] for r in w.db.rows("SELECT DISTINCT trigger FROM runs")}
    assert {"tick", "call"} <= triggers
    assert w.db.one("SELECT COUNT(*) AS n FROM pool_entries WHERE pool = 'firm'")["n"] > 0  # type: ignore[index]
    report = w.k.ledger_check()
    minted = w.db.one("SELECT COALESCE(SUM(amount), 0) AS s FROM ledger WHERE kind = 'mint'")["s"]  # type: ignore[index]
    burned = w.db.one("SELECT COALESCE(SUM(amount), 0) AS s FROM ledger WHERE credit = 'mint'")["s"]  # type: ignore[index]
    assert report.ok and report.supply == minted - burned
    w.k.close()


def test_a_world_refuses_another_seed_and_bad_ticks(world: World) -> None:
    world.run(1, seed=4)
    with pytest.raises(InvalidInput, match="started with seed 4"):
        world.run(1, seed=5)
    for ticks in (0, -1, True, 2.5):
        with pytest.raises(InvalidInput, match="--ticks"):
            world.run(ticks)  # type: ignore[arg-type]
    assert world.status()["tick"] == 1


def test_a_broke_agent_skips_its_step_without_debt(world: World, make_pkg: PackageFactory) -> None:
    cfg = world.k.submit(policy(make_pkg, 'return {"reasoning": "x"}'), "alice").artifact.id
    agents.spawn(world.db, world.settings, cfg, "ada", grant=11)  # 10 spawn + 1 step
    world.run(3)
    assert [s["status"] for s in reversed(world.steps("ada"))] == ["ok", "broke", "broke"]
    assert world.k.balance("ada") == 0


def test_cli_bad_input_is_one_sentence(world: World, make_pkg: PackageFactory) -> None:
    home = str(world.settings.home)
    cases = [
        (["agent", "spawn", "ffffffffff", "--name", "x", "--grant", "20"], "no artifact"),
        (["agent", "show", "nobody"], "no agent named 'nobody'"),
        (["agent", "command", "nobody", "--as", "alice"], "no agent named 'nobody'"),
        (["agent", "buy-config", "nobody"], "no agent named 'nobody'"),
        (["pool", "read", "nopool", "--as", "alice"], "no pool named 'nopool'"),
        (["world", "tasks", "load", home], "holds no task folders"),
        (["agent", "spawn", "ffffffffff", "--name", "x", "--params", "{"], "--params is not valid JSON"),
        (["world", "weight", "code", "--", "-3"], "a Mint weight is a number from 0 to 100"),
        (["transfer", "alice", "bob"], "give FROM TO AMOUNT, or TO AMOUNT with --as FROM"),
        (["transfer", "alice", "bob", "five"], "AMOUNT must be a whole number"),
        (["agent", "price", "nobody", "--as", "alice"], "give an AMOUNT or --not-for-sale"),
    ]
    for argv, words in cases:
        result = CliRunner().invoke(main, ["--home", home, *argv])
        assert result.exit_code in (1, 2), (argv, result.output)
        assert words in result.output, (argv, result.output)
        assert "Traceback" not in result.output


def test_transfer_takes_from_to_amount(world: World) -> None:
    home = str(world.settings.home)
    done = CliRunner().invoke(main, ["--home", home, "transfer", "alice", "bob", "7", "--memo", "x", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"from": "alice", "to": "bob", "amount": 7, "balance": 493}
    assert CliRunner().invoke(main, ["--home", home, "transfer", "bob", "3", "--as", "alice"]).exit_code == 0
    assert world.k.balance("bob") == 60


def test_world_cli_runs_a_small_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands end to end (on the trusted backend: the CLI's kernel is swapped for one)."""
    w = example_world(tmp_path / "home", agents_count=6, seed=2)
    w.k.close()
    import kernel.world.commands as commands

    monkeypatch.setattr(commands, "world_of", lambda ctx: example_like(tmp_path / "home", ctx))
    home = str(tmp_path / "home")
    ran = CliRunner().invoke(main, ["--home", home, "world", "run", "--ticks", "2", "--json"])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["tick"] == 2
    listed = json.loads(CliRunner().invoke(main, ["--home", home, "agents", "--json"]).output)
    assert len(listed) == 6 and {a["params"]["role"] for a in listed} >= {"manager", "worker"}
    status = json.loads(CliRunner().invoke(main, ["--home", home, "world", "status", "--json"]).output)
    assert status["ledger_ok"] and status["seed"] == 2


def example_like(home: Path, ctx: Any) -> World:
    obj = ctx.find_root().obj
    if "world" not in obj:
        obj["world"] = make_world(home, reason_model="echo", mint_tasks_per_tick=4)
        ctx.call_on_close(obj["world"].k.close)
    return obj["world"]


def test_kernel_errors_are_kernel_errors() -> None:
    from kernel.world.errors import NoModel, NotMember, NotOwner, WorldError

    assert all(issubclass(e, KernelError) for e in (NoModel, NotMember, NotOwner, WorldError))
    assert ledger.MINT


CHILD = """
import sys
from pathlib import Path
from tests.test_world import make_world
w = make_world(Path(sys.argv[1]), mint_tasks_per_tick=4)
print("ready", flush=True)
w.run(1000, progress=lambda done, total: print("tick", done, flush=True))
"""


def test_a_killed_world_run_loses_nothing_and_resumes_its_tick(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    home = tmp_path / "home"
    w = example_world(home, agents_count=8, seed=9)
    w.k.close()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(home)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert child.stdout is not None
    while child.stdout.readline().strip() != "tick 2":
        pass
    time.sleep(0.4)  # into the middle of a tick
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    w = make_world(home, mint_tasks_per_tick=4)  # its kernel recovers the killed runs
    tick = w.status()["tick"]
    partial = w.db.one("SELECT COUNT(*) AS n FROM steps WHERE tick = ? AND trigger = 'tick'", (tick,))["n"]  # type: ignore[index]
    w.run(2)
    counts = [r["n"] for r in w.db.rows("SELECT COUNT(*) AS n FROM steps WHERE trigger = 'tick' GROUP BY tick")]
    assert counts == [8] * (tick + 2), (counts, partial)  # every agent stepped once a tick, the cut tick too
    assert w.status()["resumes"] == 1
    report = w.k.ledger_check()
    assert report.ok, report.problems
    assert w.db.one("SELECT COUNT(*) AS n FROM runs WHERE state != 'done'")["n"] == 0  # type: ignore[index]
    w.k.close()


# -- what an adversarial review found -------------------------------------------------------------------
def test_spam_cannot_silence_an_agent_and_messages_are_paid(world: World, make_pkg: PackageFactory) -> None:
    spam = 'for _ in range(60):\n    kc.send_message("vic", "\\u2603" * 4000)\nreturn {"reasoning": "spam"}'
    quiet = 'return {"reasoning": "read " + str(len(obs["messages"])), "actions": [obs["truncated"]]}'
    agents.spawn(world.db, world.settings, world.k.submit(policy(make_pkg, spam, "s"), "alice").artifact.id,
                 "spammer", grant=200)  # fmt: skip
    agents.spawn(world.db, world.settings, world.k.submit(policy(make_pkg, quiet, "q"), "alice").artifact.id,
                 "vic", grant=50)  # fmt: skip
    world.run(3)
    steps = {(s["tick"], s["agent"]): s for s in world.steps(limit=10)}
    assert all(steps[(t, "vic")]["status"] == "ok" for t in range(3))  # trimmed to fit, never refused
    assert world.k.balance("spammer") == 200 - 10 - 3 - 60 * 3 * world.settings.message_price
    seen = sum(int(steps[(t, "vic")]["reasoning"].split()[-1]) for t in range(3))
    assert 0 < seen < 180  # the rest wait for a later step
    assert any(steps[(t, "vic")]["decision"]["actions"][0].get("messages") for t in range(3))


def test_depends_are_deduplicated_and_bounded(world: World, make_pkg: PackageFactory) -> None:
    base = world.k.submit(make_pkg("def main(v):\n    return v\n"), "alice", public=True).artifact.id
    twice = make_pkg("def main(v):\n    return v\n", name="twice", extra=f'depends = ["{base}", "{base[:12]}"]')
    assert world.k.submit(twice, "alice").artifact.depends == [base]
    many = make_pkg("def main(v):\n    return v\n", name="many", extra=f"depends = {json.dumps([base] * 65)}")
    with pytest.raises(KernelError, match="depends"):
        world.k.submit(many, "alice")


def test_code_an_agent_invokes_cannot_commit_it(world: World, make_pkg: PackageFactory) -> None:
    thief = make_pkg(files={"t.py": "import kernel_client as kc\n\ndef main(v):\n    return kc.pool_read('firm')\n"},
                     name="thief", entrypoint="t:main")  # fmt: skip
    thief_id = world.k.submit(thief, "bob", public=True).artifact.id
    body = f'''try:
    kc.invoke("{thief_id}")
    leaked = "leaked"
except kc.KernelCallError as exc:
    leaked = exc.message
return {{"reasoning": leaked, "actions": [kc.pool_read("firm")[0]["data"]]}}'''
    cfg = world.k.submit(policy(make_pkg, body), "alice").artifact.id
    agents.spawn(world.db, world.settings, cfg, "ada", grant=30)
    pools.create(world.db, "firm", "ada", [])
    pools.append(world.db, world.settings, "firm", "ada", {"plan": 42})
    world.run(1)
    step = world.steps("ada")[0]
    assert step["decision"]["actions"] == [{"plan": 42}]  # its own step may
    assert "may not make this call" in step["reasoning"]  # what it invoked may not


def test_a_bad_memory_is_refused_and_the_owner_can_reset_it(world: World, make_pkg: PackageFactory) -> None:
    body = 'return {"reasoning": "x", "memory": float("nan") if obs["memory"] is None else obs["memory"]}'
    cfg = world.k.submit(policy(make_pkg, body), "alice").artifact.id
    agents.spawn(world.db, world.settings, cfg, "ada", owner="alice", grant=30)
    world.run(2)
    assert [s["status"] for s in reversed(world.steps("ada"))] == ["bad_memory", "bad_memory"]
    agents.change(world.db, "ada", "alice", reset_memory=True)
    assert world.db.one("SELECT memory FROM agents WHERE name = 'ada'") == {"memory": "null"}


def test_a_started_step_is_never_run_again(world: World, make_pkg: PackageFactory) -> None:
    cfg = world.k.submit(policy(make_pkg, 'kc.transfer("bob", 5)\nreturn {"reasoning": "paid"}'), "alice").artifact.id
    agents.spawn(world.db, world.settings, cfg, "ada", grant=30)
    world.start(0)
    with world.db.transaction() as conn:  # as a run killed after ada's step started at tick 0 leaves it
        conn.execute("UPDATE world SET in_tick = 0 WHERE id = 1")
        conn.execute("INSERT INTO steps (tick, agent, trigger, status, at) VALUES (0, 'ada', 'tick', 'running', 'x')")
    world.run(2)
    assert [(s["tick"], s["status"]) for s in reversed(world.steps("ada"))] == [(0, "interrupted"), (1, "ok")]
    assert world.status()["resumes"] == 1 and world.k.balance("bob") == 55


def test_reason_answers_no_more_than_was_paid_for(tmp_path: Path, make_pkg: PackageFactory) -> None:
    w = make_world(tmp_path / "home", reason_model="echo", reason_max_tokens=10, step_price=0)
    w.k.create_principal("alice")
    body = 'answer = kc.reason("word " * 300)\nreturn {"reasoning": str(len(answer.split()))}'
    agents.spawn(w.db, w.settings, w.k.submit(policy(make_pkg, body), "alice").artifact.id, "ada", grant=400)
    w.run(1)
    assert w.steps("ada")[0]["reasoning"] == "10"  # cut to the tokens paid for
    spent = 390 - w.k.balance("ada")
    assert spent == 300 + 10  # the prompt and the most it may answer; the rest of the reserve came back
    assert w.k.ledger_check().ok
    w.k.close()


def test_a_zero_or_unaffordable_weight_does_not_stop_the_other_kinds(world: World) -> None:
    mint.load(world.db, world.settings, EXAMPLES / "tasks")
    mint.set_weight(world.db, "code", 0)
    for tick in range(3):
        posted = mint.post(world.db, world.settings, world.court, tick)
        assert len(posted) == world.settings.mint_tasks_per_tick
        assert {mint.require_task(world.db, p["task"])["kind"] for p in posted} == {"tests"}
    with pytest.raises(InvalidInput, match="is not a kind of task"):
        mint.set_weight(world.db, "bad\nkind", 1)


def test_more_bad_input_is_one_sentence(world: World, make_pkg: PackageFactory) -> None:
    home = str(world.settings.home)
    cfg = world.k.submit(policy(make_pkg, 'return {"reasoning": ""}'), "alice").artifact.id
    for argv, words in [
        (["agent", "spawn", cfg, "--name", "x", "--grant", "20", "--params", '{"a": NaN}'], "no NaN or Infinity"),
        (["pool", "read", "p", "--as", "alice", "--since", "9" * 30], "is not in the range"),
        (["world", "weight", "", "1"], "is not a kind of task"),
    ]:
        result = CliRunner().invoke(main, ["--home", home, *argv])
        assert result.exit_code in (1, 2) and words in result.output, (argv, result.output)
