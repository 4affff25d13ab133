"""Unix sockets in folders that may be deep in a long path (a run's folder, a home).

Standard library only, and no pathlib at run time: the thin CLI connects with it.
"""

from __future__ import annotations

import os
import socket

TYPE_CHECKING = False  # not typing's: importing typing costs the thin CLI 3 ms
if TYPE_CHECKING:
    from pathlib import Path


def bind_unix(sock: socket.socket, path: Path, mode: int = 0o666) -> None:
    """Bind ``sock`` at ``path``, through /proc/self/fd so that a deep state directory does not
    hit the 108-byte limit of a socket path (the container sees it at a short path anyway)."""
    dirfd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        sock.bind(f"/proc/self/fd/{dirfd}/{path.name}")
    finally:
        os.close(dirfd)
    os.chmod(path, mode)


def connect_unix(path: str, timeout: float | None = None) -> socket.socket:
    """A connection to the Unix socket at ``path``, through /proc/self/fd (no 108-byte limit)."""
    dirfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(f"/proc/self/fd/{dirfd}/{os.path.basename(path)}")
    except OSError:
        sock.close()
        raise
    finally:
        os.close(dirfd)
    return sock
