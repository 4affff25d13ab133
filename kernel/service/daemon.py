"""`kernel serve`: one long-lived daemon per home.

It holds the database, the engine client, the image and a warm pool of fresh containers;
sweeps once at start; serves the HTTP API on ``--listen`` (tokens) and on the home's Unix
socket ``daemon.sock`` (mode 0600: the home's owner, for the thin CLI). A second daemon
for the same home is refused. SIGTERM or SIGINT stops it: requests in flight finish,
every settled run's audit is committed, the pool's containers are removed.
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kernel import process
from kernel.errors import HomeError, InvalidInput
from kernel.settings import Settings
from kernel.sockets import bind_unix, connect_unix

SOCKET_NAME = "daemon.sock"
INFO_NAME = "daemon.json"


def socket_path(settings: Settings) -> Path:
    return settings.home / SOCKET_NAME


def info_path(settings: Settings) -> Path:
    return settings.home / INFO_NAME


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"--listen {listen!r} is not HOST:PORT; e.g. --listen 127.0.0.1:8765.")
    return host, int(port)


def running(settings: Settings) -> dict[str, Any] | None:
    """The daemon serving this home, if one answers on its socket."""
    path = socket_path(settings)
    if not path.exists():
        return None
    try:
        connect_unix(str(path), timeout=2).close()
    except OSError:
        return None
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(info_path(settings).read_text())
        if isinstance(info, dict):
            return info
    return {"socket": str(path)}


def _listeners(settings: Settings, listen: str) -> tuple[socket.socket, socket.socket]:
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    tcp = socket.socket(family, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        tcp.bind((host, port))
    except OSError as exc:
        tcp.close()
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        raise InvalidInput(f"--listen {listen}: the address {why}; pick another, e.g. --listen 127.0.0.1:0.") from exc
    path = socket_path(settings)
    path.unlink(missing_ok=True)  # a dead daemon's (running() found nobody answering)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bind_unix(unix, path, mode=0o600)
    for sock in (tcp, unix):
        sock.listen(512)
        sock.setblocking(False)
    return tcp, unix


def serve(
    settings: Settings, listen: str | None = None, on_ready: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """Run the daemon for ``settings.home`` until SIGTERM or SIGINT."""
    import uvicorn

    from kernel.api import Kernel
    from kernel.service import bridge
    from kernel.service.app import create_app

    settings = settings.model_copy(update={"pool": True})
    kernel = Kernel(settings, background_audit=True)
    try:
        lock = _lock(settings)
    except BaseException:
        kernel.close()
        raise
    try:
        kernel.writing()
        swept = kernel.sweep()
        kernel.warm_pool()
        _warm_judges(kernel)
        app = create_app(kernel)
        bridge.install(app, kernel)
        tcp, unix = _listeners(settings, listen or settings.listen)
        host, port = tcp.getsockname()[:2]
        info = {
            "pid": os.getpid(),
            "process": process.token(),
            "url": f"http://{host if ':' not in host else f'[{host}]'}:{port}",
            "socket": str(socket_path(settings)),
            "started_at": datetime.now(UTC).isoformat(),
            "swept": {k: len(v) for k, v in swept.items()},
        }
        info_path(settings).write_text(json.dumps(info))
        if on_ready is not None:
            on_ready(info)
        # a stop lets requests in flight end: a run may last its wall limit
        grace = settings.max_limits.wall_seconds + 60
        # no proxy headers: a client address is the socket's, never an X-Forwarded-For it sends
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=grace,
                                proxy_headers=False)  # fmt: skip
        server = uvicorn.Server(config)
        app.state.stopping = lambda: server.should_exit  # long-lived streams end when the daemon stops
        logging.getLogger("kernel.service").info("serving %s on %s and %s", settings.home, info["url"], info["socket"])
        # uvicorn re-raises the signal that stopped it once it has stopped: end this process by
        # SystemExit then (not by the default action), so that what follows still runs.
        signal.signal(signal.SIGTERM, _exit)
        server.run(sockets=[tcp, unix])
    finally:
        info_path(settings).unlink(missing_ok=True)
        socket_path(settings).unlink(missing_ok=True)
        kernel.close()
        os.close(lock)
        sys.stdout.flush()


def _warm_judges(kernel: Any) -> None:
    """One warm container of each of a judgement's two shapes: verdicts start warm too."""
    from judiciary.runner import judge_shapes
    from kernel.runs import owner_labels

    pool = getattr(kernel.sandbox, "pool", None)
    if pool is None:
        return
    s = kernel.settings
    for shape in judge_shapes(s, kernel.image(), kernel.sandbox.runtime(s.runtime)):
        pool.warm(shape, s.run_dir, owner_labels(s), minimum=1)


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _lock(settings: Settings) -> int:
    """Hold the home's daemon lock for this process's life; refuse if another daemon holds it."""
    fd = os.open(settings.home / "daemon.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        other = running(settings) or {}
        raise HomeError(
            f"a daemon already serves {settings.home} (pid {other.get('pid', '?')}); stop it first."
        ) from None
    return fd
