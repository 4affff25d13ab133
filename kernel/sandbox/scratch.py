"""The host side of a run's mounts: one directory per run, its writable parts size-capped.

Layout: ``in/`` (written by the kernel, read-only in the container), ``work/`` (the
run's workspace) and ``out/`` (where the runner writes the result), both writable by
the sandbox user. As root, ``work/`` and ``out/`` are tmpfs mounts of their own:
``size=`` caps what the run can write, nothing reaches the host's disk, and a full
workspace cannot stop the runner from reporting. Not as root they are plain folders,
which `kernel doctor` reports as a missing guarantee.
"""

import ctypes
import ctypes.util
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from kernel.errors import SandboxError

OWNER_FILE = ".owner"
BORN_SECONDS = 60  # a folder with no owner file yet is left alone this long
MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def can_mount() -> bool:
    return os.geteuid() == 0


def _mount_tmpfs(path: Path, size_mb: int) -> bool:
    """Mount a size-capped tmpfs on ``path``; False when not root (no cap possible)."""
    if not can_mount():
        return False
    opts = f"size={size_mb}m,mode=0755".encode()
    flags = ctypes.c_ulong(MS_NOSUID | MS_NODEV)
    if _libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", flags, opts) != 0:
        errno = ctypes.get_errno()
        raise SandboxError(
            f"could not mount the run's size-capped workspace at {path}: {os.strerror(errno)};"
            " check that the kernel's home is on a local filesystem."
        )
    return True


def is_mount(path: Path) -> bool:
    return os.path.ismount(path)


def unmount(path: Path) -> None:
    if is_mount(path):
        _libc.umount2(str(path).encode(), MNT_DETACH)


class RunDir:
    """The run's host directory; ``close()`` unmounts and deletes it."""

    def __init__(self, root: Path, run_id: str, workspace_mb: int, result_bytes: int, uid: int, owner: str):
        self.path = root / run_id
        self.path.mkdir(parents=True, exist_ok=False)
        (self.path / OWNER_FILE).write_text(owner)  # so a sweep can tell a live run from a crashed one
        self.inputs = self.path / "in"
        self.out = self.path / "out"
        self.work = self.path / "work"
        try:
            for d in (self.inputs, self.out, self.work):
                d.mkdir()
            self.quota = _mount_tmpfs(self.work, workspace_mb)
            _mount_tmpfs(self.out, result_bytes // 2**20 + 1)
            for d in (self.out, self.work):
                if os.geteuid() == 0:
                    os.chown(d, uid, uid)
                else:
                    d.chmod(0o777)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        remove(self.path)


def remove(path: Path) -> None:
    for sub in ("work", "out"):
        unmount(path / sub)
    unmount(path)
    shutil.rmtree(path, ignore_errors=True)


def _younger_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.lstat().st_mtime < seconds
    except OSError:
        return True  # gone meanwhile: another sweeper has it


def sweep(root: Path, owner_alive: Callable[[str], bool]) -> list[str]:
    """Remove run directories whose owner process is gone (left by a crashed kernel)."""
    if not root.is_dir():
        return []
    removed = []
    for entry in root.iterdir():
        try:
            owner = (entry / OWNER_FILE).read_text()
        except OSError:
            owner = ""
            if _younger_than(entry, BORN_SECONDS):
                continue  # just made by a live kernel, which writes its owner file next
        if not (owner and owner_alive(owner)):
            remove(entry)
            removed.append(entry.name)
    return removed
