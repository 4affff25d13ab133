"""Ids of runs, escrows and verdicts: random, or drawn from a world's seed while it runs.

A world run (``kernel world run``) must replay: the same seed and policies give the same
decisions, and a decision names escrows and runs by id. So the ids the world's own work
asks for are the digest of the world's seed and a counter, in the order its (sequential)
steps ask for them; the counter is saved with each completed tick and skips ahead by
2^40 after an interrupted tick, so an id is never handed out twice. The source belongs
to the world's thread and travels with its runs (``RunContext.ids``) into the threads
that serve their calls; anything else the process does meanwhile (a daemon's other
requests) draws random ids and never shifts the world's. Containers, run folders and
holds keep random names: they never reach a decision.
"""

import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Source:
    """A world's stream of ids: its seed and a counter."""

    def __init__(self, seed: int, start: int):
        self.seed, self.counter = seed, start
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self.counter += 1
            return hashlib.sha256(f"{self.seed}:{self.counter}".encode()).hexdigest()[:16]


_local = threading.local()


def current() -> Source | None:
    """The source of this thread's ids, if a world's work is running on it."""
    return getattr(_local, "source", None)


def new_id() -> str:
    """Sixteen hex digits: from the world's source when this thread works for it, else random."""
    source = current()
    return source.next() if source is not None else secrets.token_hex(8)


@contextmanager
def using(source: Source | None) -> Iterator[Source | None]:
    """Draw this thread's ids from ``source`` (None: random) until the block ends."""
    before = current()
    _local.source = source
    try:
        yield source
    finally:
        _local.source = before


@contextmanager
def seeded(seed: int, start: int) -> Iterator[Source]:
    """A new source for ``seed`` counting on from ``start``, used by this thread in the block."""
    source = Source(seed, start)
    with using(source):
        yield source
