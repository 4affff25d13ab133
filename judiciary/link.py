"""The host's side of a judgement's two channels: the link between the suite's container and
the deliverable's, and the report socket only the suite's launcher holds.

Both containers only connect (gVisor lets a sandbox connect to a host socket, not listen on
one), so the kernel listens on one socket per container and pumps bytes between the two
connections: the deliverable's bytes reach the buyer's suite only through the kernel. The
report socket takes one connection, the launcher's, made before any suite code runs; later
connections are refused, and what it carried is read by the kernel only once every process
of the deliverable is dead.
"""

import contextlib
import os
import select
import socket
import threading
from pathlib import Path

from kernel.sockets import bind_unix

CHUNK = 1 << 16


def listen(path: Path, uid: int | None) -> socket.socket:
    """A listening Unix socket at ``path`` that only ``uid`` (the container's user) may connect to."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bind_unix(sock, path)
    if uid is not None and os.geteuid() == 0:
        os.chown(path, uid, uid)
        os.chmod(path, 0o600)
    sock.listen(1)
    return sock


class _Channel:
    """A background thread over listening sockets, stopped by ``close()`` through a wake-up pipe."""

    def __init__(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        raise NotImplementedError

    def _accept(self, listener: socket.socket) -> socket.socket | None:
        """One connection, or None once closed."""
        ready, _, _ = select.select([listener.fileno(), self._wake_r], [], [])
        if listener.fileno() not in ready:  # closed before anyone connected
            return None
        conn, _ = listener.accept()
        return conn

    def close(self) -> None:
        """Stop and release everything; idempotent."""
        if not self._closed.is_set():
            self._closed.set()
            os.write(self._wake_w, b"x")
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1


class Relay(_Channel):
    """Pumps bytes between the suite's connection and the deliverable's."""

    def __init__(self, suite: Path, deliverable: Path, suite_uid: int, deliverable_uid: int):
        super().__init__()
        self.paths = (suite, deliverable)
        self.listeners = [listen(suite, suite_uid), listen(deliverable, deliverable_uid)]
        self.bytes = {"to_deliverable": 0, "to_suite": 0}
        self.conns: list[socket.socket] = []

    def _run(self) -> None:
        try:
            for listener in self.listeners:
                conn = self._accept(listener)
                if conn is None:
                    return
                self.conns.append(conn)
                listener.close()  # one connection per side, ever
            self._pump(*self.conns)
        except OSError:
            pass
        for conn in self.conns:  # one side hung up (or broke): the other learns at once
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _pump(self, suite: socket.socket, deliverable: socket.socket) -> None:
        route = {suite.fileno(): (suite, deliverable, "to_deliverable"),
                 deliverable.fileno(): (deliverable, suite, "to_suite")}  # fmt: skip
        while True:
            ready, _, _ = select.select([*route, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            for fd in ready:
                source, target, counter = route[fd]
                data = source.recv(CHUNK)
                if not data:  # one side hung up: so does the other
                    return
                target.sendall(data)
                self.bytes[counter] += len(data)

    def close(self) -> None:
        for conn in self.conns:  # unblocks a send to a side that stopped reading
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        super().close()
        for sock in [*self.listeners, *self.conns]:
            sock.close()
        for path in self.paths:
            path.unlink(missing_ok=True)


class ReportSink(_Channel):
    """Keeps what the first connection sends, up to ``cap`` bytes; refuses every later one."""

    def __init__(self, path: Path, uid: int, cap: int):
        super().__init__()
        self.path, self.cap = path, cap
        self.listener = listen(path, uid)
        self._data = bytearray()
        self.over_cap = False

    def _run(self) -> None:
        conn = None
        try:
            conn = self._accept(self.listener)
            self.listener.close()  # nobody else may ever speak here
            if conn is None:
                return
            while True:
                ready, _, _ = select.select([conn.fileno(), self._wake_r], [], [])
                if conn.fileno() not in ready:  # closed, and nothing more to read
                    return
                data = conn.recv(CHUNK)
                if not data:
                    return
                self._data += data
                if len(self._data) > self.cap:
                    self.over_cap = True
                    return
        except OSError:
            return
        finally:
            if conn is not None:
                conn.close()

    def data(self) -> bytes:
        """What the launcher sent; call after ``close()`` (the thread is stopped)."""
        return bytes(self._data)

    def close(self) -> None:
        super().close()
        self.listener.close()
        self.path.unlink(missing_ok=True)
