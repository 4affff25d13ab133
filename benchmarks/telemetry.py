"""What telemetry costs a world: each tick's snapshot against the tick's own cost, and serving
the dashboard's data for the whole history, next to baselines measured in the same run.

The world: the example world (`kernel world example`: a firm, a guild, builders, testers,
generalists, free-riders, liars, a thinker asking llm-echo; the Mint's 31 tasks) on the
trusted in-process backend, default 100 agents x 1,000 ticks, with the auditor's scan every
KERNEL_AUDIT_EVERY_TICKS ticks as in any world.

Figures:
  - snapshot: the time `snapshot.take` spends at the end of each tick (timed inside the world's
    own call), against the rest of that tick (its steps, judgements and the Mint); medians and
    the 10th-90th percentiles, over the first and the last tenth of the ticks (a snapshot reads
    what its tick added, so its cost must not grow with the history);
  - the dashboard: `GET /v1/telemetry/dashboard` (every panel, the full series) through the
    daemon's own app, against the baseline of reading the raw snapshot rows from SQLite; and
    `GET /v1/telemetry/series` alone. Medians of --reps requests, interleaved.

Usage: python benchmarks/telemetry.py [--agents 100] [--ticks 1000] [--seed 2] [--reps 15] [--json]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from judiciary.court import Court
from judiciary.trusted import HostSuiteRunner
from kernel.api import Kernel
from kernel.sandbox.trusted import TrustedPython
from kernel.service import tokens
from kernel.service.app import create_app
from kernel.telemetry import snapshot
from kernel.world import clock, scenario
from kernel.world.clock import World


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "p10": pct(values, 0.1), "p90": pct(values, 0.9)}


class TimedSnapshots:
    """Stands in for the clock's `snapshot` module: times each `take`."""

    def __init__(self) -> None:
        self.by_tick: dict[int, float] = {}

    @property
    def took(self) -> list[float]:
        return [self.by_tick[t] for t in sorted(self.by_tick)]

    def take(self, db: Any, tick: int, window: int = 10) -> dict[str, Any]:
        t = time.perf_counter()
        try:
            return snapshot.take(db, tick, window)
        finally:  # the first call makes it; a run's start asks again for the last one (stored: not timed)
            self.by_tick.setdefault(tick, time.perf_counter() - t)


def run(agents: int, ticks: int, seed: int, reps: int, root: Path) -> dict[str, Any]:
    from kernel.settings import Settings

    s = Settings(home=root / "home", audit_common_corpus=[], reason_model="echo")
    k = Kernel(s, sandbox=TrustedPython(), image="trusted")
    runner = HostSuiteRunner(s)
    w = World(k, Court(k, runner=lambda: runner))
    w.start(seed)
    scenario.example(w, agents)
    timed = TimedSnapshots()
    clock.snapshot = timed  # type: ignore[assignment]
    tick_seconds: list[float] = []
    console = Console(stderr=True)
    with Progress(TextColumn("world"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("world", total=ticks)
        for _ in range(ticks):
            t = time.perf_counter()
            w.run(1)
            tick_seconds.append(time.perf_counter() - t)
            bar.advance(task)
    clock.snapshot = snapshot  # type: ignore[assignment]
    took = timed.took
    own = [total - snap for total, snap in zip(tick_seconds, took, strict=True)]
    ratios = [snap / rest for snap, rest in zip(took, own, strict=True)]
    tenth = max(1, ticks // 10)

    app = create_app(k)
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {tokens.create(k.db, None, admin=True)['token']}"}
    client.get("/v1/telemetry/dashboard", headers=auth)  # warm: the first answer imports networkx and lifelines
    board, series, raw, size = [], [], [], 0
    for _ in range(reps):  # interleaved: the three readings share the machine's moments
        t = time.perf_counter()
        answer = client.get("/v1/telemetry/dashboard", headers=auth)
        board.append(time.perf_counter() - t)
        assert answer.status_code == 200, answer.text
        size = len(answer.content)
        t = time.perf_counter()
        assert client.get("/v1/telemetry/series", headers=auth).status_code == 200
        series.append(time.perf_counter() - t)
        t = time.perf_counter()
        rows = k.db.rows("SELECT tick, metrics FROM telemetry_ticks ORDER BY tick")
        raw.append(time.perf_counter() - t)
        assert len(rows) == ticks
    report = k.ledger_check()
    steps = k.db.one("SELECT COUNT(*) AS n FROM steps")["n"]  # type: ignore[index]
    artifacts = k.db.one("SELECT COUNT(*) AS n FROM artifacts")["n"]  # type: ignore[index]
    runs = k.db.one("SELECT COUNT(*) AS n FROM runs")["n"]  # type: ignore[index]
    k.close()
    return {
        "agents": agents,
        "ticks": ticks,
        "steps": steps,
        "runs": runs,
        "artifacts": artifacts,
        "tick_ms": {n: v * 1000 for n, v in spread(own).items()},
        "snapshot_ms": {n: v * 1000 for n, v in spread(took).items()},
        "snapshot_ms_first_tenth": statistics.median(took[:tenth]) * 1000,
        "snapshot_ms_last_tenth": statistics.median(took[-tenth:]) * 1000,
        "snapshot_share_of_tick": {n: v for n, v in spread(ratios).items()},
        "dashboard_ms": {n: v * 1000 for n, v in spread(board).items()},
        "dashboard_bytes": size,
        "series_ms": {n: v * 1000 for n, v in spread(series).items()},
        "raw_rows_ms": {n: v * 1000 for n, v in spread(raw).items()},
        "ledger_ok": report.ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="telemetry-bench-") as tmp:
        r = run(args.agents, args.ticks, args.seed, args.reps, Path(tmp))
    if args.json:
        print(json.dumps(r, indent=2))
        return

    def ms(d: dict[str, float]) -> str:
        return f"{d['median']:.1f} ms (p10-p90 {d['p10']:.1f}-{d['p90']:.1f})"

    share = r["snapshot_share_of_tick"]
    print(f"world: {r['agents']} agents x {r['ticks']} ticks = {r['steps']} steps, {r['runs']} runs,"
          f" {r['artifacts']} artifacts; ledger check {'ok' if r['ledger_ok'] else 'BROKEN'}")  # fmt: skip
    print(f"a tick without its snapshot: {ms(r['tick_ms'])}")
    print(f"its snapshot: {ms(r['snapshot_ms'])} = {share['median']:.2%} of the tick"
          f" (p10-p90 {share['p10']:.2%}-{share['p90']:.2%})")  # fmt: skip
    print(f"  first tenth of the ticks {r['snapshot_ms_first_tenth']:.1f} ms, last tenth"
          f" {r['snapshot_ms_last_tenth']:.1f} ms")  # fmt: skip
    base = r["raw_rows_ms"]["median"]
    print(f"the dashboard's data for all {r['ticks']} ticks ({r['dashboard_bytes'] / 1024:.0f} KiB):"
          f" {ms(r['dashboard_ms'])} = {r['dashboard_ms']['median'] / base:.1f}x reading the raw snapshot rows"
          f" ({base:.1f} ms)")  # fmt: skip
    print(f"  the series alone: {ms(r['series_ms'])} = {r['series_ms']['median'] / base:.1f}x")


if __name__ == "__main__":
    main()
