"""Reading files a sandbox controlled, from the host, without trusting them.

A run can leave a symlink (to /dev/zero, or a host file readable by root), a FIFO (an
open blocks forever) or a huge file where the kernel expects its result. Open without
following links and without blocking, insist on a regular file, and never read more than
the cap.
"""

import os
import stat


class Unreadable(Exception):
    """Not a regular file the kernel may read (a link, FIFO, device, or too large)."""


def read_capped(path: str | os.PathLike[str], cap: int) -> bytes | None:
    """The file's bytes; None if it does not exist; Unreadable if it is not a plain file within ``cap``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symlink
        raise Unreadable(f"{os.fspath(path)} is not a regular file ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"{os.fspath(path)} is not a regular file")
        if info.st_size > cap:
            raise Unreadable(f"{os.fspath(path)} is {info.st_size} bytes, above the cap of {cap}")
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, cap + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise Unreadable(f"{os.fspath(path)} grew past the cap of {cap} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
