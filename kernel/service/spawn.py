"""A `kernel serve` child process: started on a home, ready when it says so, stopped by its pid.

For tests, benchmarks and scripts that bring a daemon up and down around their work::

    with Daemon(Path("/srv/kernel-home")) as d:
        Client(d.url, token).invoke(...)
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kernel.client import Client


class Daemon:
    def __init__(self, home: Path, env: dict[str, str] | None = None, listen: str = "127.0.0.1:0"):
        self.home, self.listen = home, listen
        self.env = {**os.environ, "KERNEL_AUDIT_COMMON_CORPUS": "[]", **(env or {})}
        self.env.pop("KERNEL_HOME", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> "Daemon":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kernel.cli", "--home", str(self.home), "serve", "--listen", self.listen],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        info = self.home / "daemon.json"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise RuntimeError(f"kernel serve exited {self.proc.returncode}: {err.decode()[-2000:]}")
            if info.exists():
                try:
                    self.info = json.loads(info.read_text())
                except ValueError:
                    self.info = {}
                if self.info.get("pid") == self.proc.pid:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("kernel serve did not become ready in 120 s")

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def local(self) -> Client:
        """A client on the home's Unix socket (an operator's rights, no token)."""
        return Client(f"unix:{self.home / 'daemon.sock'}")

    def get(self, path: str) -> bytes:
        with self.local() as client:
            return json.dumps(client.request("GET", path)).encode()

    def wait_pool(self, n: int, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status = json.loads(self.get("/v1/pool"))
            if any(s["ready"] >= n for s in status.get("shapes", {}).values()):
                return
            time.sleep(0.1)
        raise AssertionError(f"the daemon's pool did not reach {n}: {status}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> tuple[bytes, bytes]:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out, err

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.stop()
