"""The contract every container backend implements (Docker today; Kubernetes later)."""

import contextlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from kernel.models import Limits

PROJECT_LABEL = "io.artifact-kernel.project"
RUN_LABEL = "io.artifact-kernel.run"
OWNER_LABEL = "io.artifact-kernel.owner"
HOME_LABEL = "io.artifact-kernel.home"


class Mount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Path
    target: str
    read_only: bool = True


class SandboxSpec(BaseModel):
    """One run's container: what to execute and every limit around it."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    image: str
    runtime: str
    command: list[str]
    workdir: str = "/work"
    env: dict[str, str] = {}
    mounts: list[Mount] = []
    limits: Limits
    cpus: float
    pids_limit: int
    tmp_mb: int
    uid: int
    output_bytes: int
    kept_output_bytes: int
    labels: dict[str, str] = {}


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


class Sandbox(ABC):
    """Runs one command in a fresh, locked-down container, used once and destroyed."""

    @abstractmethod
    def run(self, spec: SandboxSpec, stop: Stop | None = None) -> SandboxOutcome:
        """Create, run, meter and remove one container. Never reuses a container.

        When ``stop`` is set the container is killed and the outcome says ``stopped``."""

    @abstractmethod
    def sweep(self, owner_alive: Callable[[str], bool], labels: dict[str, str]) -> list[str]:
        """Remove this project's containers carrying ``labels`` whose owner process is gone; returns their run ids."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release the connection to the engine."""

    @abstractmethod
    def runtime(self, requested: str) -> str:
        """The runtime a run will use: 'runsc' when requested or installed ('auto'), else 'runc'."""
