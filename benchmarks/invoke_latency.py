"""Invoke latency: the kernel invoking a trivial artifact, next to its baselines.

Measured in the same run, on the same image:
  - kernel API:  Kernel.invoke() of a trivial artifact (fresh hardened container, metered,
                 ledger rows, SQLite records), per runtime;
  - kernel CLI:  `kernel invoke` as a user runs it (adds Python start-up and imports);
  - docker run:  plain `docker run --rm IMAGE python3 -c ...`, per runtime;
  - python3 -c:  a bare Python on the host.

Usage: python benchmarks/invoke_latency.py [--n 20]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kernel.api import Kernel
from kernel.sandbox import image
from kernel.sandbox.docker import connect
from kernel.settings import Settings

TRIVIAL = "def main(v):\n    return v\n"
MANIFEST = '[project]\nname = "trivial"\nversion = "1"\n[tool.kernel]\nkind = "code"\nentrypoint = "art:main"\n'


def timed(fn: Callable[[], object], n: int) -> list[float]:
    fn()  # warm-up, not counted
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return samples


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def run_ok(cmd: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, check=True, capture_output=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="timed iterations per row (default 20)")
    args = parser.parse_args()

    client = connect()
    tag = image.require(client).tag
    runtimes = [r for r in ("runc", "runsc") if r in client.info().get("Runtimes", {})]
    client.close()
    home = Path(tempfile.mkdtemp(prefix="bench-"))
    pkg = home / "pkg"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(MANIFEST)
    (pkg / "art.py").write_text(TRIVIAL)
    docker = shutil.which("docker") or "docker"
    kernel_cli = [sys.executable, "-m", "kernel.cli"]

    rows: list[tuple[str, list[float]]] = []
    try:
        rows.append(("python3 -c (host)", timed(lambda: run_ok(["python3", "-c", "pass"]), args.n)))
        for rt in runtimes:
            k = Kernel(Settings(home=home / "state", runtime=rt))
            if rt == runtimes[0]:
                k.create_principal("bench", 0)
            art = k.submit(pkg, "bench").artifact.id
            cmd = [docker, "run", "--rm", "--network=none", f"--runtime={rt}", tag, "python3", "-c", "pass"]
            rows.append((f"docker run --rm ({rt})", timed(lambda cmd=cmd: run_ok(cmd), args.n)))

            def invoke(k: Kernel = k, art: str = art) -> None:
                assert k.invoke(art, "bench", {"x": 1}).status == "ok"

            rows.append((f"kernel API invoke ({rt})", timed(invoke, args.n)))
            env = {**os.environ, "KERNEL_HOME": str(home / "state"), "KERNEL_RUNTIME": rt}
            cli = [*kernel_cli, "invoke", art, "--as", "bench", "--input", "1"]
            rows.append((f"kernel CLI invoke ({rt})", timed(lambda cli=cli, env=env: run_ok(cli, env), args.n)))
            k.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)

    base = {label: statistics.median(xs) for label, xs in rows}
    print(f"invoke latency, n={args.n} per row, image {tag}, {os.cpu_count()} cores")
    print(f"{'what':<28}{'median s':>10}{'p95 s':>10}{'x docker run':>14}{'x python3':>11}")
    for label, xs in rows:
        rt = label[label.find("(") + 1 : -1] if "(" in label and "host" not in label else None
        vs_docker = statistics.median(xs) / base[f"docker run --rm ({rt})"] if rt else float("nan")
        vs_python = statistics.median(xs) / base["python3 -c (host)"]
        shown = f"{vs_docker:.2f}" if rt else "-"
        print(f"{label:<28}{statistics.median(xs):>10.3f}{p95(xs):>10.3f}{shown:>14}{vs_python:>11.1f}")


if __name__ == "__main__":
    main()
