"""Ids of runs, escrows and verdicts: random, or drawn from a world's seed while it runs.

A world run (``kernel world run``) must replay: the same seed and policies give the same
decisions, and a decision names escrows and runs by id. So while a world runs, the ids
these rows get are the digest of the world's seed and a counter, in the order the
world's (sequential) steps ask for them; the counter is saved with each completed tick
and skips ahead by 2^40 after an interrupted tick, so an id is never handed out twice.
Containers, run folders and holds keep random names: they never reach a decision.
"""

import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_seed: int | None = None
_counter = 0


def new_id() -> str:
    """Sixteen hex digits: from the running world's seed, else random."""
    global _counter
    with _lock:
        if _seed is None:
            return secrets.token_hex(8)
        _counter += 1
        return hashlib.sha256(f"{_seed}:{_counter}".encode()).hexdigest()[:16]


def issued() -> int:
    """The counter of the seeded ids (what a world saves with each completed tick)."""
    with _lock:
        return _counter


@contextmanager
def seeded(seed: int, start: int) -> Iterator[None]:
    """Draw ids from ``seed`` counting on from ``start`` until the block ends (one world at a time)."""
    global _seed, _counter
    with _lock:
        if _seed is not None:
            raise RuntimeError("a world is already running in this process")
        _seed, _counter = seed, start
    try:
        yield
    finally:
        with _lock:
            _seed = None
