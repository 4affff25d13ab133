"""Run folders: a kernel killed while making or removing one leaves nothing a sweep misses."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from kernel import process
from kernel.sandbox import scratch
from kernel.sandbox.base import Dir

DIRS = [Dir(name="in", target="/in"), Dir(name="work", target="/work", writable=True, tmpfs_mb=1)]


def dead_token() -> str:
    ns = process.token().rsplit(":", 1)[1]
    return f"4194000:1:{ns}"  # above any pid this machine hands out


def test_a_run_folder_is_made_whole_and_removed_whole(tmp_path: Path) -> None:
    rundir = scratch.RunDir(tmp_path, "s-1", DIRS, os.getuid(), process.token())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s-1"]
    assert (rundir.path / scratch.OWNER_FILE).read_text() == process.token()
    (rundir.work / "file").write_text("x")
    assert scratch.sweep(tmp_path, process.alive) == []  # its owner lives
    rundir.close()
    assert list(tmp_path.iterdir()) == []


def test_folders_half_made_or_half_removed_by_a_dead_kernel_are_swept(tmp_path: Path) -> None:
    dead, live = dead_token().replace(":", "_"), process.token().replace(":", "_")
    for name in (f".mk-{dead}-s-1", f".rm-{dead}-s-2", f".mk-{live}-s-3", f".rm-{live}-s-4", "s-5"):
        (tmp_path / name / "work").mkdir(parents=True)
    (tmp_path / "s-6").mkdir()
    (tmp_path / "s-6" / scratch.OWNER_FILE).write_text(dead_token())
    removed = scratch.sweep(tmp_path, process.alive)
    assert sorted(removed) == sorted([f".mk-{dead}-s-1", f".rm-{dead}-s-2", "s-6"])
    # a live kernel's folders, and a fresh one without an owner file, are left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".mk-{live}-s-3", f".rm-{live}-s-4", "s-5"])


CHURN = """
import os, sys
from pathlib import Path
from kernel import process
from kernel.sandbox.scratch import RunDir
from kernel.sandbox.base import Dir
dirs = [Dir(name=n, target="/" + n, writable=True, tmpfs_mb=1) for n in ("work", "out")]
dirs += [Dir(name=n, target="/" + n) for n in ("in", "pkg", "sock")]
root, i = Path(sys.argv[1]), 0
print("ready", flush=True)
while True:
    i += 1
    run = RunDir(root, f"s-{os.getpid()}-{i}", dirs, os.getuid(), process.token())
    for k in range(40):
        (run.inputs / f"f{k}").write_text("x" * 100)
    run.close()
"""


def test_kernels_killed_at_any_moment_leave_no_folder_behind(tmp_path: Path) -> None:
    """SIGKILL processes that make and remove run folders in a loop; one sweep right after
    (not a minute later) removes every folder they left."""
    root = tmp_path / "runs"
    rng = random.Random(7)
    killed = 0
    for _ in range(25):
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CHURN), str(root)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        killed += 1
    left_before = list(root.iterdir()) if root.exists() else []
    scratch.sweep(root, process.alive)
    assert list(root.iterdir()) == [], f"{len(left_before)} left by {killed} killed kernels"
    if os.geteuid() == 0:
        with open("/proc/self/mounts") as fh:
            assert str(root) not in fh.read(), "a killed kernel's tmpfs is still mounted"
