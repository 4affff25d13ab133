"""The daemon for real: `kernel serve` as a process, its API through the Python client, the
thin CLI through its Unix socket, a judgement through the API, a clean stop."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.client import Client, ClientError
from kernel.service.spawn import Daemon
from kernel.settings import Settings
from tests.conftest import PackageFactory, assert_no_containers

pytestmark = pytest.mark.docker
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KERNEL = str(Path(sys.executable).parent / "kernel")  # the console script users run


@pytest.fixture
def daemon(tmp_path: Path, runtime: str, docker_image: str) -> Iterator[Daemon]:
    home = tmp_path / "home"
    with Daemon(home, {"KERNEL_RUNTIME": runtime}) as d:
        with d.local() as local:
            local.create_principal("alice", 100)
            local.create_principal("bob", 50)
        yield d
        with d.local() as local:
            assert local.ledger_check()["ok"]
    settings = Settings(home=home)
    assert not (home / "daemon.sock").exists() and not (home / "daemon.json").exists()
    assert not list(settings.run_dir.glob("*")), "a run folder outlived the daemon"
    assert_no_containers(settings.home_id)


def token(d: Daemon, principal: str | None = None, admin: bool = False) -> str:
    with d.local() as local:
        return str(local.create_token(principal, admin)["token"])


def wait_done(client: Client, run_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while (run := client.run(run_id))["state"] != "done":
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    return run


@pytest.fixture
def clients(daemon: Daemon) -> Iterator[tuple[Client, Client]]:
    with Client(daemon.url, token(daemon, "alice")) as alice, Client(daemon.url, token(daemon, "bob")) as bob:
        yield alice, bob


def test_the_client_against_a_live_daemon(clients: tuple[Client, Client], make_pkg: PackageFactory) -> None:
    alice, bob = clients
    code = (
        "import kernel_client\n\ndef main(v):\n    open('out.txt', 'w').write(v['text'])\n    return len(v['text'])\n"
    )
    made = alice.submit(make_pkg(code, price=4))
    assert made["created"] and made["artifact"]["owner"] == "alice"
    art = made["artifact"]["id"]
    run = bob.invoke(art, value={"text": "to be or not"})
    assert run["status"] == "ok" and run["output"] == 12 and run["principal"] == "bob"
    assert run["state"] in ("auditing", "done")  # the answer comes before the audit is committed
    done = wait_done(bob, run["id"])
    assert done["usage"]["workspace_bytes"] == 12
    written = [e for e in bob.events(run["id"]) if e["op"] == "written"]
    assert [e["path"] for e in written] == ["out.txt"]
    assert bob.balance("bob") == 46 and alice.balance("alice") == 104
    with pytest.raises(ClientError) as refused:
        alice.run(run["id"])
    assert refused.value.status == 403 and refused.value.code == "forbidden"
    with pytest.raises(ClientError) as other:
        bob.invoke(art, principal="alice", value={"text": "x"})
    assert other.value.code == "forbidden"
    assert [r["id"] for r in bob.runs()] == [run["id"]]
    assert alice.ledger_check()["ok"] and alice.graph()["nodes"]
    assert alice.whoami() == {"token": alice.token.split("_")[1], "principal": "alice", "admin": False}  # type: ignore[union-attr]


def test_an_escrow_is_judged_through_the_api(daemon: Daemon, clients: tuple[Client, Client]) -> None:
    alice, bob = clients
    tests = alice.submit(EXAMPLES / "sorter-tests")["artifact"]["id"]
    escrow = alice.open_escrow(30, tests, deadline="1h")
    assert escrow["state"] == "open" and alice.balance("alice") == 70
    sorter = bob.submit(EXAMPLES / "sorter")["artifact"]["id"]
    assert bob.deliver(escrow["id"], sorter)["state"] == "delivered"
    judged = bob.judge(escrow["id"])
    assert judged["state"] == "released", judged["verdicts"][-1]
    assert bob.balance("bob") == 80
    with daemon.local() as local:
        assert local.pool_status()["stats"].get("handed_out", 0) >= 1  # the judge's runs used the pool too


def run_cli(args: list[str], home: Path, cwd: Path | None = None, stdin: str | None = None,
            no_daemon: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    env["KERNEL_HOME"] = str(home)
    if no_daemon:
        env["KERNEL_NO_DAEMON"] = "1"
    return subprocess.run([KERNEL, *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300)


def test_the_cli_goes_through_the_daemon(daemon: Daemon, tmp_path: Path) -> None:
    home = daemon.home
    made = run_cli(["submit", "wordcount", "--as", "alice", "--json"], home, cwd=EXAMPLES)  # a relative path
    assert made.returncode == 0, made.stderr
    art = json.loads(made.stdout)["artifact"]["id"]
    ran = run_cli(["invoke", art[:12], "--as", "bob", "--input-file", "-", "--json"], home, cwd=tmp_path,
                  stdin='{"text": "a b a"}')  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)
    assert run["output"] == {"words": 3, "top": [["a", 2], ["b", 1]]}
    db = sqlite3.connect(f"file:{home / 'kernel.db'}?mode=ro", uri=True)
    owner = db.execute("SELECT owner_process FROM runs WHERE id = ?", (run["id"],)).fetchone()[0]
    db.close()
    assert owner == daemon.info["process"], "the run was made by the daemon, not by the command's process"
    bad = run_cli(["invoke", art[:12], "--as", "bob", "--input", "{nope"], home)
    assert bad.returncode == 1 and bad.stderr.startswith("Error: --input is not valid JSON")
    assert len(bad.stderr.strip().splitlines()) == 1
    usage = run_cli(["invoke"], home)
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
    helped = run_cli(["invoke", "--help"], home)
    assert helped.returncode == 0 and "Example:" in helped.stdout
    failing = run_cli(["invoke", art[:12], "--as", "nobody"], home)
    assert failing.returncode == 1 and "nobody" in failing.stderr
    # the bridge answers on the Unix socket only: over TCP even an operator's token is refused
    with Client(daemon.url, token(daemon, admin=True)) as operator, pytest.raises(ClientError) as tcp:
        operator.request("POST", "/v1/cli", {"argv": ["balance", "bob"], "cwd": "/"})
    assert tcp.value.status == 403 and tcp.value.code == "forbidden"
    # the same command without the daemon gives the same answer
    local = run_cli(["balance", "bob", "--json"], home, no_daemon=True)
    served = run_cli(["balance", "bob", "--json"], home)
    assert local.stdout == served.stdout and json.loads(served.stdout)["balance"] == 47


def test_a_second_daemon_on_the_same_home_is_refused(daemon: Daemon) -> None:
    second = subprocess.run([sys.executable, "-m", "kernel.cli", "--home", str(daemon.home), "serve", "--listen",
                             "127.0.0.1:0"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert second.returncode == 1 and "a daemon already serves" in second.stderr
    assert daemon.proc is not None and daemon.proc.poll() is None
