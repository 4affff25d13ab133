"""Reading usage from cgroup files (v1 and v2), against a fake /sys/fs/cgroup tree."""

from pathlib import Path

import pytest

from kernel.sandbox import cgroup


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroup, "ROOT", tmp_path)
    c = cgroup.Cgroup.__new__(cgroup.Cgroup)
    c.v2 = None
    c.v1 = {k: tmp_path / k / "docker/x" for k in ("memory", "cpuacct", "pids", "blkio")}
    write(tmp_path, "memory/docker/x/memory.max_usage_in_bytes", "1048576\n")
    write(tmp_path, "memory/docker/x/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    write(tmp_path, "cpuacct/docker/x/cpuacct.usage", "1500000000\n")
    write(tmp_path, "pids/docker/x/pids.events", "max 3\n")
    write(
        tmp_path,
        "blkio/docker/x/blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 4096\n8:0 Write 512\n8:16 Read 4\nTotal 4612\n",
    )
    s = c.sample()
    assert (s.cpu_seconds, s.peak_memory_bytes, s.oom_kills, s.pids_max_events) == (1.5, 1048576, 2, 3)
    assert (s.io_read_bytes, s.io_write_bytes) == (4100, 512)


def test_v2(tmp_path: Path) -> None:
    write(tmp_path, "cpu.stat", "usage_usec 250000\nuser_usec 1\n")
    write(tmp_path, "memory.peak", "2097152\n")
    write(tmp_path, "memory.events", "low 0\noom 1\noom_kill 1\n")
    write(tmp_path, "pids.events", "max 0\n")
    write(tmp_path, "io.stat", "8:0 rbytes=100 wbytes=20 rios=1\n8:16 rbytes=1 wbytes=2\n")
    s = cgroup.Cgroup._sample_v2(tmp_path)
    assert (s.cpu_seconds, s.peak_memory_bytes, s.oom_kills, s.pids_max_events) == (0.25, 2097152, 1, 0)
    assert (s.io_read_bytes, s.io_write_bytes) == (101, 22)


def test_dead_process_has_no_cgroup() -> None:
    assert not cgroup.Cgroup(2**22 + 12345).found
