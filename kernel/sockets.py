"""Unix sockets the kernel serves in a run's folder (which may be deep in a long path)."""

import os
import socket
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
