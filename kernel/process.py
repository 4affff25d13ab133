"""Identifying the kernel process that owns a run, so a crashed one can be told apart."""

import os
import time


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def token() -> str:
    """'PID:STARTTIME:PIDNS' of this process: unique even when pids are reused."""
    return f"{os.getpid()}:{_start_time(os.getpid())}:{_pid_namespace()}"


def foreign(owner: str) -> bool:
    """Whether the owner lives in another pid namespace (a kernel in another container)."""
    namespace = owner.split(":")[2] if owner.count(":") >= 2 else ""
    return bool(namespace) and namespace != _pid_namespace()


def lapsed(owner: str, since: float | None, lease: float) -> bool:
    """Whether what ``owner`` holds since ``since`` (epoch seconds) may be taken back.

    Its process is gone; or it is in another pid namespace, where it cannot be seen, and
    it has held the thing longer than ``lease``, the longest its work can take."""
    if foreign(owner):
        return since is not None and time.time() - since > lease
    return not alive(owner)


def alive(owner: str) -> bool:
    """Whether the owning process lives. One in another pid namespace cannot be seen from
    here, so it counts as alive: nothing of it is swept."""
    pid, _, rest = owner.partition(":")
    started, _, namespace = rest.partition(":")
    if namespace and namespace != _pid_namespace():
        return True
    return pid.isdigit() and _start_time(int(pid)) == started
