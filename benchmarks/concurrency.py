"""Concurrency: P parallel invokers on one home, next to P parallel `docker run --rm` of the
same image, per runtime, in the same run.

For each runtime and each P in 1, 2, 4, 8, P workers invoke back to back for --seconds:
  - daemon invoke:  HTTP clients of `kernel serve` (its warm pool; on demand when drained);
  - kernel invoke:  `kernel invoke` processes with no daemon (KERNEL_NO_DAEMON=1), today's path;
  - docker run:     `docker run --rm --network=none IMAGE python3 -c pass` processes.
A row gives completed runs per second, failures (anything but a clean run), the median
latency of one run, and host CPU-seconds per run (all cores, from /proc/stat, so dockerd,
containerd and gVisor count as they should). Rows alternate per P, so noise falls on all.

Usage: python benchmarks/concurrency.py [--seconds 20] [--p 1,2,4,8]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kernel.client import Client
from kernel.sandbox import image
from kernel.sandbox.docker import connect
from kernel.service.spawn import Daemon

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
    latencies: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")

    @property
    def rate(self) -> float:
        return self.runs / self.seconds

    @property
    def cpu_per_run(self) -> float:
        return self.cpu / max(1, self.runs)


def process(cmd: list[str], env: dict[str, str]) -> Callable[[], str | None]:
    """One run as a process; returns why it failed, or None."""

    def once() -> str | None:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["?"])[-1][:160]

    return once


def load(what: str, runtime: str, p: int, make: Callable[[], Callable[[], str | None]], seconds: float) -> Row:
    """P workers, each with its own ``make()``, running one back to back for ``seconds``."""
    row = Row(what, runtime, p, 0, 0, 0.0, 0.0)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    runners = [make() for _ in range(p)]

    def worker(once: Callable[[], str | None]) -> None:
        while time.monotonic() < stop_at:
            t = time.monotonic()
            failure = once()
            with lock:
                if failure is None:
                    row.runs += 1
                    row.latencies.append(time.monotonic() - t)
                else:
                    row.failures += 1
                    row.first_failure = row.first_failure or failure

    cpu0, t0 = busy_seconds(), time.monotonic()
    threads = [threading.Thread(target=worker, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row.seconds, row.cpu = time.monotonic() - t0, busy_seconds() - cpu0
    return row


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
    kernel = [str(Path(sys.executable).parent / "kernel")]  # the console script, on the venv's interpreter
    console = Console(stderr=True)
    rows: list[Row] = []
    try:
        for rt in runtimes:
            rows += one_runtime(rt, levels, args.seconds, work, pkg, kernel, docker, tag, console)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows, args.seconds)


def one_runtime(rt: str, levels: list[int], seconds: float, work: Path, pkg: Path, kernel: list[str],
                docker: str, tag: str, console: Console) -> list[Row]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    env.update(KERNEL_HOME=str(work / f"home-{rt}"), KERNEL_RUNTIME=rt, KERNEL_AUDIT_COMMON_CORPUS="[]",
               KERNEL_NO_DAEMON="1")  # fmt: skip
    subprocess.run([*kernel, "principal", "create", "bench", "--grant", "100"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    out = subprocess.run([*kernel, "submit", str(pkg), "--as", "bench", "--json"], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    art = out.split('"id": "')[1].split('"')[0]
    invoke = [*kernel, "invoke", art, "--as", "bench", "--input", '{"x": 1}']
    plain = [docker, "run", "--rm", "--network=none", f"--runtime={rt}", tag, "python3", "-c", "pass"]
    for cmd in (invoke, plain):  # warm caches: image layers, the unpacked package
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    rows: list[Row] = []
    with Daemon(work / f"served-{rt}", {"KERNEL_RUNTIME": rt, "KERNEL_POOL_MAX": str(2 * max(levels))}) as d:
        with d.local() as local:
            local.create_principal("bench", 100)
            served = local.submit(pkg, "bench")["artifact"]["id"]
            token = local.create_token("bench")["token"]
        d.wait_pool(1)

        def client() -> Callable[[], str | None]:
            api = Client(d.url, token)

            def once() -> str | None:
                run = api.invoke(served, value={"x": 1})
                return None if run["status"] == "ok" else f"{run['status']}: {run['reason']}"

            return once

        for p in levels:
            for what, make in (
                ("daemon invoke", client),
                ("kernel invoke", lambda: process(invoke, env)),
                ("docker run --rm", lambda: process(plain, env)),
            ):
                console.print(f"[dim]{rt}: P={p} {what} ...[/dim]")
                rows.append(load(what, rt, p, make, seconds))
        with d.local() as local:
            console.print(f"[dim]{rt}: after the load, daemon's ledger check ok: {local.ledger_check()['ok']}[/dim]")
    check = subprocess.run([*kernel, "ledger", "check"], env=env, capture_output=True, text=True)
    console.print(f"[dim]{rt}: after the load, ledger check: {check.stdout.strip()}[/dim]")
    return rows


def print_table(rows: list[Row], seconds: float) -> None:
    table = Table(title=f"P parallel invokers on one home, {seconds:.0f} s per row, {os.cpu_count()} cores")
    for col in ("runtime", "P", "invoker", "runs/s", "failures", "p50 ms", "host CPU s/run", "vs docker run"):
        table.add_column(col, justify="right" if col not in ("runtime", "invoker") else "left")
    by_key = {(r.runtime, r.p, r.what): r for r in rows}
    for r in rows:
        base = by_key[(r.runtime, r.p, "docker run --rm")]
        ratio = ""
        if r.what != "docker run --rm" and base.rate and base.cpu_per_run:
            ratio = f"{r.rate / base.rate:.2f}x rate, {r.cpu_per_run / base.cpu_per_run:.2f}x CPU"
        table.add_row(r.runtime, str(r.p), r.what, f"{r.rate:.2f}", str(r.failures), f"{r.p50 * 1000:.0f}",
                      f"{r.cpu_per_run:.2f}", ratio)  # fmt: skip
    Console(width=130).print(table)
    for r in rows:
        if r.failures:
            print(f"first failure of {r.what} ({r.runtime}, P={r.p}): {r.first_failure}")


if __name__ == "__main__":
    main()
