"""A small world on the real engine: every policy step, component and check is a run in a
fresh container, every delivery is judged by the real judiciary in its two containers."""

import shutil
from pathlib import Path

import pytest

from kernel.api import Kernel
from kernel.settings import Settings
from kernel.world import agents, scenario
from kernel.world.clock import World
from tests.conftest import assert_no_containers

pytestmark = pytest.mark.docker

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TASKS = ["normalize-spaces", "slugify", "words", "is-palindrome"]


def small_examples(root: Path) -> Path:
    shutil.copytree(EXAMPLES / "agents", root / "agents")
    for task in TASKS:
        shutil.copytree(EXAMPLES / "tasks" / task, root / "tasks" / task)
    return root


def test_a_small_world_runs_in_real_sandboxes(tmp_path: Path, runtime: str, docker_image: str) -> None:
    settings = Settings(home=tmp_path / "home", runtime=runtime, reason_model="echo", mint_tasks_per_tick=3,
                        audit_common_corpus=[], pool=True)  # fmt: skip
    k = Kernel(settings)
    w = World(k)
    w.start(3)
    info = scenario.example(w, 5, small_examples(tmp_path / "examples"))
    thinker = {"role": "thinker", "skills": scenario.skills_for("builder", scenario.read_solutions(
        tmp_path / "examples" / "tasks"), __import__("numpy").random.default_rng(0))}  # fmt: skip
    agents.spawn(k.db, settings, info["config"], "thinker-1", grant=600, params=thinker)
    w.run(3)

    steps = w.steps(limit=100)
    assert len([s for s in steps if s["trigger"] == "tick"]) == 18
    assert {s["status"] for s in steps} == {"ok"}, [s for s in steps if s["status"] != "ok"]
    step_runs = k.db.rows("SELECT runtime, trigger, tick FROM runs WHERE trigger = 'tick'")
    assert {r["runtime"] for r in step_runs} == {runtime}  # each step in its own container
    released = [e for e in w.court.escrows("released")]
    assert released, "no delivery was judged and paid"
    assert all(v.runtime == runtime and v.passed for e in released for v in e.verdicts)
    thought = [s for s in steps if s["agent"] == "thinker-1"]
    assert all(s["reasoning"].startswith("the model said") for s in thought)  # reason() reached the model
    assert k.db.one("SELECT COUNT(*) AS n FROM ledger WHERE kind = 'reason'")["n"] == 3  # type: ignore[index]
    said = [e for e in k.events(limit=None) if e.reasoning]
    assert {e.op for e in said} >= {"decision", "submit", "deliver"}
    report = k.ledger_check()
    assert report.ok, report.problems
    k.close()
    assert_no_containers(settings.home_id)


def test_the_world_commands_through_the_daemon(tmp_path: Path, runtime: str, docker_image: str) -> None:
    """`kernel world ...` and `kernel agent ...` forwarded by the thin CLI to a live daemon."""
    import json
    import subprocess
    import sys

    from kernel.service.spawn import Daemon

    kernel = str(Path(sys.executable).parent / "kernel")
    home = tmp_path / "home"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in __import__("os").environ.items() if k != "KERNEL_HOME"}
        return subprocess.run([kernel, "--home", str(home), *args], env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip

    with Daemon(home, {"KERNEL_RUNTIME": runtime, "KERNEL_REASON_MODEL": "echo"}) as daemon:
        made = cli("world", "example", "--agents", "4", "--seed", "2", "--json")
        assert made.returncode == 0, made.stderr
        assert [a["role"] for a in json.loads(made.stdout)["agents"]] == ["manager", "worker", "builder", "tester"]
        ran = cli("world", "run", "--ticks", "2", "--json")
        assert ran.returncode == 0, ran.stderr
        status = json.loads(ran.stdout)
        assert (status["tick"], status["steps"], status["ledger_ok"]) == (2, 8, True)
        ordered = cli("agent", "command", "worker-1", "--as", "manager-1", "--input", '{"go": 1}', "--json")
        assert ordered.returncode == 0, ordered.stderr
        assert json.loads(ordered.stdout)["trigger"] == "command"
        refused = cli("agent", "command", "worker-1", "--as", "builder-1")
        assert refused.returncode == 1 and refused.stderr.strip().endswith("(manager-1 does).")
        shown = json.loads(cli("agent", "show", "worker-1", "--json").stdout)
        assert shown["config_owner"] == "manager-1" and shown["steps"][0]["trigger"] == "command"
        # telemetry, through the daemon: the commanded step counts in the next tick's control figures
        assert cli("world", "run", "--ticks", "1").returncode == 0
        now = json.loads(cli("telemetry", "--window", "1", "--json").stdout)
        assert now["tick"] == 2 and now["values"]["autonomy"] == 4 / 5 and now["values"]["control_entropy"] > 0.7
        lines = cli("telemetry", "export", "--format", "jsonl").stdout.splitlines()
        assert [json.loads(line)["tick"] for line in lines] == [0, 1, 2]
        board = json.loads(cli("dashboard", "--json").stdout)
        assert board["serving"] and board["url"].startswith(daemon.info["url"] + "/#token=kt_")
        import urllib.request

        with urllib.request.urlopen(daemon.info["url"] + "/", timeout=30) as page:
            assert page.headers["Content-Type"].startswith("text/html") and b"/static/dashboard.js" in page.read()
        asked = urllib.request.Request(
            daemon.info["url"] + "/v1/telemetry/series",
            headers={"Authorization": "Bearer " + board["url"].split("#token=")[1]},
        )
        with urllib.request.urlopen(asked, timeout=30) as answer:
            assert json.loads(answer.read())["ticks"] == [0, 1, 2]
    assert_no_containers(Settings(home=home).home_id)
