"""Reading a container's usage from its cgroup on the host (cgroup v1 and v2)."""

from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass
class CgroupSample:
    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    oom_kills: int = 0
    pids_max_events: int = 0
    io_read_bytes: int = 0
    io_write_bytes: int = 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _field(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return 0


def _int(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else 0


class Cgroup:
    """The cgroup(s) of a process, found from /proc/PID/cgroup while it lives."""

    def __init__(self, pid: int):
        self.v1: dict[str, Path] = {}
        self.v2: Path | None = None
        for line in _read(Path(f"/proc/{pid}/cgroup")).splitlines():
            hid, controllers, path = line.split(":", 2)
            if hid == "0" and controllers == "":
                self.v2 = ROOT / path.lstrip("/")
            for c in controllers.split(","):
                if c:
                    self.v1[c] = ROOT / c / path.lstrip("/")
        if self.v1.get("memory") and not self.v1["memory"].exists():
            self.v1 = {}
        if self.v2 is not None and not (self.v2 / "cgroup.procs").exists():
            self.v2 = None

    @property
    def found(self) -> bool:
        return bool(self.v1) or self.v2 is not None

    def sample(self) -> CgroupSample:
        if self.v1:
            return self._sample_v1()
        if self.v2 is not None:
            return self._sample_v2(self.v2)
        return CgroupSample()

    def _sample_v1(self) -> CgroupSample:
        mem = self.v1.get("memory", ROOT / "-")
        io = _read(self.v1.get("blkio", ROOT / "-") / "blkio.throttle.io_service_bytes_recursive")
        return CgroupSample(
            cpu_seconds=_int(_read(self.v1.get("cpuacct", ROOT / "-") / "cpuacct.usage")) / 1e9,
            peak_memory_bytes=_int(_read(mem / "memory.max_usage_in_bytes")),
            oom_kills=_field(_read(mem / "memory.oom_control"), "oom_kill"),
            pids_max_events=_field(_read(self.v1.get("pids", ROOT / "-") / "pids.events"), "max"),
            io_read_bytes=_sum_blkio(io, "Read"),
            io_write_bytes=_sum_blkio(io, "Write"),
        )

    @staticmethod
    def _sample_v2(path: Path) -> CgroupSample:
        read = write = 0
        for line in _read(path / "io.stat").splitlines():
            for kv in line.split()[1:]:
                key, _, value = kv.partition("=")
                read += int(value) if key == "rbytes" else 0
                write += int(value) if key == "wbytes" else 0
        return CgroupSample(
            cpu_seconds=_field(_read(path / "cpu.stat"), "usage_usec") / 1e6,
            peak_memory_bytes=_int(_read(path / "memory.peak")),
            oom_kills=_field(_read(path / "memory.events"), "oom_kill"),
            pids_max_events=_field(_read(path / "pids.events"), "max"),
            io_read_bytes=read,
            io_write_bytes=write,
        )


def _sum_blkio(text: str, op: str) -> int:
    return sum(int(p[2]) for line in text.splitlines() if len(p := line.split()) == 3 and p[1] == op)
