"""Identifying the kernel process that owns a run, so a crashed one can be told apart."""

import os


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


def alive(owner: str) -> bool:
    """Whether the owning process lives. One in another pid namespace cannot be seen from
    here, so it counts as alive: nothing of it is swept."""
    pid, _, rest = owner.partition(":")
    started, _, namespace = rest.partition(":")
    if namespace and namespace != _pid_namespace():
        return True
    return pid.isdigit() and _start_time(int(pid)) == started
