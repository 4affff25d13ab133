"""A seeded world of the shipped policies: agent-steps per second, the host CPU a step costs
outside its sandbox, and the ledger check, next to a baseline measured in the same run.

Two worlds (the example world: a firm, a swarm, builders, testers, generalists,
free-riders, liars, a thinker asking llm-echo; the Mint's 31 tasks):
  - in-process: the trusted backend (the policy runs in the kernel's process, on the run's
    real proxy socket; holds, settlement, audit events as always; suites judged by pytest
    on the host), default 24 agents x 200 ticks;
  - Docker: every step, component, check and judgement in a fresh container from the warm
    pool (runtime: KERNEL_RUNTIME, default gVisor when installed), default 10 agents x 10 ticks.

Baseline: starting the real interpreter (`python -c pass`, no shim), timed once after
every tick, interleaved with the world, so that the ratio is a step's cost in units of
the cheapest possible isolation (a fresh process). A step's time is its tick's wall time
divided by the agents that stepped; medians over ticks, with the 10th-90th percentiles.

CPU outside the sandbox: in-process, the kernel process's CPU (and its pytest children)
minus the CPU spent inside policy code (thread time around each run); on Docker, the
host's busy CPU (/proc/stat) minus the CPU the runs' cgroups measured.

Usage: python benchmarks/world.py [--agents 24] [--ticks 200] [--docker-agents 10]
       [--docker-ticks 10] [--seed 2] [--skip-docker] [--json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from judiciary.court import Court
from judiciary.trusted import HostSuiteRunner
from kernel.api import Kernel
from kernel.sandbox.trusted import TrustedPython
from kernel.settings import Settings
from kernel.world import scenario
from kernel.world.clock import World

PYTHON = os.path.realpath(sys.executable)  # the interpreter itself, never a shim


class TimedTrusted(TrustedPython):
    """The trusted backend, counting the CPU spent inside policy code (per thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0.0
        self._lock = threading.Lock()

    def run(self, spec: Any, slot: Any, stop: Any = None) -> Any:
        start = time.thread_time()
        try:
            return super().run(spec, slot, stop)
        finally:
            with self._lock:
                self.inside += time.thread_time() - start


def host_busy() -> float:
    """Seconds of CPU the whole host has been busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def python_start() -> float:
    t = time.perf_counter()
    subprocess.run([PYTHON, "-c", "pass"], check=True)
    return time.perf_counter() - t


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_world(kernel: Kernel, court: Court, agents: int, ticks: int, seed: int, label: str) -> dict[str, Any]:
    w = World(kernel, court)
    w.start(seed)
    scenario.example(w, agents)
    per_step, baseline = [], []
    cpu0, busy0, wall0 = own_cpu(), host_busy(), time.perf_counter()
    console = Console(stderr=True)
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(label, total=ticks)
        for _ in range(ticks):
            t = time.perf_counter()
            before = w.db.one("SELECT COUNT(*) AS n FROM steps")["n"]  # type: ignore[index]
            w.run(1)
            stepped = w.db.one("SELECT COUNT(*) AS n FROM steps")["n"] - before  # type: ignore[index]
            per_step.append((time.perf_counter() - t) / max(1, stepped))
            baseline.append(python_start())
            bar.advance(task)
    wall = time.perf_counter() - wall0 - sum(baseline)
    cpu, busy = own_cpu() - cpu0, host_busy() - busy0
    steps = w.db.one("SELECT COUNT(*) AS n FROM steps")["n"]  # type: ignore[index]
    sandbox_cpu = sum(r.usage.cpu_seconds for r in kernel.runs(10**6))
    story = scenario.walkthrough(w)
    report = kernel.ledger_check()
    return {
        "world": label,
        "agents": agents,
        "ticks": ticks,
        "steps": steps,
        "runs": len(kernel.runs(10**6)),
        "steps_per_second": steps / wall,
        "step_ms_median": statistics.median(per_step) * 1000,
        "step_ms_p10": pct(per_step, 0.1) * 1000,
        "step_ms_p90": pct(per_step, 0.9) * 1000,
        "python_start_ms_median": statistics.median(baseline) * 1000,
        "ratio_to_python_start": statistics.median(per_step) / statistics.median(baseline),
        "kernel_cpu_ms_per_step": cpu / steps * 1000,
        "host_busy_ms_per_step": busy / steps * 1000,
        "sandbox_cpu_ms_per_step": sandbox_cpu / steps * 1000,
        "share_outside_sandbox": None,
        "ledger_ok": report.ok,
        "supply": report.supply,
        "built_on_others": len(story["built_on_others"]),
        "configs_bought": len(story["bought_config"]),
        "escrows_released": sum(x["n"] for x in story["escrows_won"]),
        "_busy": busy,
        "_sandbox_cpu": sandbox_cpu,
        "_cpu": cpu,
    }


def in_process(agents: int, ticks: int, seed: int, root: Path) -> dict[str, Any]:
    s = Settings(home=root / "inprocess", audit_common_corpus=[], reason_model="echo")
    sandbox = TimedTrusted()
    k = Kernel(s, sandbox=sandbox, image="trusted")
    runner = HostSuiteRunner(s)
    result = run_world(k, Court(k, runner=lambda: runner), agents, ticks, seed, "in-process")
    result["share_outside_sandbox"] = 1 - sandbox.inside / result["_cpu"]
    result["sandbox_cpu_ms_per_step"] = sandbox.inside / result["steps"] * 1000
    k.close()
    return result


def docker(agents: int, ticks: int, seed: int, root: Path) -> dict[str, Any]:
    s = Settings(home=root / "docker", audit_common_corpus=[], reason_model="echo", pool=True)
    k = Kernel(s)
    result = run_world(k, Court(k), agents, ticks, seed, f"docker ({k.sandbox.runtime(s.runtime)})")
    result["share_outside_sandbox"] = 1 - result["_sandbox_cpu"] / result["_busy"]
    k.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=24)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--docker-agents", type=int, default=10)
    parser.add_argument("--docker-ticks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--skip-docker", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="world-bench-") as tmp:
        results = [in_process(args.agents, args.ticks, args.seed, Path(tmp))]
        if not args.skip_docker:
            results.append(docker(args.docker_agents, args.docker_ticks, args.seed, Path(tmp)))
    results = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(
            f"{r['world']}: {r['agents']} agents x {r['ticks']} ticks = {r['steps']} steps ({r['runs']} runs):"
            f" {r['steps_per_second']:.1f} steps/s; a step {r['step_ms_median']:.1f} ms"
            f" (p10-p90 {r['step_ms_p10']:.1f}-{r['step_ms_p90']:.1f}) = {r['ratio_to_python_start']:.2f}x"
            f" a python start ({r['python_start_ms_median']:.1f} ms)"
        )
        print(
            f"  CPU per step: kernel process {r['kernel_cpu_ms_per_step']:.1f} ms, host busy"
            f" {r['host_busy_ms_per_step']:.1f} ms, inside the sandbox {r['sandbox_cpu_ms_per_step']:.1f} ms;"
            f" share outside the sandbox {r['share_outside_sandbox']:.0%}"
        )
        print(
            f"  ledger check {'ok' if r['ledger_ok'] else 'BROKEN'} (supply {r['supply']});"
            f" {r['built_on_others']} artifacts built on another's, {r['configs_bought']} configs bought,"
            f" {r['escrows_released']} escrows released"
        )


if __name__ == "__main__":
    main()
