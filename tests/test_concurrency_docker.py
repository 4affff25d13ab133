"""Many kernels, one home: concurrent sweeps, and a soak of N kernel processes on the real engine.

The soak runs the real `kernel` command: at any moment N processes share one home,
invoking (some runs fail on purpose: the artifact's own failures), transferring,
opening, delivering and judging escrows, sweeping, and now and then being SIGKILLed
mid-run. Afterwards the ledger checks, every run is finished, every escrow settled,
and nothing is left behind: no container, run folder, temp file or hold.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from kernel import process
from kernel.sandbox.base import HOME_LABEL, OWNER_LABEL, PROJECT_LABEL, RUN_LABEL
from kernel.sandbox.docker import PROJECT, DockerSandbox
from tests.conftest import PackageFactory, assert_no_containers

pytestmark = pytest.mark.docker

KERNEL = [sys.executable, "-m", "kernel.cli"]
WORKERS = int(os.environ.get("KERNEL_SOAK_WORKERS", "4"))
SOAK_SECONDS = float(os.environ.get("KERNEL_SOAK_SECONDS", "45"))


def test_concurrent_sweeps_of_one_home_never_fail(docker_client: docker.DockerClient, docker_image: str) -> None:
    """Eight sweepers, one home, containers of a dead kernel: every one removed, no sweeper fails."""
    home_id = "sweep-race-" + os.urandom(4).hex()
    dead = "4194000:1:0"
    for i in range(24):
        docker_client.containers.create(
            docker_image,
            ["sleep", "infinity"],
            labels={PROJECT_LABEL: PROJECT, HOME_LABEL: home_id, OWNER_LABEL: dead, RUN_LABEL: f"run{i:02d}"},
        )
    removed: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def sweeper() -> None:
        sandbox = DockerSandbox()
        try:
            start.wait()
            removed.append(sandbox.sweep(lambda owner: False, {HOME_LABEL: home_id}))
        except BaseException as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)
        finally:
            sandbox.close()

    threads = [threading.Thread(target=sweeper) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    swept = [name for batch in removed for name in batch]
    # every one removed (the engine may report one removal to two sweepers racing for it)
    assert sorted(set(swept)) == [f"run{i:02d}" for i in range(24)]
    assert_no_containers(home_id)


# -- the soak -------------------------------------------------------------------------------


@dataclass
class Tally:
    ops: Counter[str] = field(default_factory=Counter)
    artifact_failures: int = 0  # runs that failed because the artifact raised (expected)
    killed: int = 0  # kernel processes this test SIGKILLed
    failures: list[str] = field(default_factory=list)  # anything else: must stay empty
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, what: str, r: subprocess.CompletedProcess[str]) -> None:
        with self.lock:
            self.failures.append(f"{what}: exit {r.returncode}: {r.stderr.strip()[-400:]}")


def kernel(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    env.update(KERNEL_HOME=str(home), KERNEL_AUDIT_COMMON_CORPUS="[]", KERNEL_RUNTIME=os.environ["SOAK_RUNTIME"])
    return subprocess.run([*KERNEL, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)


def setup_home(home: Path, make_pkg: PackageFactory) -> dict[str, str]:
    def ok(*args: str) -> dict:  # type: ignore[type-arg]
        r = kernel(home, *args, "--json")
        assert r.returncode == 0, (args, r.stderr)
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    ok("principal", "create", "owner", "--grant", "100")
    for i in range(WORKERS):
        ok("principal", "create", f"w{i}", "--grant", "1000")
    work = make_pkg(
        "import kernel_client\n"
        "def main(v):\n"
        "    kernel_client.transfer(v['to'], 1, 'tip')\n"
        "    return sum(range(v['n']))\n",
        price=2,
    )
    failing = make_pkg("def main(v):\n    raise ValueError('the artifact fails on purpose')\n", price=1)
    tests = make_pkg(
        None,
        kind="tests",
        entrypoint=None,
        extra='target = "sorter"',
        files={"test_s.py": "import sorter\n\ndef test_sorts():\n    assert sorter.sort([3, 1, 2]) == [1, 2, 3]\n"},
    )
    deliverable = make_pkg(None, files={"sorter.py": "def sort(x):\n    return sorted(x)\n"}, entrypoint="sorter:sort")
    return {
        "work": ok("submit", str(work), "--as", "owner")["artifact"]["id"],
        "failing": ok("submit", str(failing), "--as", "owner")["artifact"]["id"],
        "tests": ok("submit", str(tests), "--as", "owner")["artifact"]["id"],
        "deliverable": ok("submit", str(deliverable), "--as", "owner")["artifact"]["id"],
    }


def worker(index: int, home: Path, ids: dict[str, str], deadline: float, tally: Tally) -> None:
    rng = random.Random(index)
    me = f"w{index}"
    peer = f"w{(index + 1) % WORKERS}"
    while time.monotonic() < deadline:
        op = rng.choices(["invoke", "failing", "transfer", "escrow", "sweep", "kill"], [5, 2, 3, 1, 1, 1])[0]
        with tally.lock:
            tally.ops[op] += 1
        if op == "invoke":
            r = kernel(
                home, "invoke", ids["work"], "--as", me, "--input", json.dumps({"to": peer, "n": 1000}), "--json"
            )
            if r.returncode != 0 or json.loads(r.stdout)["output"] != sum(range(1000)):
                tally.fail("invoke", r)
        elif op == "failing":
            r = kernel(home, "invoke", ids["failing"], "--as", me, "--json")
            if r.returncode == 1 and r.stdout and json.loads(r.stdout)["status"] == "error":
                with tally.lock:
                    tally.artifact_failures += 1
            else:
                tally.fail("failing invoke", r)
        elif op == "transfer":
            r = kernel(home, "transfer", peer, str(rng.randint(1, 5)), "--as", me, "--json")
            if r.returncode != 0:
                tally.fail("transfer", r)
        elif op == "sweep":
            r = kernel(home, "sweep", "--json")
            if r.returncode != 0:
                tally.fail("sweep", r)
        elif op == "escrow":
            escrow(home, ids, me, tally)
        else:
            kill_mid_run(home, ids, me, peer, tally)


def escrow(home: Path, ids: dict[str, str], buyer: str, tally: Tally) -> None:
    r = kernel(home, "escrow", "open", "--as", buyer, "--amount", "3", "--tests", ids["tests"], "--json")
    if r.returncode != 0:
        return tally.fail("escrow open", r)
    escrow_id = json.loads(r.stdout)["id"]
    r = kernel(home, "escrow", "deliver", escrow_id, "--as", "owner", "--artifact", ids["deliverable"], "--json")
    if r.returncode != 0:
        return tally.fail("escrow deliver", r)
    r = kernel(home, "escrow", "judge", escrow_id, "--json")
    if r.returncode != 0 or json.loads(r.stdout)["state"] != "released":
        tally.fail("escrow judge", r)


def kill_mid_run(home: Path, ids: dict[str, str], me: str, peer: str, tally: Tally) -> None:
    """SIGKILL a kernel process in the middle of its run: the next kernel recovers it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    env.update(KERNEL_HOME=str(home), KERNEL_AUDIT_COMMON_CORPUS="[]", KERNEL_RUNTIME=os.environ["SOAK_RUNTIME"])
    proc = subprocess.Popen(
        [*KERNEL, "invoke", ids["work"], "--as", me, "--input", json.dumps({"to": peer, "n": 10})],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    time.sleep(random.Random(proc.pid).uniform(0.3, 2.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with tally.lock:
        tally.killed += 1


def test_soak_many_kernels_one_home(
    tmp_path: Path, make_pkg: PackageFactory, runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    soak_runtime = runtime
    monkeypatch.setenv("SOAK_RUNTIME", runtime)
    home = tmp_path / "home"
    ids = setup_home(home, make_pkg)
    supply = json.loads(kernel(home, "ledger", "check", "--json").stdout)["supply"]
    tally = Tally()
    deadline = time.monotonic() + SOAK_SECONDS
    threads = [threading.Thread(target=worker, args=(i, home, ids, deadline, tally)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SOAK_SECONDS + 600)
    assert not any(t.is_alive() for t in threads), "a worker hung"

    assert tally.failures == [], f"{len(tally.failures)} failures that are not the artifact's own"
    assert tally.ops["invoke"] > 0 and tally.ops["escrow"] + tally.ops["transfer"] > 0, tally.ops

    # the last kernel standing cleans up after the killed ones
    swept = kernel(home, "sweep", "--json")
    assert swept.returncode == 0, swept.stderr
    check = json.loads(kernel(home, "ledger", "check", "--json").stdout)
    assert check["ok"], check["problems"]
    assert check["supply"] == supply and check["holds_total"] == 0  # no scrip made, lost or stuck

    import sqlite3

    conn = sqlite3.connect(home / "kernel.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE state != 'done'").fetchone()[0] == 0
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
        killed = statuses.get("killed", 0)
        assert killed <= tally.killed, statuses  # only runs whose kernel this test killed
        escrows = dict(conn.execute("SELECT state, COUNT(*) FROM escrows GROUP BY state").fetchall())
        assert set(escrows) <= {"released"}, escrows
    finally:
        conn.close()
    assert list(home.glob("runs/*")) == []
    leftovers = [*home.glob("blobs/*/.incoming-*"), *home.glob("packages/.unpack-*")]
    assert leftovers == []
    from kernel.settings import Settings

    assert_no_containers(Settings(home=home).home_id)
    print(f"soak {soak_runtime}: {dict(tally.ops)}, artifact failures {tally.artifact_failures}, killed {tally.killed}")


def test_kernel_sweep_removes_what_a_killed_kernel_left(
    tmp_path: Path, make_pkg: PackageFactory, runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL during a first unpack and during a submit leaves temp files; `kernel sweep` removes them."""
    monkeypatch.setenv("SOAK_RUNTIME", runtime)
    home = tmp_path / "home"
    assert kernel(home, "principal", "create", "a").returncode == 0
    dead = "4194000:1:" + process.token().rsplit(":", 1)[1]  # a pid no process has, in our namespace
    half_blob = home / "blobs" / "ab" / f".incoming-{dead}-k1"
    half_tree = home / "packages" / f".unpack-{dead}-k2"
    half_blob.parent.mkdir(parents=True)
    half_blob.write_bytes(os.urandom(1 << 20))
    (half_tree / "pkg").mkdir(parents=True)
    (half_tree / "pkg" / "big.bin").write_bytes(os.urandom(1 << 20))
    (half_tree / "pkg").chmod(0o555)
    r = kernel(home, "sweep", "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(r.stdout)["temp_files"]) == [
        f"blobs/ab/.incoming-{dead}-k1",
        f"packages/.unpack-{dead}-k2",
    ]
    assert not half_blob.exists() and not half_tree.exists()
