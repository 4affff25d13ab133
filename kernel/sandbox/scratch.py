"""The host side of a run's mounts: one directory per run, its writable parts size-capped.

Layout: one folder per ``Dir`` of the run's shape, e.g. ``in/`` and ``pkg/`` (written by
the kernel, read-only in the container), ``work/`` (the run's workspace) and ``out/``
(where the runner writes the result), both writable by the sandbox user, and ``sock/``
(the kernel's sockets). As root, ``work/`` and ``out/`` are tmpfs mounts of their own:
``size=`` caps what the run can write, nothing reaches the host's disk, and a full
workspace cannot stop the runner from reporting. Not as root they are plain folders,
which `kernel doctor` reports as a missing guarantee.
"""

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from kernel import process
from kernel.errors import SandboxError
from kernel.sandbox.base import Dir

OWNER_FILE = ".owner"
BORN_SECONDS = 60  # a folder with no owner file (made by an older kernel) is left alone this long
# A folder being made or removed carries the owning process in its name, so that whenever a
# kernel dies, a sweep can tell whose it was: '.mk-PID_START_NS-NAME', '.rm-PID_START_NS-NAME'.
MAKING, REMOVING = ".mk-", ".rm-"
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
    """A run's host directory, one folder per ``Dir`` of its shape; ``close()`` unmounts and deletes it.

    ``in``, ``out``, ``work``, ``pkg`` and ``sock`` name the usual folders (present when the
    shape has them)."""

    def __init__(self, root: Path, name: str, dirs: Iterable[Dir], uid: int, owner: str):
        self.path = root / name
        making = _tagged(self.path, MAKING, owner)
        making.mkdir(parents=True)
        try:
            (making / OWNER_FILE).write_text(owner)
            making.rename(self.path)  # seen under its name only with its owner file inside
        except BaseException:
            remove(making)
            raise
        self.inputs, self.out, self.work = self.path / "in", self.path / "out", self.path / "work"
        self.pkg, self.sock = self.path / "pkg", self.path / "sock"
        self.quota = False
        try:
            for d in dirs:
                folder = self.path / d.name
                folder.mkdir()
                if d.tmpfs_mb:
                    self.quota = _mount_tmpfs(folder, d.tmpfs_mb) or self.quota
                if d.writable and d.name != "sock":  # the kernel's sockets: only the kernel makes files there
                    if os.geteuid() == 0:
                        os.chown(folder, uid, uid)
                    else:
                        folder.chmod(0o777)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        remove(self.path)


def _tagged(path: Path, kind: str, owner: str) -> Path:
    return path.with_name(f"{kind}{owner.replace(':', '_')}-{path.name}")


def _tag_owner(name: str) -> str | None:
    """The owner a '.mk-'/'.rm-' folder's name carries ('' when unreadable), None for other names."""
    kind = next((k for k in (MAKING, REMOVING) if name.startswith(k)), None)
    if kind is None:
        return None
    owner, dash, _ = name.removeprefix(kind).partition("-")  # an owner token holds no '-'
    return owner.replace("_", ":") if dash else ""


def remove(path: Path) -> None:
    """Unmount and delete a run's folder. It is first renamed to carry this process's token, so
    a kernel killed half-way leaves a folder any later sweep removes."""
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for entry in entries:
            unmount(Path(entry.path))
    unmount(path)
    doomed = path if path.name.startswith(REMOVING) else _tagged(path, REMOVING, process.token())
    try:
        path.rename(doomed)
    except FileNotFoundError:
        return  # another sweeper has it
    except OSError:
        doomed = path
    shutil.rmtree(doomed, ignore_errors=True)


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
        owner = _tag_owner(entry.name)
        if owner is None:
            try:
                owner = (entry / OWNER_FILE).read_text()
            except OSError:
                owner = ""
            if not owner and _younger_than(entry, BORN_SECONDS):
                continue  # not ours to judge yet
        if not (owner and owner_alive(owner)):
            remove(entry)
            removed.append(entry.name)
    return removed


def stage(source: Path, target: Path) -> None:
    """Put a copy of the tree ``source`` (a package, read-only in the sandbox) into ``target``:
    hard links where the filesystem allows (the files are the store's, never written), else copies."""
    for dirpath, dirnames, filenames in os.walk(source):
        here = target / os.path.relpath(dirpath, source)
        for name in dirnames:
            (here / name).mkdir(exist_ok=True)
        for name in filenames:
            src, dst = os.path.join(dirpath, name), here / name
            if os.path.islink(src):
                continue  # the store keeps no links; never follow one
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
