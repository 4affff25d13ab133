"""The home: the one folder that holds a kernel's state, checked before anything opens it.

A home that does not exist is created (mode 0700: run sockets and private packages live
there). One that exists must be a folder; if it cannot be written (a read-only mount, or
another user's folder) it is opened for reading only, so that reading commands work and
writing ones say why they cannot.
"""

import errno
import os
from pathlib import Path

from kernel.errors import HomeError

PRIVATE = 0o700
NOT_CONTENT = {"lost+found", ".gitkeep", ".keep"}  # a fresh filesystem, a placeholder: still an empty folder


def prepare(home: Path) -> bool:
    """Make ``home`` usable; returns whether it can be written."""
    not_a_folder = f"the kernel's home {home} is a file, not a folder: point --home or KERNEL_HOME at a folder."
    if home.exists() and not home.is_dir():
        raise HomeError(not_a_folder)
    if not home.exists():
        try:
            home.mkdir(parents=True, mode=PRIVATE)
        except FileExistsError:
            if not home.is_dir():
                raise HomeError(not_a_folder) from None
        except OSError as exc:
            raise HomeError(
                f"cannot create the kernel's home {home}: {exc.strerror}; choose a folder you can write."
            ) from exc
    _refuse_foreign(home)
    writable = os.access(home, os.W_OK | os.X_OK) and _db_writable(home / "kernel.db")
    if writable and (home.stat().st_mode & 0o777) != PRIVATE:
        try:
            home.chmod(PRIVATE)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EROFS, errno.EACCES):
                raise
            writable = False
    if not os.access(home, os.R_OK | os.X_OK):
        raise HomeError(f"the kernel's home {home} cannot be read by this user; run as its owner.")
    return writable


def _refuse_foreign(home: Path) -> None:
    """A folder that holds other things and no kernel.db is not a home: never take it over
    (making `/` or the current folder private, say)."""
    db = home / "kernel.db"
    if db.exists() or db.is_symlink():
        return
    try:
        others = [
            e.name for e in os.scandir(home) if not (e.name in NOT_CONTENT or e.name.startswith(".kernel.db.new-"))
        ]
    except OSError as exc:
        raise HomeError(f"cannot read the kernel's home {home}: {exc.strerror}; run as its owner.") from exc
    if others:
        raise HomeError(
            f"{home} already holds other files ({', '.join(sorted(others)[:3])}) and no kernel.db, so it is not"
            " a kernel home: point --home or KERNEL_HOME at a new or empty folder."
        )


def _db_writable(path: Path) -> bool:
    return not path.exists() or os.access(path, os.W_OK)
