"""What happens inside a run's writable mounts, seen from the host.

While the run lives, ``watchdog`` reports opens, creates, modifications, closes, deletes
and moves under the workspace. After the run, the kernel hashes and fingerprints every
file ``walk`` finds there: the authoritative record of what was written. An inotify
overflow, a watch that could not be placed, or more events than the per-run cap marks
the run's audit incomplete; nothing is hidden.
"""

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.inotify import InotifyEmitter

Emit = Callable[[str, str, str | None], None]  # (op, path relative to the root, detail)


class _StopRace(logging.Filter):
    """watchdog logs an error when its emitter loop runs once more after a stop: a benign race."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_StopRace())


class OverflowAwareEmitter(InotifyEmitter):
    """An inotify emitter that remembers when the kernel dropped events (IN_Q_OVERFLOW).

    watchdog tells only its watch group, which rebuilds its watches and logs; the group's
    callback is wrapped here so the run that lost events can say so.
    """

    def __init__(self, event_queue: object, watch: ObservedWatch, timeout: float = 1.0, **kw: object):
        super().__init__(event_queue, watch, timeout=timeout, **kw)  # type: ignore[arg-type]
        self.overflowed = False

    def on_thread_start(self) -> None:
        super().on_thread_start()
        group = self._inotify
        if group is not None:
            rebuild = group.on_queue_overflow

            def flagged() -> None:
                self.overflowed = True
                rebuild()

            group.on_queue_overflow = flagged  # type: ignore[method-assign]

    def on_queue_overflow(self) -> None:
        """What the inotify reader calls on IN_Q_OVERFLOW (through the watch group)."""
        if self._inotify is not None:
            self._inotify.on_queue_overflow()


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: "WorkspaceWatcher"):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher.seen(event)


class WorkspaceWatcher:
    """Watches one folder tree for the duration of a run."""

    def __init__(self, root: Path, emit: Emit, max_events: int):
        self.root = root
        self.emit = emit
        self.max_events = max_events
        self.count = 0
        self.stopped = False
        self.problems: list[str] = []
        self.observer = BaseObserver(OverflowAwareEmitter, timeout=0.1)

    def start(self) -> None:
        try:
            self.observer.schedule(_Handler(self), str(self.root), recursive=True)
            self.observer.start()
        except OSError as exc:
            self.problems.append(f"could not watch the workspace: {exc}")

    def seen(self, event: FileSystemEvent) -> None:
        self.count += 1
        if self.count > self.max_events:
            if self.count == self.max_events + 1:
                self.problems.append(f"more than {self.max_events} file events; the rest were not recorded")
            return
        if event.is_directory and event.event_type == "modified":
            return  # a file event inside says more
        kind = "dir_" if event.is_directory else ""
        path = self._rel(event.src_path)
        dest = getattr(event, "dest_path", "")
        self.emit(kind + event.event_type, path, f"to {self._rel(dest)}" if dest else None)

    def stop(self) -> list[str]:
        """Stop watching; returns why the record is incomplete (empty when it is not)."""
        if self.stopped:
            return self.problems
        self.stopped = True
        emitters = list(self.observer.emitters)  # stop() unschedules them
        if self.observer.is_alive():
            self.observer.stop()
            self.observer.join(timeout=5)
        if any(getattr(e, "overflowed", False) for e in emitters):
            self.problems.append("the inotify queue overflowed; some file events were lost")
        return self.problems

    def _rel(self, path: str | bytes) -> str:
        text = os.fsdecode(path)
        return os.path.relpath(text, self.root) if text else ""


def walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, full path) of every regular file under ``root``, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                yield os.path.relpath(full, root), Path(full)
