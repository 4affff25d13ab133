"""The Docker backend: every docker SDK call of the kernel lives here.

A run gets one container made for it alone (ahead of time in a warm pool, or on
demand). The container's first process is the zygote (``kernel_zygote.py``): it
connects to a control socket in the run's folder, says it is ready, and waits. The run
hands it its one job over that socket; the zygote runs the job in a child and forwards
its output and exit code, then waits to be killed, so that the container's cgroup can
still be read when the job has finished. Nothing on that socket is trusted, and it is
read with the kernel's own deadline: the stream is never trusted to end.
"""

import contextlib
import json
import os
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests

from kernel.errors import EngineUnavailable, SandboxError
from kernel.sandbox.base import (
    CONTROL_SOCKET,
    OWNER_LABEL,
    PROJECT_LABEL,
    RUN_LABEL,
    Sandbox,
    SandboxOutcome,
    SandboxSpec,
    Shape,
    Slot,
    Stop,
)
from kernel.sandbox.cgroup import Cgroup, CgroupSample
from kernel.sandbox.scratch import RunDir
from kernel.sockets import bind_unix

POLL_SECONDS = 0.25
PROJECT = "artifact-kernel"
SHAPE_LABEL = "io.artifact-kernel.shape"
ZYGOTE = ["python3", "-I", "/opt/kernel/kernel_zygote.py"]
CONTROL_KIND = 9
MAX_CONTROL = 4096


def connect(timeout: int = 30) -> docker.DockerClient:
    try:
        # many runs at once each hold a connection (and a pool's fillers and its event stream)
        client = docker.from_env(timeout=timeout, max_pool_size=64)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(
            "no Docker engine answers: run `make setup` (Debian, as root) or start Docker, then try again."
        ) from exc
    return client


class OutputReader:
    """Demultiplexes the sandbox's framed stream, keeping a bounded prefix of each output.

    Frames are Docker's: kind (1 stdout, 2 stderr, 9 control), three zero bytes, a length.
    The sandbox wrote them, so nothing is trusted: every byte received counts toward the
    output cap as it arrives (control frames too), a control frame longer than
    ``MAX_CONTROL``, or that is not exactly ``{"ready": pid}`` or ``{"exit": code}``, is a
    violation, and nothing after the exit code is read."""

    def __init__(self, keep: int, cap: int):
        self.keep, self.cap = keep, cap
        self.buf = bytearray()
        self.kept = {1: bytearray(), 2: bytearray()}
        self.totals = {1: 0, 2: 0}
        self.received = 0
        self.ready: int | None = None
        self.exit: int | None = None
        self.violation: str | None = None

    def feed(self, data: bytes) -> None:
        if self.exit is not None or self.violation is not None:
            return  # the job is over (or broke the protocol): nothing more is the run's
        self.received += len(data)
        self.buf += data
        pos = 0
        while len(self.buf) - pos >= 8 and self.exit is None and self.violation is None:
            kind, length = struct.unpack_from(">BxxxL", self.buf, pos)
            if kind == CONTROL_KIND and length > MAX_CONTROL:
                self.violation = f"a control frame of {length} bytes"
                break
            if len(self.buf) - pos < 8 + length:
                break
            payload = bytes(self.buf[pos + 8 : pos + 8 + length])
            pos += 8 + length
            if kind == CONTROL_KIND:
                self._control(payload)
                continue
            stream = 2 if kind == 2 else 1
            self.totals[stream] += len(payload)
            room = self.keep - len(self.kept[stream])
            if room > 0:
                self.kept[stream] += payload[:room]
        del self.buf[:pos]

    def _control(self, payload: bytes) -> None:
        try:
            message = json.loads(payload)
        except (ValueError, RecursionError):
            message = None
        if isinstance(message, dict) and len(message) == 1:
            ((key, value),) = message.items()
            if _small_int(value) and key == "ready" and self.ready is None:
                self.ready = value
                return
            if _small_int(value) and key == "exit":
                self.exit = value
                return
        self.violation = "a control frame that is not the zygote's"

    def exit_code(self) -> int | None:
        return self.exit

    @property
    def exceeded(self) -> bool:
        return self.received > self.cap


def _small_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31


