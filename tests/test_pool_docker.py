"""The warm pool on the real engine: fresh containers, each handed out once, never reused."""

import concurrent.futures
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker import DockerClient

from kernel.api import Kernel
from kernel.runs import invoke_shape, owner_labels, sandbox_spec
from kernel.sandbox.base import Shape
from kernel.sandbox.docker import DockerSandbox, DockerSlot
from kernel.settings import Settings
from tests.conftest import PackageFactory, assert_no_containers

pytestmark = pytest.mark.docker


def pooled_sandbox(home: Path, runtime: str, image: str, size: int) -> tuple[DockerSandbox, Shape, Settings]:
    """A sandbox keeping ``size`` (at most ``2 x size``) warm containers of the default invocation's shape."""
    settings = Settings(home=home, runtime=runtime, audit_common_corpus=[])
    settings.run_dir.mkdir(parents=True)
    sandbox = DockerSandbox()
    shape = invoke_shape(settings, image, runtime, settings.default_limits)
    pool = sandbox.start_pool(minimum=size, maximum=2 * size, idle_seconds=600, fillers=size,
                              labels=owner_labels(settings))  # fmt: skip
    pool.warm(shape, settings.run_dir, owner_labels(settings))
    return sandbox, shape, settings


@pytest.fixture
def pooled(tmp_path: Path, runtime: str, docker_image: str) -> Iterator[tuple[DockerSandbox, Shape, Settings]]:
    sandbox, shape, settings = pooled_sandbox(tmp_path / "home", runtime, docker_image, 2)
    yield sandbox, shape, settings
    sandbox.close()
    assert not list(settings.run_dir.glob("*")), "a pool's folder outlived the pool"
    assert_no_containers(settings.home_id)


