"""Proxy round trip: a kernel_client.balance() call from inside a sandbox.

For each runtime, in the same run:
  - kernel:   an artifact calls balance() N times through the kernel proxy (validation,
              a SQLite read, an audit event per call), timing each call inside the sandbox;
  - baseline: the same line-delimited JSON exchange over the same kind of mounted host
              Unix socket to a server that answers at once, without validation or SQLite.

Usage: python benchmarks/proxy_roundtrip.py [--calls 500]
"""

import argparse
import json
import socket
import statistics
import tempfile
import threading
from pathlib import Path

from kernel.api import Kernel
from kernel.runs import owner_labels, sandbox_spec, shape
from kernel.sandbox.base import SOCKET_DIR, Dir
from kernel.sandbox.docker import DockerSandbox
from kernel.sandbox.image import require
from kernel.settings import Settings
from kernel.sockets import bind_unix

ARTIFACT = """
import time, kernel_client as kc

def main(n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        kc.balance()
        out.append(time.perf_counter() - t)
    return out
"""

CLIENT = """
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect("/kernel/sock/echo.sock"); f = s.makefile("rwb")
out = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    f.write(b'{"op": "balance", "args": {}}\\n'); f.flush(); f.readline()
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"""


def echo_server(path: Path) -> socket.socket:
    srv = socket.socket(socket.AF_UNIX)
    bind_unix(srv, path)
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        f = conn.makefile("rwb")
        while f.readline():
            f.write(b'{"ok": true, "value": 0}\n')
            f.flush()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def baseline(sandbox: DockerSandbox, image: str, runtime: str, calls: int, tmp: Path) -> list[float]:
    settings = Settings(home=tmp / "home")
    limits = settings.default_limits
    sock = Dir(name="sock", target=SOCKET_DIR, writable=True)
    shaped = shape(settings, image=image, runtime=runtime, limits=limits, dirs=(sock,))
    slot = sandbox.slot(shaped, tmp / "runs", owner_labels(settings))
    try:
        srv = echo_server(slot.rundir.sock / "echo.sock")
        spec = sandbox_spec(settings, run_id=f"bench-{runtime}", slot=slot,
                            command=["python3", "-c", CLIENT, str(calls)], limits=limits)  # fmt: skip
        outcome = sandbox.run(spec, slot)
        srv.close()
    finally:
        slot.close()
    return list(json.loads(outcome.stdout))


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    sandbox = DockerSandbox()
    image = require(sandbox.client).tag
    runtimes = [r for r in ("runc", "runsc") if r in sandbox.runtimes()]
    print(f"balance() round trip from inside the sandbox, {args.calls} calls per row (ms)")
    print(f"{'what':<34}{'median':>9}{'p95':>9}{'x baseline':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "pkg"
        pkg.mkdir()
        (pkg / "pyproject.toml").write_text(
            '[project]\nname = "rt"\nversion = "1"\n[tool.kernel]\nkind = "code"\nentrypoint = "art:main"\n'
        )
        (pkg / "art.py").write_text(ARTIFACT)
        for rt in runtimes:
            base = baseline(sandbox, image, rt, args.calls, Path(tmp))[5:]  # drop connection set-up
            k = Kernel(Settings(home=Path(tmp) / "home", runtime=rt))
            if not k.principals():
                k.create_principal("bench")
            run = k.invoke(k.submit(pkg, "bench").artifact.id, "bench", args.calls)
            assert run.status == "ok", run.reason
            full = list(run.output)[5:]
            k.close()
            ratio = statistics.median(full) / statistics.median(base)
            for label, xs, r in ((f"echo socket, no kernel ({rt})", base, 1.0), (f"kernel proxy ({rt})", full, ratio)):
                print(f"{label:<34}{statistics.median(xs) * 1e3:>9.3f}{p95(xs) * 1e3:>9.3f}{r:>12.2f}")
    sandbox.close()


if __name__ == "__main__":
    main()