class DockerSlot(Slot):
    """A started container whose first process (the zygote) waits on ``ctl`` for one job."""

    def __init__(self, sandbox: "DockerSandbox", shape: Shape, rundir: RunDir, container_id: str):
        super().__init__(shape, rundir)
        self.sandbox, self.container_id = sandbox, container_id
        self.ctl: socket.socket | None = None
        self.pid = 0
        self.cgroup: Cgroup | None = None
        self.released = False
        self.pooled = False
        self.tainted = False  # touched by someone else while it waited in the pool

    def release(self) -> None:
        """End the container (it must not run or write after its run); idempotent. Closing the
        control socket ends the zygote, the container's first process, and with it every process
        of the container; the forced removal returns once the container is gone."""
        if self.released:
            return
        self.released = True
        self.hang_up()
        self.sandbox.remove_id(self.container_id)

    def hang_up(self) -> None:
        """Close the control socket: the zygote, the container's first process, ends on it, and every
        process of the container with it (a pid namespace ends with its first process)."""
        if self.ctl is not None:
            with contextlib.suppress(OSError):
                self.ctl.shutdown(socket.SHUT_RDWR)
            self.ctl.close()

    def close(self) -> None:
        try:
            self.release()
        finally:
            self.rundir.close()


class DockerSandbox(Sandbox):
    def __init__(self, client: docker.DockerClient | None = None):
        self.client = client or connect()
        self._runtimes: list[str] | None = None
        self.pool: Any = None  # a kernel.sandbox.pool.Pool when warm containers are kept

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
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

    def start_pool(self, *, minimum: int, maximum: int, idle_seconds: float, fillers: int,
                   labels: dict[str, str], total: int | None = None) -> Any:  # fmt: skip
        """Keep warm slots from now on (``labels`` select this home's containers for the pool's event watch)."""
        from kernel.sandbox.pool import Pool

        wanted = [f"{PROJECT_LABEL}={PROJECT}", *(f"{k}={v}" for k, v in labels.items())]
        self.pool = Pool(
            self.make_slot,
            self.fresh,
            minimum=minimum,
            maximum=maximum,
            idle_seconds=idle_seconds,
            fillers=fillers,
            total=total,
            events=lambda: self.client.events(decode=True, filters={"type": "container", "label": wanted}),
        )
        return self.pool

    # -- slots ------------------------------------------------------------------------
    def slot(self, shape: Shape, root: Path, labels: dict[str, str]) -> Slot:
        """A warm slot from the pool when one is ready, else one made now (never a failure for lack of one)."""
        if self.pool is not None:
            taken = self.pool.take(shape, root, labels)
            if taken is not None:
                return taken  # type: ignore[no-any-return]
        return self.make_slot(shape, root, labels)

    def make_slot(self, shape: Shape, root: Path, labels: dict[str, str], ready_seconds: float = 60) -> DockerSlot:
        """Create and start a container of ``shape`` and wait until its zygote is ready for a job."""
        name = f"s-{secrets.token_hex(8)}"
        rundir = RunDir(root, name, shape.dirs, shape.uid, labels[OWNER_LABEL])
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        slot: DockerSlot | None = None
        try:
            bind_unix(listener, rundir.sock / CONTROL_SOCKET)
            listener.listen(1)
            slot = DockerSlot(self, shape, rundir, self._create(shape, rundir, name, labels))
            self.client.api.start(slot.container_id)
            slot.ctl = self._await_zygote(listener, slot, ready_seconds)
            slot.pid = int(self.client.api.inspect_container(slot.container_id)["State"]["Pid"])
            slot.cgroup = Cgroup(slot.pid)
            return slot
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            self._discard(slot, rundir)
            raise SandboxError(f"the Docker engine could not make a sandbox: {exc}", image=shape.image) from exc
        except BaseException:
            self._discard(slot, rundir)
            raise
        finally:
            listener.close()
            (rundir.sock / CONTROL_SOCKET).unlink(missing_ok=True)  # nobody else can connect to it

    def _discard(self, slot: DockerSlot | None, rundir: RunDir) -> None:
        try:
            if slot is not None:
                slot.close()
        finally:
            rundir.close()

    def _await_zygote(self, listener: socket.socket, slot: DockerSlot, seconds: float) -> socket.socket:
        """The zygote's connection, once it has said it is ready."""
        deadline = time.monotonic() + seconds
        listener.settimeout(0.5)
        while True:
            try:
                conn, _ = listener.accept()
                break
            except TimeoutError:
                if time.monotonic() > deadline or not self._state(slot.container_id).get("Running"):
                    raise SandboxError(
                        "a new sandbox did not become ready; check `kernel doctor` and the image.",
                        image=slot.shape.image,
                    ) from None
        reader = OutputReader(0, MAX_CONTROL)
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        while reader.ready is None:
            data = conn.recv(MAX_CONTROL)
            reader.feed(data)
            if not data or reader.violation or reader.exceeded or reader.totals[1] or reader.totals[2]:
                conn.close()
                raise SandboxError("a new sandbox failed before it was ready.", image=slot.shape.image)
        conn.settimeout(None)
        return conn

    def fresh(self, slot: DockerSlot) -> bool:
        """Whether a pooled slot is still exactly as made: running, its zygote waiting, nothing written.
        Any doubt (the engine failing to answer included) is a no."""
        try:
            return self._fresh(slot)
        except Exception:  # noqa: BLE001 - a slot that cannot be checked is discarded, never used
            return False

    def _fresh(self, slot: DockerSlot) -> bool:
        if slot.ctl is None or slot.released:
            return False
        try:
            slot.ctl.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            return False  # the zygote hung up, or spoke out of turn
        except BlockingIOError:
            pass  # silent and connected: waiting for its job
        except OSError:
            return False
        if self.pool is None or self.pool.events_stream is None:  # no engine events to tell: ask the engine
            state = self._state(slot.container_id)
            if not state.get("Running") or state.get("Paused") or state.get("Pid") != slot.pid:
                return False
        for d in slot.shape.dirs:
            with contextlib.suppress(OSError), os.scandir(slot.root / d.name) as entries:
                if any(True for _ in entries):
                    return False
        return True

    # -- one run --------------------------------------------------------------------
    def run(self, spec: SandboxSpec, slot: Slot, stop: Stop | None = None) -> SandboxOutcome:
        if not isinstance(slot, DockerSlot) or slot.ctl is None or slot.used or slot.shape != spec.shape:
            raise SandboxError(f"run {spec.run_id} was given a slot that is not a fresh one of its shape.")
        slot.used = True
        try:
            return self._run(spec, slot, stop)
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise SandboxError(
                f"the Docker engine failed during run {spec.run_id}: {exc}",
                run_id=spec.run_id,
                image=spec.shape.image,
            ) from exc

    def _run(self, spec: SandboxSpec, slot: DockerSlot, stop: Stop | None) -> SandboxOutcome:
        assert slot.ctl is not None and slot.cgroup is not None
        cgroup, ctl = slot.cgroup, slot.ctl
        baseline = cgroup.sample() if cgroup.found else CgroupSample()
        job = {"argv": spec.command, "env": spec.env, "cwd": spec.workdir, "inline": spec.inline}
        started = time.monotonic()
        ctl.sendall(json.dumps(job).encode() + b"\n")
        reader = OutputReader(spec.kept_output_bytes, spec.output_bytes)
        outcome = SandboxOutcome()
        deadline = started + spec.limits.wall_seconds
        sample = self._watch(slot, reader, outcome, deadline, spec.limits.cpu_seconds + baseline.cpu_seconds, stop)
        outcome.wall_seconds = time.monotonic() - started
        if cgroup.found:
            sample = _later(sample, cgroup.sample())
        if outcome.stopped_by_kernel or outcome.died:
            slot.release()
        else:
            outcome.exit_code = reader.exit_code()
        outcome.stdout, outcome.stderr = bytes(reader.kept[1]), bytes(reader.kept[2])
        outcome.stdout_total, outcome.stderr_total = reader.totals[1], reader.totals[2]
        outcome.cpu_seconds = max(0.0, sample.cpu_seconds - baseline.cpu_seconds)
        outcome.peak_memory_bytes = sample.peak_memory_bytes
        outcome.io_read_bytes = max(0, sample.io_read_bytes - baseline.io_read_bytes)
        outcome.io_write_bytes = max(0, sample.io_write_bytes - baseline.io_write_bytes)
        outcome.oom_killed = outcome.oom_killed or sample.oom_kills > baseline.oom_kills
        outcome.pids_exhausted = outcome.pids_exhausted or sample.pids_max_events > baseline.pids_max_events
        return outcome

    def _watch(
        self,
        slot: DockerSlot,
        reader: OutputReader,
        outcome: SandboxOutcome,
        deadline: float,
        cpu_limit: float,
        stop: Stop | None = None,
    ) -> CgroupSample:
        """Read the sandbox until its job ends, a limit is hit, the container dies, or ``stop`` is set."""
        assert slot.ctl is not None and slot.cgroup is not None
        sample = CgroupSample()
        waits: list[Any] = [slot.ctl] if stop is None else [slot.ctl, stop]
        next_check = time.monotonic() + POLL_SECONDS
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                outcome.timed_out = True
                return sample
            ready, _, _ = select.select(waits, [], [], max(0.0, min(next_check - now, remaining)))
            if stop is not None and stop.is_set():
                outcome.stopped = True
                return sample
            if ready:
                data = slot.ctl.recv(65536)
                if not data:  # the zygote is gone: the container died (or was killed)
                    return self._died(slot, outcome, sample)
                reader.feed(data)
                if reader.exceeded:
                    outcome.output_exceeded = True
                    return sample
                if reader.violation:
                    return self._died(slot, outcome, sample)
                if reader.exit_code() is not None:
                    return sample
            if time.monotonic() < next_check:
                continue
            # limits are checked on a clock of their own: a run that keeps printing is checked too
            next_check = time.monotonic() + POLL_SECONDS
            if slot.cgroup.found:
                sample = _later(sample, slot.cgroup.sample())
                if sample.pids_max_events > 0:  # a fork bomb: no normal artifact gets here
                    outcome.pids_exhausted = True
                    return sample
                if sample.cpu_seconds > cpu_limit:  # all processes together, any runtime
                    outcome.cpu_exceeded = True
                    return sample
            if not ready and not self._state(slot.container_id).get("Running"):
                return self._died(slot, outcome, sample)

    def _died(self, slot: DockerSlot, outcome: SandboxOutcome, sample: CgroupSample) -> CgroupSample:
        outcome.died = True
        state = self._state(slot.container_id)
        outcome.oom_killed = bool(state.get("OOMKilled"))
        return sample

    def _create(self, shape: Shape, rundir: RunDir, name: str, labels: dict[str, str]) -> str:
        mem = f"{shape.memory_mb}m"
        api = self.client.api
        try:
            host_config = api.create_host_config(
                runtime=shape.runtime,
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                pids_limit=shape.pids_limit,
                mem_limit=mem,
                memswap_limit=mem,  # equal: no swap
                nano_cpus=int(shape.cpus * 1e9),
                ulimits=[
                    docker.types.Ulimit(name="cpu", soft=shape.cpu_seconds, hard=shape.cpu_seconds + 1),
                    docker.types.Ulimit(name="core", soft=0, hard=0),
                    docker.types.Ulimit(name="nofile", soft=1024, hard=1024),
                ],
                tmpfs={"/tmp": f"size={shape.tmp_mb}m,mode=1777,nosuid,nodev"},
                mounts=[
                    docker.types.Mount(m.target, str(m.source), type="bind", read_only=m.read_only)
                    for m in shape.mounts(rundir.path)
                ],
                log_config=docker.types.LogConfig(type="none"),
            )
            return str(
                api.create_container(
                    shape.image,
                    ZYGOTE,
                    user=f"{shape.uid}:{shape.uid}",
                    environment={"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"},
                    working_dir="/work",
                    hostname="sandbox",
                    # no network at all: a network namespace of its own with only a loopback that is
                    # down (as with network_mode=none, without the engine setting up a network for it)
                    network_disabled=True,
                    labels={PROJECT_LABEL: PROJECT, RUN_LABEL: name, SHAPE_LABEL: shape.label, **labels},
                    host_config=host_config,
                )["Id"]
            )
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"the sandbox image {shape.image} is missing: run `kernel image build`.", image=shape.image
            ) from exc
        except docker.errors.DockerException as exc:
            raise SandboxError(f"could not create a sandbox container: {exc}", image=shape.image) from exc

    def _state(self, container_id: str) -> dict[str, Any]:
        try:
            return dict(self.client.api.inspect_container(container_id)["State"])
        except docker.errors.NotFound:
            return {"Running": False}

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
            if self.remove_id(c["Id"]):
                removed.append(found.get(RUN_LABEL, c["Id"][:12]))
        return removed

    def remove_id(self, container_id: str) -> bool:
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
