"""The warm pool: fresh, started, never-used containers, kept ready per shape.

A pool is a latency device, never a reuse: a slot is handed out once and removed after
its run. Each shape's size follows its arrival rate (the arrivals of the last
``WINDOW`` seconds times the time it takes to make a slot, doubled), within
``minimum..maximum``; a shape unused for ``idle_seconds`` shrinks to nothing (the
shapes warmed at start keep ``minimum``). When arrivals outrun the fillers, ``take``
returns None and the caller makes a slot on demand: an invocation never waits on the
pool and never fails for lack of a slot.

Before a slot is handed out it is checked: an engine event of the container since it was
made (an exec into it, a pause, a kill, its death), a zygote that hung up or spoke out of
turn, a changed process or anything written in its folders discards it.
"""

import contextlib
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernel.sandbox.base import Shape

WINDOW = 10.0
TAINTING = (
    "exec_create", "exec_start", "attach", "pause", "kill", "die", "stop", "oom", "restart", "destroy", "update",
    "extract-to-dir", "archive-path", "copy", "commit", "rename",
)  # fmt: skip
RECURRING = 3  # arrivals in WINDOW that make a shape worth keeping warm (the warm shapes always are)


class ShapeState:
    def __init__(self, shape: Shape, root: Path, labels: dict[str, str], warm: bool):
        self.shape, self.root, self.labels, self.warm = shape, root, labels, warm
        self.ready: deque[Any] = deque()
        self.making = 0
        self.arrivals: deque[float] = deque()
        self.last_arrival = time.monotonic()
        self.make_seconds = 0.3  # until measured
        self.floor = 0  # ready slots kept while warm


