"""Owner tokens: a live process, a dead one, and one in another pid namespace (left alone)."""

import os
import subprocess
import sys

from kernel import process


def test_own_token_is_alive() -> None:
    assert process.alive(process.token())


def test_dead_process_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    token = process.token().replace(f"{os.getpid()}:", f"{child.pid}:", 1)
    assert not process.alive(token)


def test_other_pid_namespace_counts_as_alive() -> None:
    pid, started, _ = process.token().split(":")
    assert process.alive(f"999999999:{started}:1")  # cannot be seen from here: never swept
    assert not process.alive(f"999999999:{started}")  # legacy token without a namespace
