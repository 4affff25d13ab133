"""The contract every container backend implements (Docker today; Kubernetes later)."""

import contextlib
import hashlib
import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from kernel.models import Limits

if TYPE_CHECKING:
    from kernel.sandbox.scratch import RunDir

PROJECT_LABEL = "io.artifact-kernel.project"
RUN_LABEL = "io.artifact-kernel.run"
OWNER_LABEL = "io.artifact-kernel.owner"
HOME_LABEL = "io.artifact-kernel.home"


SOCKET_DIR = "/kernel/sock"  # every sandbox's sockets: the control socket, and the run's own
CONTROL_SOCKET = "ctl.sock"


class Mount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Path
    target: str
    read_only: bool = True


class Dir(BaseModel):
    """One folder of a run's host directory and where its container sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    target: str
    writable: bool = False
    tmpfs_mb: int = 0  # a size-capped tmpfs of its own (as root); 0: a plain folder


class Shape(BaseModel):
    """Everything fixed when a container is created; runs of one shape can share a warm pool
    (of fresh containers: each is still used once). The wall limit is the kernel's deadline,
    not the container's, so it is not part of the shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str
    runtime: str
    uid: int
    memory_mb: int
    cpu_seconds: int
    cpus: float
    pids_limit: int
    tmp_mb: int
    dirs: tuple[Dir, ...]

    def mounts(self, root: Path) -> list[Mount]:
        return [Mount(source=root / d.name, target=d.target, read_only=not d.writable) for d in self.dirs]

    @property
    def label(self) -> str:
        """A short stable name of the shape, for labels and logs."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


class SandboxSpec(BaseModel):
    """One run in a slot's container: what to execute and every limit around it."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    shape: Shape
    root: Path  # the run's host directory (its slot's): the shape's folders are in it
    command: list[str]
    inline: str | None = None  # "runner": the sandbox's first process runs the runner it has imported
    workdir: str = "/work"
    env: dict[str, str] = {}
    limits: Limits
    output_bytes: int
    kept_output_bytes: int
    labels: dict[str, str] = {}

    @property
    def mounts(self) -> list[Mount]:
        return self.shape.mounts(self.root)


class SandboxOutcome(BaseModel):
    """What the host saw of one run. Flags say why it ended if it did not end by itself."""

    exit_code: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_total: int = 0
    stderr_total: int = 0
    timed_out: bool = False
    cpu_exceeded: bool = False
    output_exceeded: bool = False
    oom_killed: bool = False
    pids_exhausted: bool = False
    died: bool = False  # the container ended without the kernel killing it
    stopped: bool = False  # the kernel ended it on request (``Stop``), not for a limit
    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    io_read_bytes: int = 0
    io_write_bytes: int = 0
    wall_seconds: float = 0.0

    @property
    def stopped_by_kernel(self) -> bool:
        """The kernel ended the run (a limit, or a ``Stop``), so the runner never reported an exit."""
        return self.timed_out or self.cpu_exceeded or self.output_exceeded or self.pids_exhausted or self.stopped


class Stop:
    """Set by the kernel to end a run before it ends by itself; a backend waiting on the run
    wakes on ``fileno()`` becoming readable. Close it when the run is over."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._r, self._w = os.pipe()

    def set(self) -> None:
        if not self._event.is_set():
            self._event.set()
            os.write(self._w, b"x")

    def is_set(self) -> bool:
        return self._event.is_set()

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)


class Slot:
    """A run's host directory and, with an engine, its container: fresh, never used.

    Taken before the run (from a warm pool, or made on demand), used by exactly one
    ``Sandbox.run``, then ``release()``d (the container is killed: nothing more can run or
    write) and ``close()``d (the container and the folder are removed)."""

    def __init__(self, shape: Shape, rundir: "RunDir"):
        self.shape, self.rundir = shape, rundir
        self.used = False

    @property
    def root(self) -> Path:
        return self.rundir.path

    def hang_up(self) -> None:  # noqa: B027 - only a backend with containers has one to end
        """End the run's processes now (the container's removal may follow later); idempotent."""

    def release(self) -> None:  # noqa: B027 - only a backend with containers has one to end
        """End and remove the container; idempotent."""

    def close(self) -> None:
        self.release()
        self.rundir.close()


class Sandbox(ABC):
    """Runs one command in a fresh, locked-down container, used once and destroyed."""

    def slot(self, shape: Shape, root: Path, labels: dict[str, str]) -> Slot:
        """A fresh slot of this shape, its folder under ``root``; ``labels[OWNER_LABEL]`` owns it."""
        from kernel.sandbox.scratch import RunDir

        return Slot(shape, RunDir(root, f"s-{secrets.token_hex(8)}", shape.dirs, shape.uid, labels[OWNER_LABEL]))

    @abstractmethod
    def run(self, spec: SandboxSpec, slot: Slot, stop: Stop | None = None) -> SandboxOutcome:
        """Run ``spec`` in ``slot``'s container (never used before; never used again) and meter it.

        When ``stop`` is set the run is killed and the outcome says ``stopped``. The caller
        releases and closes the slot."""

    @abstractmethod
    def sweep(self, owner_alive: Callable[[str], bool], labels: dict[str, str]) -> list[str]:
        """Remove this project's containers carrying ``labels`` whose owner process is gone; returns their run ids."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release the connection to the engine."""

    @abstractmethod
    def runtime(self, requested: str) -> str:
        """The runtime a run will use: 'runsc' when requested or installed ('auto'), else 'runc'."""