class Pool:
    """Keeps slots of each shape ready; ``make`` creates one, ``fresh`` checks one before use."""

    def __init__(
        self,
        make: Callable[[Shape, Path, dict[str, str]], Any],
        fresh: Callable[[Any], bool],
        *,
        minimum: int,
        maximum: int,
        idle_seconds: float,
        fillers: int,
        total: int | None = None,
        events: Callable[[], Any] | None = None,
    ):
        self.make, self.fresh = make, fresh
        self.minimum, self.maximum, self.idle_seconds = minimum, maximum, idle_seconds
        self.total = total if total is not None else 2 * maximum  # ready or being made, all shapes together
        self.shapes: dict[Shape, ShapeState] = {}
        self.waiting: dict[str, Any] = {}  # container id -> its ready slot
        self.lock = threading.Condition()
        self.closed = False
        self.stats: dict[str, int] = defaultdict(int)
        self.errors: deque[str] = deque(maxlen=20)
        self.threads = [
            threading.Thread(target=self._fill, name=f"pool-filler-{i}", daemon=True) for i in range(fillers)
        ]
        self.events_stream: Any = None
        if events is not None:
            self.events_stream = events()
            self.threads.append(threading.Thread(target=self._watch_events, name="pool-events", daemon=True))
        for thread in self.threads:
            thread.start()

    # -- the caller's side -----------------------------------------------------------------
    def warm(self, shape: Shape, root: Path, labels: dict[str, str], minimum: int | None = None) -> None:
        """Keep at least ``minimum`` (default: the pool's) slots of ``shape`` ready from now on."""
        with self.lock:
            state = self._state(shape, root, labels)
            state.warm = True
            state.floor = self.minimum if minimum is None else min(minimum, self.minimum)
            self.lock.notify_all()

    def take(self, shape: Shape, root: Path, labels: dict[str, str]) -> Any:
        """A fresh slot of ``shape``, or None (the caller makes one on demand)."""
        now = time.monotonic()
        with self.lock:
            state = self._state(shape, root, labels)
            state.arrivals.append(now)
            state.last_arrival = now
            self.lock.notify_all()
        while True:
            with self.lock:
                if not state.ready:
                    self.stats["on_demand"] += 1
                    return None
                slot = state.ready.popleft()
                self.waiting.pop(slot.container_id, None)
            if not slot.tainted and self.fresh(slot):
                self.stats["handed_out"] += 1
                slot.pooled = True
                return slot
            self._discard(slot)  # touched while it waited: never used

    def sizes(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {
                s.shape.label: {"ready": len(s.ready), "making": s.making, "target": self._target(s)}
                for s in self.shapes.values()
            }

    def close(self) -> None:
        with self.lock:
            self.closed = True
            slots = [slot for state in self.shapes.values() for slot in state.ready]
            for state in self.shapes.values():
                state.ready.clear()
            self.waiting.clear()
            self.lock.notify_all()
        if self.events_stream is not None:
            with contextlib.suppress(Exception):
                self.events_stream.close()
        for thread in self.threads:
            thread.join(timeout=30)
        for slot in slots:
            self._discard(slot)

    # -- sizing ------------------------------------------------------------------------
    def _state(self, shape: Shape, root: Path, labels: dict[str, str]) -> ShapeState:
        state = self.shapes.get(shape)
        if state is None:
            state = self.shapes[shape] = ShapeState(shape, root, dict(labels), warm=False)
        return state

    def _target(self, state: ShapeState) -> int:
        now = time.monotonic()
        while state.arrivals and state.arrivals[0] < now - WINDOW:
            state.arrivals.popleft()
        recurring = len(state.arrivals) >= RECURRING and now - state.last_arrival < self.idle_seconds
        if not (state.warm or recurring):
            return 0
        floor = state.floor if state.warm else self.minimum
        rate = len(state.arrivals) / WINDOW
        if not recurring:
            return floor
        return max(floor, min(self.maximum, math.ceil(2 * rate * state.make_seconds) + self.minimum))

    def _wanted(self) -> ShapeState | None:
        """The shape furthest below its target, if any (called with the lock held)."""
        best, gap = None, 0
        if sum(len(s.ready) + s.making for s in self.shapes.values()) >= self.total:
            return None  # every shape together is at the pool's total: artifacts cannot grow it by shape
        for state in self.shapes.values():
            missing = self._target(state) - len(state.ready) - state.making
            if missing > gap:
                best, gap = state, missing
        return best

    # -- the fillers ----------------------------------------------------------------------
    def _fill(self) -> None:
        while True:
            with self.lock:
                state = self._wanted()
                while state is None and not self.closed:
                    self.lock.wait(timeout=1.0)
                    state = self._wanted()
                    self._shrink()
                if self.closed or state is None:
                    return
                state.making += 1
            started = time.monotonic()
            slot = None
            try:
                slot = self.make(state.shape, state.root, state.labels)
            except Exception as exc:  # noqa: BLE001 - the pool never fails a caller; on-demand reports it
                self.stats["make_failed"] += 1
                self.errors.append(str(exc))
                time.sleep(1.0)  # an engine in trouble is not hammered
            with self.lock:
                state.making -= 1
                if slot is not None:
                    state.make_seconds = 0.8 * state.make_seconds + 0.2 * (time.monotonic() - started)
                    if self.closed:
                        leftover = slot
                    else:
                        state.ready.append(slot)
                        self.waiting[slot.container_id] = slot
                        self.stats["made"] += 1
                        leftover = None
                else:
                    leftover = None
            if leftover is not None:
                self._discard(leftover)

    def _shrink(self) -> None:
        """Remove ready slots above a shape's target (called with the lock held; removal outside it)."""
        extra = []
        for state in self.shapes.values():
            while len(state.ready) > self._target(state):
                extra.append(state.ready.pop())
                self.waiting.pop(extra[-1].container_id, None)
        if extra:
            threading.Thread(target=self._discard_all, args=(extra,), daemon=True).start()

    def _discard_all(self, slots: list[Any]) -> None:
        for slot in slots:
            self._discard(slot)

    def _discard(self, slot: Any) -> None:
        self.stats["discarded"] += 1
        with contextlib.suppress(Exception):
            slot.close()

    # -- the engine's events -----------------------------------------------------------------
    def _watch_events(self) -> None:
        """Mark a container tainted when anything but the kernel's own run touches it. If the stream
        ends before the pool closes (the engine restarted, say), every waiting container is tainted and
        the pool stops trusting events: ``fresh`` asks the engine about each container instead."""
        with contextlib.suppress(Exception):
            for event in self.events_stream:
                action = str(event.get("Action") or event.get("status") or "")
                if action.split(":", 1)[0].strip() in TAINTING:
                    with self.lock:
                        slot = self.waiting.get(str(event.get("id") or event.get("Actor", {}).get("ID", "")))
                        if slot is not None:
                            slot.tainted = True
        with self.lock:
            if not self.closed:
                self.events_stream = None
                for slot in self.waiting.values():
                    slot.tainted = True
