"""The Docker backend: every docker SDK call of the kernel lives here.

A run is one container created for it alone: it idles (``sleep infinity``) while the
kernel execs the runner into it, so that the container's cgroup can still be read when
the runner has finished; then it is removed. Output is read from the exec's raw socket
with the kernel's own deadline: the stream is never trusted to end (under gVisor a
sandbox that dies leaves the exec stream open).
"""

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import docker.types
import requests
from docker.models.containers import Container

from kernel.errors import EngineUnavailable, SandboxError
from kernel.sandbox.base import OWNER_LABEL, PROJECT_LABEL, RUN_LABEL, Sandbox, SandboxOutcome, SandboxSpec, Stop
from kernel.sandbox.cgroup import Cgroup, CgroupSample

POLL_SECONDS = 0.25
PROJECT = "artifact-kernel"


def connect(timeout: int = 30) -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(
            "no Docker engine answers: run `make setup` (Debian, as root) or start Docker, then try again."
        ) from exc
    return client


class OutputReader:
    """Demultiplexes Docker's framed exec stream, keeping a bounded prefix of each stream."""

    def __init__(self, keep: int, cap: int):
        self.keep, self.cap = keep, cap
        self.buf = b""
        self.kept = {1: bytearray(), 2: bytearray()}
        self.totals = {1: 0, 2: 0}

    def feed(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 8:
            kind, length = struct.unpack(">BxxxL", self.buf[:8])
            if len(self.buf) < 8 + length:
                break
            payload, self.buf = self.buf[8 : 8 + length], self.buf[8 + length :]
            stream = 2 if kind == 2 else 1
            self.totals[stream] += len(payload)
            room = self.keep - len(self.kept[stream])
            if room > 0:
                self.kept[stream] += payload[:room]

    @property
    def exceeded(self) -> bool:
        return self.totals[1] + self.totals[2] > self.cap


class DockerSandbox(Sandbox):
    def __init__(self, client: docker.DockerClient | None = None):
        self.client = client or connect()
        self._runtimes: list[str] | None = None

    def close(self) -> None:
        self.client.close()

    # -- runtimes -------------------------------------------------------------------
    def runtimes(self) -> list[str]:
        if self._runtimes is None:
            self._runtimes = sorted(self.client.info().get("Runtimes", {}))
        return self._runtimes

    def runtime(self, requested: str) -> str:
        have = self.runtimes()
        if requested == "auto":
            return "runsc" if "runsc" in have else "runc"
        if requested not in have:
            raise SandboxError(
                f"the Docker engine has no '{requested}' runtime (it has {', '.join(have)});"
                " install it or set KERNEL_RUNTIME=auto."
            )
        return requested

    # -- one run --------------------------------------------------------------------
    def run(self, spec: SandboxSpec, stop: Stop | None = None) -> SandboxOutcome:
        container = self._create(spec)
        try:
            container.start()
            container.reload()
            cgroup = Cgroup(int(container.attrs["State"]["Pid"]))
            return self._exec(container, cgroup, spec, stop)
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise SandboxError(
                f"the Docker engine failed during run {spec.run_id}: {exc}",
                run_id=spec.run_id,
                image=spec.image,
            ) from exc
        finally:
            self._remove(container)

    def _create(self, spec: SandboxSpec) -> Container:
        mem = f"{spec.limits.memory_mb}m"
        try:
            return self.client.containers.create(
                spec.image,
                ["sleep", "infinity"],
                runtime=spec.runtime,
                user=f"{spec.uid}:{spec.uid}",
                network_mode="none",
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                pids_limit=spec.pids_limit,
                mem_limit=mem,
                memswap_limit=mem,  # equal: no swap
                nano_cpus=int(spec.cpus * 1e9),
                ulimits=[
                    docker.types.Ulimit(name="cpu", soft=spec.limits.cpu_seconds, hard=spec.limits.cpu_seconds + 1),
                    docker.types.Ulimit(name="core", soft=0, hard=0),
                    docker.types.Ulimit(name="nofile", soft=1024, hard=1024),
                ],
                tmpfs={"/tmp": f"size={spec.tmp_mb}m,mode=1777,nosuid,nodev"},
                mounts=[
                    docker.types.Mount(m.target, str(m.source), type="bind", read_only=m.read_only) for m in spec.mounts
                ],
                environment=spec.env,
                working_dir=spec.workdir,
                hostname="sandbox",
                log_config=docker.types.LogConfig(type="none"),
                labels={PROJECT_LABEL: PROJECT, RUN_LABEL: spec.run_id, **spec.labels},
                detach=True,
            )
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"the sandbox image {spec.image} is missing: run `kernel image build`.",
                run_id=spec.run_id,
                image=spec.image,
            ) from exc
        except docker.errors.DockerException as exc:
            raise SandboxError(
                f"could not create the container for run {spec.run_id}: {exc}",
                run_id=spec.run_id,
                image=spec.image,
            ) from exc

    def _exec(self, container: Container, cgroup: Cgroup, spec: SandboxSpec, stop: Stop | None) -> SandboxOutcome:
        api = self.client.api
        exec_id = api.exec_create(
            container.id, spec.command, user=f"{spec.uid}:{spec.uid}", workdir=spec.workdir, environment=spec.env
        )["Id"]
        started = time.monotonic()
        sock = api.exec_start(exec_id, socket=True)
        raw: socket.socket = sock._sock  # the SDK's SocketIO wraps the real socket
        reader = OutputReader(spec.kept_output_bytes, spec.output_bytes)
        outcome = SandboxOutcome()
        try:
            deadline = started + spec.limits.wall_seconds
            sample = self._watch(container, cgroup, raw, reader, outcome, deadline, spec.limits.cpu_seconds, stop)
            outcome.wall_seconds = time.monotonic() - started
            if cgroup.found:
                sample = _later(sample, cgroup.sample())
            if outcome.stopped_by_kernel:
                self._kill_draining(container, raw)
        finally:
            sock.close()
            raw.close()
        if not (outcome.stopped_by_kernel or outcome.died):
            outcome.exit_code = api.exec_inspect(exec_id).get("ExitCode")
        outcome.stdout, outcome.stderr = bytes(reader.kept[1]), bytes(reader.kept[2])
        outcome.stdout_total, outcome.stderr_total = reader.totals[1], reader.totals[2]
        outcome.cpu_seconds = sample.cpu_seconds
        outcome.peak_memory_bytes = sample.peak_memory_bytes
        outcome.io_read_bytes, outcome.io_write_bytes = sample.io_read_bytes, sample.io_write_bytes
        outcome.oom_killed = outcome.oom_killed or sample.oom_kills > 0
        outcome.pids_exhausted = outcome.pids_exhausted or sample.pids_max_events > 0
        return outcome

    def _watch(
        self,
        container: Container,
        cgroup: Cgroup,
        raw: socket.socket,
        reader: OutputReader,
        outcome: SandboxOutcome,
        deadline: float,
        cpu_limit: float,
        stop: Stop | None = None,
    ) -> CgroupSample:
        """Read output until the runner ends, a limit is hit, the container dies, or ``stop`` is set."""
        sample = CgroupSample()
        waits: list[Any] = [raw] if stop is None else [raw, stop]
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcome.timed_out = True
                return sample
            ready, _, _ = select.select(waits, [], [], min(POLL_SECONDS, remaining))
            if stop is not None and stop.is_set():
                outcome.stopped = True
                return sample
            if ready:
                data = raw.recv(65536)
                if not data:
                    return sample
                reader.feed(data)
                if reader.exceeded:
                    outcome.output_exceeded = True
                    return sample
                continue
            if cgroup.found:
                sample = _later(sample, cgroup.sample())
                if sample.pids_max_events > 0:  # a fork bomb: no normal artifact gets here
                    outcome.pids_exhausted = True
                    return sample
                if sample.cpu_seconds > cpu_limit:  # all processes together, any runtime
                    outcome.cpu_exceeded = True
                    return sample
            state = self._state(container)
            if not state.get("Running"):
                outcome.died = True
                outcome.oom_killed = bool(state.get("OOMKilled"))
                return sample

    def _kill_draining(self, container: Container, raw: socket.socket) -> None:
        """Kill the container while still reading its output.

        A writer blocked on a full pipe holds the engine's kill for seconds (runc), so
        the pipe is drained until the kill returns; under gVisor the stream may never
        end, so draining stops a moment after the kill.
        """
        killed = threading.Event()

        def drain() -> None:
            raw.settimeout(0.2)
            while True:
                try:
                    if not raw.recv(1 << 20):
                        return
                except OSError:  # socket.timeout included
                    if killed.is_set():
                        return

        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        with contextlib.suppress(docker.errors.APIError):  # already stopped; removal follows
            self.client.api.kill(container.id)
        killed.set()
        thread.join(timeout=5)

    def _state(self, container: Container) -> dict[str, Any]:
        try:
            return dict(self.client.api.inspect_container(container.id)["State"])
        except docker.errors.NotFound:
            return {"Running": False}

    def _remove(self, container: Container) -> None:
        """Kill and remove, retrying: no container may outlive its run."""
        self._remove_id(container.id)

    # -- hygiene --------------------------------------------------------------------
    def sweep(self, owner_alive: Callable[[str], bool], labels: dict[str, str]) -> list[str]:
        """Remove this home's containers whose owner process is gone.

        Safe beside any number of kernels sweeping the same home: the listing carries the
        labels (no per-container inspect that a removal in between could fail), and a
        container already gone, or already being removed, is already swept."""
        removed = []
        wanted = [f"{PROJECT_LABEL}={PROJECT}", *(f"{k}={v}" for k, v in labels.items())]
        for c in self.client.api.containers(all=True, filters={"label": wanted}):
            found = c.get("Labels") or {}
            owner = found.get(OWNER_LABEL, "")
            if owner and owner_alive(owner):
                continue
            if self._remove_id(c["Id"]):
                removed.append(found.get(RUN_LABEL, c["Id"][:12]))
        return removed

    def _remove_id(self, container_id: str) -> bool:
        """Force-remove one container; False if another process removed it first."""
        for attempt in range(5):
            try:
                self.client.api.remove_container(container_id, force=True)
                return True
            except docker.errors.NotFound:
                return False
            except docker.errors.APIError as exc:
                if exc.status_code == 409 and "already in progress" in str(exc):
                    return False
                time.sleep(0.2 * (attempt + 1))
        raise SandboxError(f"could not remove container {container_id[:12]}; run `kernel sweep` again.")

    # -- for `kernel doctor` ------------------------------------------------------------
    def engine_info(self) -> dict[str, Any]:
        info = self.client.info()
        version = self.client.version()
        return {
            "version": version.get("Version"),
            "api_version": version.get("ApiVersion"),
            "runtimes": sorted(info.get("Runtimes", {})),
            "default_runtime": info.get("DefaultRuntime"),
            "cgroup_version": info.get("CgroupVersion"),
            "cgroup_driver": info.get("CgroupDriver"),
        }


def _later(a: CgroupSample, b: CgroupSample) -> CgroupSample:
    """Cumulative counters only grow: keep the larger of two samples of each."""
    return CgroupSample(**{k: max(getattr(a, k), getattr(b, k)) for k in a.__dataclass_fields__})
