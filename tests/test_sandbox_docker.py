"""Real Docker: round trips and hostile artifacts under runc and gVisor.

Every test here ends with the fixture's checks: ledger balanced, no run directory and no
container of this project left behind.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernel.api import Kernel
from kernel.models import RunStatus
from tests.conftest import PackageFactory, assert_no_containers

pytestmark = pytest.mark.docker

# Small limits keep hostile runs short; a normal artifact never comes near them.
HOSTILE_LIMITS = {"wall_seconds": 4, "cpu_seconds": 2, "memory_mb": 128}

HOSTILE = {
    "fork_bomb": (
        "import os\ndef main(v):\n    while True:\n        os.fork()\n",
        {RunStatus.KILLED, RunStatus.MEMORY_LIMIT},
    ),
    "memory_bomb": (
        "def main(v):\n    x = []\n    while True:\n        x.append(bytearray(10**7))\n",
        {RunStatus.MEMORY_LIMIT},
    ),
    "cpu_loop": ("def main(v):\n    while True:\n        pass\n", {RunStatus.TIMEOUT}),
    "sleep_past_wall": ("import time\ndef main(v):\n    time.sleep(600)\n", {RunStatus.TIMEOUT}),
    "output_flood_no_newlines": (
        "import sys\ndef main(v):\n    while True:\n        sys.stdout.write('x' * 65536)\n",
        {RunStatus.OUTPUT_LIMIT},
    ),
    "ignores_sigterm": (
        "import signal, time\ndef main(v):\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    time.sleep(600)\n",
        {RunStatus.TIMEOUT},
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_artifact_ends_in_its_status(docker_kernel: Kernel, make_pkg: PackageFactory, name: str) -> None:
    code, statuses = HOSTILE[name]
    art = docker_kernel.submit(make_pkg(code, price=5, limits=HOSTILE_LIMITS), "alice").artifact
    started = time.monotonic()
    r = docker_kernel.invoke(art.id, "bob", None)
    assert r.status in statuses, (r.status, r.reason, r.stderr[-300:])
    assert r.reason
    assert time.monotonic() - started < HOSTILE_LIMITS["wall_seconds"] + 15
    assert docker_kernel.balance("bob") == 100, "a failed run must refund its price"


def test_round_trip(docker_kernel: Kernel, make_pkg: PackageFactory) -> None:
    code = """
        import hashlib
        def main(v):
            total = sum(i * i for i in range(200_000))
            return {"echo": v, "total": total, "sha": hashlib.sha256(b"x").hexdigest()[:8]}
    """
    art = docker_kernel.submit(make_pkg(code, price=7), "alice").artifact
    r = docker_kernel.invoke(art.id, "bob", {"n": [1, 2, 3]})
    assert r.status is RunStatus.OK, (r.reason, r.stderr)
    assert r.output == {"echo": {"n": [1, 2, 3]}, "total": sum(i * i for i in range(200_000)), "sha": "2d711642"}
    assert r.runtime == docker_kernel.settings.runtime and r.image
    u = r.usage
    assert u.cpu_seconds > 0 and u.peak_memory_bytes > 1 << 20 and u.wall_seconds > 0
    assert u.bytes_in > 0 and u.bytes_out > 0
    assert r.cost == 7
    assert docker_kernel.balance("alice") == 1007 and docker_kernel.balance("bob") == 93
    assert docker_kernel.run(r.id) == r


def test_same_input_same_output(docker_kernel: Kernel, make_pkg: PackageFactory) -> None:
    code = """
        import json, hashlib
        def main(v):
            return hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()
    """
    art = docker_kernel.submit(make_pkg(code), "alice").artifact
    outputs = {docker_kernel.invoke(art.id, "bob", {"a": 1, "b": [2]}).output for _ in range(2)}
    assert len(outputs) == 1


def test_isolation_probes(docker_kernel: Kernel, make_pkg: PackageFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """One artifact tries everything at once and reports what it could do."""
    monkeypatch.setenv("KERNEL_TEST_SECRET", "hunter2-host-secret")
    code = r"""
        import os, socket

        def attempt(fn):
            try:
                return "allowed: " + str(fn())[:200]
            except Exception as exc:
                return "refused: " + type(exc).__name__

        def write_root():
            with open("/etc/evil", "w") as fh:
                fh.write("x")

        def fill_tmp():
            with open("/tmp/fill", "wb") as fh:
                while True:
                    fh.write(b"x" * 2**20)

        def network():
            return socket.create_connection(("1.1.1.1", 80), timeout=2)

        def loopback_out():
            return socket.create_connection(("127.0.0.1", 2375), timeout=2)

        def docker_socket():
            s = socket.socket(socket.AF_UNIX)
            s.connect("/var/run/docker.sock")

        def write_package():
            with open("/kernel/pkg/art.py", "a") as fh:
                fh.write("# tampered")

        def main(v):
            with open("workspace.txt", "w") as fh:
                fh.write("x" * 1000)
            return {
                "uid": os.getuid(),
                # the zygote (PID 1) is not dumpable: its environment is not even readable
                "environ": attempt(lambda: open("/proc/1/environ", "rb").read().decode("latin1")),
                "self_environ": dict(os.environ),
                "write_root": attempt(write_root),
                "fill_tmp": attempt(fill_tmp),
                "network": attempt(network),
                "loopback": attempt(loopback_out),
                "docker_socket": attempt(docker_socket),
                "write_package": attempt(write_package),
                "read_own_package": open("/kernel/pkg/pyproject.toml").read()[:9],
                "interfaces": sorted(n for _, n in socket.if_nameindex()),
                "caps": [l for l in open("/proc/self/status") if l.startswith(("CapEff", "NoNewPrivs"))],
            }
    """
    art = docker_kernel.submit(make_pkg(code, limits={"wall_seconds": 20}), "alice").artifact
    r = docker_kernel.invoke(art.id, "bob", None)
    assert r.status is RunStatus.OK, (r.reason, r.stderr)
    out = r.output
    assert out["uid"] == docker_kernel.settings.sandbox_uid
    assert "hunter2" not in out["environ"] and "hunter2" not in json.dumps(out["self_environ"])
    assert "KERNEL_HOME" not in json.dumps(out["self_environ"])
    for probe in ("write_root", "fill_tmp", "network", "loopback", "docker_socket", "write_package"):
        assert out[probe].startswith("refused"), (probe, out[probe])
    assert out["read_own_package"] == "[project]"
    assert set(out["interfaces"]) <= {"lo"}
    if docker_kernel.settings.runtime == "runc":  # gVisor reports its own synthetic values here
        assert "CapEff:\t0000000000000000\n" in out["caps"] and "NoNewPrivs:\t1\n" in out["caps"]
    assert r.usage.workspace_bytes == 1000


def test_child_that_outlives_its_parent_is_killed(
    docker_kernel: Kernel, make_pkg: PackageFactory, tmp_path: Path
) -> None:
    code = """
        import os, time
        def main(v):
            if os.fork() == 0:
                os.setsid()
                time.sleep(1.5)
                open("/work/late.txt", "w").write("the orphan kept running")
                time.sleep(600)
                os._exit(0)
            return "parent returned"
    """
    art = docker_kernel.submit(make_pkg(code, limits={"wall_seconds": 20}), "alice").artifact
    r = docker_kernel.invoke(art.id, "bob", None)
    assert r.status is RunStatus.OK and r.output == "parent returned"
    pool = getattr(docker_kernel.sandbox, "pool", None)
    if pool is not None:
        pool.close()  # its waiting containers are not the run's
    assert_no_containers(docker_kernel.settings.home_id)  # the orphan died with its container


def test_artifact_error_is_reported_and_refunded(docker_kernel: Kernel, make_pkg: PackageFactory) -> None:
    code = "def main(v):\n    print('about to fail')\n    raise ValueError('no such word: ' + v['w'])\n"
    art = docker_kernel.submit(make_pkg(code, price=3), "alice").artifact
    r = docker_kernel.invoke(art.id, "bob", {"w": "zebra"})
    assert r.status is RunStatus.ERROR and r.reason == "raised ValueError: no such word: zebra"
    assert "about to fail" in r.stdout
    assert docker_kernel.balance("bob") == 100


def test_killed_kernel_leaves_nothing_behind(docker_kernel: Kernel, make_pkg: PackageFactory) -> None:
    """SIGKILL the kernel mid-run: the next kernel refunds the hold and removes the container."""
    art = docker_kernel.submit(
        make_pkg("import time\ndef main(v):\n    time.sleep(600)\n", price=9, limits={"wall_seconds": 300}), "alice"
    ).artifact
    env = {
        **os.environ,
        "KERNEL_HOME": str(docker_kernel.settings.home),
        "KERNEL_RUNTIME": docker_kernel.settings.runtime,
    }
    proc = subprocess.Popen([sys.executable, "-m", "kernel.cli", "invoke", art.id, "--as", "bob"], env=env)
    deadline = time.monotonic() + 60
    while not docker_kernel.db.rows("SELECT id FROM runs WHERE state = 'running'"):
        assert time.monotonic() < deadline and proc.poll() is None, "the run never started"
        time.sleep(0.1)
    time.sleep(1.5)  # let it reach the container
    proc.kill()
    proc.wait()
    assert docker_kernel.balance("bob") == 91, "the price is held while the run is in flight"
    swept = Kernel(docker_kernel.settings).sweep()
    assert len(swept["runs"]) == 1 and len(swept["containers"]) == 1 and len(swept["run_dirs"]) == 1
    r = docker_kernel.run(swept["runs"][0])
    assert r.status is RunStatus.KILLED and docker_kernel.balance("bob") == 100
