"""Reading files a sandbox controlled, from the host, without trusting them.

A run can leave a symlink (to /dev/zero, or a host file readable by root), a FIFO (an
open blocks forever) or a huge file where the kernel expects its result. Open without
following links and without blocking, insist on a regular file, and never read more than
the cap.
"""

import os
import stat
import sys

from kernel.errors import InvalidInput


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


def read_user_file(path: str | os.PathLike[str], cap: int, what: str) -> bytes:
    """A file a user named (links followed), or stdin for '-': at most ``cap`` bytes are read.

    A FIFO, device or folder is refused at once (opened without blocking, never read), so
    `/dev/zero` cannot fill memory and a FIFO with no writer cannot hang the command.
    """
    if os.fspath(path) == "-":
        data = sys.stdin.buffer.read(cap + 1)
    else:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise InvalidInput(f"cannot read {what} {os.fspath(path)}: {exc.strerror}.") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InvalidInput(
                    f"{what} {os.fspath(path)} is not a regular file; give a file, or '-' to read standard input."
                )
            chunks, total = [], 0
            while total <= cap and (chunk := os.read(fd, min(1 << 20, cap + 1 - total))):
                chunks.append(chunk)
                total += len(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
    if len(data) > cap:
        raise InvalidInput(f"{what} is larger than {cap} bytes; send less.")
    return data
