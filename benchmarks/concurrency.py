"""Concurrency: P parallel `kernel invoke` processes on one home, next to P parallel
`docker run --rm` of the same image, per runtime, in the same run.

For each runtime and each P in 1, 2, 4, 8: P workers each start processes back to back
for --seconds; a row gives completed runs per second, failures (any exit that is not a
clean run, e.g. a race between kernels), and host CPU-seconds per run (all cores, from
/proc/stat, so dockerd, containerd and gVisor count as they should). Kernel and docker
rows alternate per P, so machine noise falls on both.

Usage: python benchmarks/concurrency.py [--seconds 20] [--p 1,2,4,8]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kernel.sandbox import image
from kernel.sandbox.docker import connect

TRIVIAL = "def main(v):\n    return v\n"
MANIFEST = '[project]\nname = "trivial"\nversion = "1"\n[tool.kernel]\nkind = "code"\nentrypoint = "art:main"\n'
TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU-seconds the whole host has spent not idle since boot (all cores)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


@dataclass
class Row:
    what: str
    runtime: str
    p: int
    runs: int
    failures: int
    seconds: float
    cpu: float
    first_failure: str = ""

    @property
    def rate(self) -> float:
        return self.runs / self.seconds

    @property
    def cpu_per_run(self) -> float:
        return self.cpu / max(1, self.runs)


def load(what: str, runtime: str, p: int, cmd: list[str], env: dict[str, str], seconds: float) -> Row:
    """P workers running ``cmd`` back to back for ``seconds``."""
    done, failed, first = [0], [0], [""]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < stop_at:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            with lock:
                if r.returncode == 0:
                    done[0] += 1
                else:
                    failed[0] += 1
                    first[0] = first[0] or (r.stderr.strip().splitlines() or ["?"])[-1][:160]

    cpu0, t0 = busy_seconds(), time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(p)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Row(what, runtime, p, done[0], failed[0], time.monotonic() - t0, busy_seconds() - cpu0, first[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="load time per row (default 20)")
    parser.add_argument("--p", default="1,2,4,8", help="parallelism levels (default 1,2,4,8)")
    args = parser.parse_args()
    levels = [int(x) for x in args.p.split(",")]

    client = connect()
    tag = image.require(client).tag
    runtimes = [r for r in ("runc", "runsc") if r in client.info().get("Runtimes", {})]
    client.close()
    work = Path(tempfile.mkdtemp(prefix="bench-conc-"))
    pkg = work / "pkg"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(MANIFEST)
    (pkg / "art.py").write_text(TRIVIAL)
    docker = shutil.which("docker") or "docker"
    kernel = [sys.executable, "-m", "kernel.cli"]  # the venv's interpreter itself (no shim)
    console = Console(stderr=True)
    rows: list[Row] = []
    try:
        for rt in runtimes:
            env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
            env.update(KERNEL_HOME=str(work / f"home-{rt}"), KERNEL_RUNTIME=rt, KERNEL_AUDIT_COMMON_CORPUS="[]")
            subprocess.run([*kernel, "principal", "create", "bench", "--grant", "100"], env=env, check=True,
                           capture_output=True)  # fmt: skip
            out = subprocess.run([*kernel, "submit", str(pkg), "--as", "bench", "--json"], env=env, check=True,
                                 capture_output=True, text=True).stdout  # fmt: skip
            art = out.split('"id": "')[1].split('"')[0]
            invoke = [*kernel, "invoke", art, "--as", "bench", "--input", '{"x": 1}']
            plain = [docker, "run", "--rm", "--network=none", f"--runtime={rt}", tag, "python3", "-c", "pass"]
            for cmd in (invoke, plain):  # warm caches: image layers, the unpacked package
                subprocess.run(cmd, env=env, check=True, capture_output=True)
            for p in levels:
                console.print(f"[dim]{rt}: P={p} kernel invoke ...[/dim]")
                rows.append(load("kernel invoke", rt, p, invoke, env, args.seconds))
                console.print(f"[dim]{rt}: P={p} docker run --rm ...[/dim]")
                rows.append(load("docker run --rm", rt, p, plain, env, args.seconds))
            check = subprocess.run([*kernel, "ledger", "check"], env=env, capture_output=True, text=True)
            console.print(f"[dim]{rt}: after the load, ledger check: {check.stdout.strip()}[/dim]")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = Table(title=f"P parallel processes on one home, {args.seconds:.0f} s per row, {os.cpu_count()} cores")
    for col in ("runtime", "P", "command", "runs/s", "failures", "host CPU s/run", "vs docker run"):
        table.add_column(col, justify="right" if col not in ("runtime", "command") else "left")
    by_key = {(r.runtime, r.p, r.what): r for r in rows}
    for r in rows:
        base = by_key[(r.runtime, r.p, "docker run --rm")]
        ratio = f"{r.rate / base.rate:.2f}x rate" if r.what == "kernel invoke" and base.rate else ""
        table.add_row(r.runtime, str(r.p), r.what, f"{r.rate:.2f}", str(r.failures), f"{r.cpu_per_run:.2f}", ratio)
    Console(width=120).print(table)
    for r in rows:
        if r.failures:
            print(f"first failure of {r.what} ({r.runtime}, P={r.p}): {r.first_failure}")


if __name__ == "__main__":
    main()
