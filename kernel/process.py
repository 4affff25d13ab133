"""Identifying the kernel process that owns a run, so a crashed one can be told apart."""

import os


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def token() -> str:
    """'PID:STARTTIME' of this process: unique even when pids are reused."""
    return f"{os.getpid()}:{_start_time(os.getpid())}"


def alive(owner: str) -> bool:
    pid, _, started = owner.partition(":")
    return pid.isdigit() and _start_time(int(pid)) == started