def wait_ready(sandbox: DockerSandbox, shape: Shape, n: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sandbox.pool.sizes().get(shape.label, {}).get("ready", 0) >= n:
            return
        time.sleep(0.05)
    pytest.fail(f"the pool did not reach {n} ready containers: {sandbox.pool.sizes()} {list(sandbox.pool.errors)}")


def echo(sandbox: DockerSandbox, slot: DockerSlot, settings: Settings, command: list[str]) -> str:
    spec = sandbox_spec(settings, run_id="t", slot=slot, command=command, limits=settings.default_limits)
    outcome = sandbox.run(spec, slot)
    assert outcome.exit_code == 0, outcome
    return outcome.stdout.decode()


def test_a_container_is_handed_out_once_under_concurrency(pooled: tuple[DockerSandbox, Shape, Settings]) -> None:
    sandbox, shape, settings = pooled
    wait_ready(sandbox, shape, 2)
    labels = owner_labels(settings)

    def take_and_run(_: int) -> str:
        slot = sandbox.slot(shape, settings.run_dir, labels)
        assert isinstance(slot, DockerSlot)
        try:
            echo(sandbox, slot, settings, ["true"])
            with pytest.raises(Exception, match="not a fresh one"):
                echo(sandbox, slot, settings, ["true"])  # a used slot is never run again
            return slot.container_id
        finally:
            slot.close()

    with concurrent.futures.ThreadPoolExecutor(8) as workers:
        ids = list(workers.map(take_and_run, range(24)))
    assert len(set(ids)) == len(ids) == 24
    assert sandbox.pool.stats["handed_out"] >= 1


def test_the_pool_refills_with_new_containers(pooled: tuple[DockerSandbox, Shape, Settings]) -> None:
    sandbox, shape, settings = pooled
    wait_ready(sandbox, shape, 2)
    taken = [sandbox.slot(shape, settings.run_dir, owner_labels(settings)) for _ in range(2)]
    assert all(isinstance(s, DockerSlot) and s.pooled for s in taken)
    wait_ready(sandbox, shape, 2)
    fresh = [sandbox.slot(shape, settings.run_dir, owner_labels(settings)) for _ in range(2)]
    try:
        old = {s.container_id for s in taken}  # type: ignore[attr-defined]
        assert not old & {s.container_id for s in fresh}  # type: ignore[attr-defined]
    finally:
        for slot in taken + fresh:
            slot.close()


@pytest.mark.parametrize("tamper", ["exec", "kill", "pause", "file"])
def test_a_touched_container_is_discarded_not_used(
    pooled: tuple[DockerSandbox, Shape, Settings], docker_client: DockerClient, tamper: str
) -> None:
    sandbox, shape, settings = pooled
    wait_ready(sandbox, shape, 2)
    with sandbox.pool.lock:
        victims = list(sandbox.pool.shapes[shape].ready)
    for victim in victims:
        if tamper == "exec":
            docker_client.api.exec_start(
                docker_client.api.exec_create(victim.container_id, ["sh", "-c", "echo x > /tmp/left"])
            )
        elif tamper == "kill":
            docker_client.api.kill(victim.container_id)
        elif tamper == "pause":
            docker_client.api.pause(victim.container_id)
        else:
            (victim.root / "work" / "left.txt").write_text("planted before the run")
    time.sleep(1.0)  # the engine's events reach the pool
    slot = sandbox.slot(shape, settings.run_dir, owner_labels(settings))
    try:
        assert slot.container_id not in {v.container_id for v in victims}  # type: ignore[attr-defined]
        look = "import os; print(os.listdir('/tmp'), os.listdir('/work'))"  # (gVisor's statx upsets `ls`)
        listing = echo(sandbox, slot, settings, ["python3", "-c", look])  # type: ignore[arg-type]
        assert "left" not in listing
    finally:
        slot.close()
    assert sandbox.pool.stats["discarded"] >= len(victims)


ARTIFACT = """
import os, subprocess

def main(value):
    seen = {"tmp": sorted(os.listdir("/tmp")), "work": sorted(os.listdir("/work")),
            "procs": sorted(p for p in os.listdir("/proc") if p.isdigit())}
    if value == "plant":
        open("/tmp/secret", "w").write("one run's secret")
        open("/work/secret", "w").write("one run's secret")
        subprocess.Popen(["sleep", "1000"], start_new_session=True)
    return seen
"""


@pytest.fixture
def pooled_kernel(tmp_path: Path, runtime: str, docker_image: str) -> Iterator[Kernel]:
    """A kernel with its pool warm (two containers of the default shape ready)."""
    settings = Settings(home=tmp_path / "home", runtime=runtime, pool=True, audit_common_corpus=[])
    k = Kernel(settings)
    k.create_principal("alice", grant=10)
    k.warm_pool()
    assert isinstance(k.sandbox, DockerSandbox)
    wait_ready(k.sandbox, invoke_shape(settings, k.image(), runtime, settings.default_limits), 2)
    yield k
    k.close()
    assert not list(settings.run_dir.glob("*"))
    assert_no_containers(settings.home_id)


def test_a_pooled_run_sees_no_trace_of_another(pooled_kernel: Kernel, make_pkg: PackageFactory) -> None:
    k = pooled_kernel
    art = k.submit(make_pkg(ARTIFACT), owner="alice").artifact
    first = k.invoke(art.id, "alice", "plant")
    second = k.invoke(art.id, "alice", "look")
    assert first.status.value == second.status.value == "ok", (first.reason, second.reason)
    assert second.output["tmp"] == [] and second.output["work"] == []
    assert len(second.output["procs"]) <= 3  # the zygote, the run itself (and gVisor's init)
    assert first.state == second.state == "done"
    assert k.pool_status()["stats"].get("handed_out", 0) >= 2


def test_the_wait_in_the_pool_is_not_billed(pooled_kernel: Kernel, make_pkg: PackageFactory) -> None:
    k = pooled_kernel
    art = k.submit(make_pkg("def main(v):\n    return v\n"), owner="alice").artifact
    time.sleep(2)  # the container waits (and started Python) before the run: none of it is the run's
    run = k.invoke(art.id, "alice", 7)
    assert run.status.value == "ok" and run.output == 7
    assert run.usage.wall_seconds < 2 and run.usage.cpu_seconds < 0.5, run.usage
    assert k.pool_status()["stats"].get("handed_out", 0) >= 1


def test_arrivals_beyond_the_pool_run_on_demand(tmp_path: Path, runtime: str, docker_image: str) -> None:
    sandbox, shape, settings = pooled_sandbox(tmp_path / "home", runtime, docker_image, 1)
    pool = sandbox.pool
    results: list[str] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        slot = sandbox.slot(shape, settings.run_dir, owner_labels(settings))
        try:
            out = echo(sandbox, slot, settings, ["sh", "-c", "echo ok"])  # type: ignore[arg-type]
            with lock:
                results.append(out.strip())
        finally:
            slot.close()

    try:
        with concurrent.futures.ThreadPoolExecutor(6) as workers:
            list(workers.map(one, range(12)))
        assert results == ["ok"] * 12
        assert pool.stats["on_demand"] >= 1
    finally:
        sandbox.close()
    assert_no_containers(settings.home_id)


def test_a_daemon_killed_with_a_full_pool_leaves_nothing_after_the_next_start(
    tmp_path: Path, runtime: str, docker_image: str, docker_client: DockerClient
) -> None:
    from kernel.service.spawn import Daemon

    home = tmp_path / "home"
    env = {"KERNEL_RUNTIME": runtime, "KERNEL_POOL_MIN": "3"}
    with Daemon(home, env) as first:
        first.wait_pool(3)
        pid_file = json.loads((home / "daemon.json").read_text())
        first.kill()  # SIGKILL: no clean-up at all
    settings = Settings(home=home)
    left = docker_client.api.containers(all=True, filters={"label": [f"io.artifact-kernel.home={settings.home_id}"]})
    assert len(left) >= 3, "the killed daemon's pool should still be there before the next start"
    assert pid_file["pid"] > 0
    with Daemon(home, env) as second:
        second.wait_pool(1)
        alive = {c["Id"] for c in docker_client.api.containers(all=True, filters={"label": [
            f"io.artifact-kernel.home={settings.home_id}"]})}  # fmt: skip
        assert not alive & {c["Id"] for c in left}
        swept = json.loads((home / "daemon.json").read_text())["swept"]
        assert swept["containers"] >= 3 and swept["run_dirs"] >= 3  # the dead daemon's pool, at the start
        owners = {(p / ".owner").read_text() for p in settings.run_dir.iterdir() if (p / ".owner").exists()}
        assert owners <= {second.info["process"]}  # every folder left is the new daemon's
    assert_no_containers(settings.home_id)
