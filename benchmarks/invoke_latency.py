"""Invoke latency: the kernel invoking a trivial artifact, next to its baselines.

Measured in the same run, interleaved (one sample of every row per round), on the same image:
  - python3 -c pass:  a bare Python on the host, the real interpreter (no version-manager shim);
  - docker run --rm:  plain `docker run --rm --network=none IMAGE python3 -c pass`, per runtime;
  - daemon API:       `kernel.client.Client.invoke()` over HTTP to `kernel serve` (a pooled,
                      fresh, hardened container; metered, ledger rows, SQLite records), per runtime;
  - daemon CLI:       `kernel invoke` while the daemon serves the home (the thin client), per runtime;
  - in-process API:   `Kernel.invoke()` with no daemon and no pool (a container made on demand);
  - in-process CLI:   `kernel invoke` with no daemon (KERNEL_NO_DAEMON=1: imports, set-up, a container).

Usage: python benchmarks/invoke_latency.py [--n 20] [--json]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kernel.api import Kernel
from kernel.client import Client
from kernel.sandbox import image
from kernel.sandbox.docker import connect
from kernel.service.spawn import Daemon
from kernel.settings import Settings

TRIVIAL = "def main(v):\n    return v\n"
MANIFEST = '[project]\nname = "trivial"\nversion = "1"\n[tool.kernel]\nkind = "code"\nentrypoint = "art:main"\n'
PYTHON = os.path.realpath(sys.executable)  # the interpreter itself, never a shim
KERNEL = str(Path(sys.executable).parent / "kernel")  # the console script a user runs


def run_ok(cmd: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, check=True, capture_output=True, env=env)


def interleaved(rows: dict[str, Callable[[], object]], n: int) -> dict[str, list[float]]:
    """``n`` rounds; each round times every row once, in an order rotated per round."""
    samples: dict[str, list[float]] = {label: [] for label in rows}
    labels = list(rows)
    for fn in rows.values():
        fn()  # warm-up, not counted
    for i in range(n):
        for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
            t = time.perf_counter()
            rows[label]()
            samples[label].append(time.perf_counter() - t)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="rounds (samples per row, default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    client = connect()
    tag = image.require(client).tag
    runtimes = [r for r in ("runc", "runsc") if r in client.info().get("Runtimes", {})]
    client.close()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    pkg = work / "pkg"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(MANIFEST)
    (pkg / "art.py").write_text(TRIVIAL)
    docker = shutil.which("docker") or "docker"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}

    rows: dict[str, Callable[[], object]] = {"python3 -c pass (host)": lambda: run_ok([PYTHON, "-c", "pass"])}
    kernels: list[Kernel] = []
    daemons: list[Daemon] = []
    clients: list[Client] = []
    try:
        for rt in runtimes:
            settings = Settings(home=work / f"inproc-{rt}", runtime=rt, audit_common_corpus=[])
            k = Kernel(settings)
            kernels.append(k)
            k.create_principal("bench", 0)
            art = k.submit(pkg, "bench").artifact.id
            served = work / f"served-{rt}"
            d = Daemon(served, {"KERNEL_RUNTIME": rt, "KERNEL_POOL_MIN": "2"}).__enter__()
            daemons.append(d)
            with d.local() as local:
                local.create_principal("bench", 0)
                local.submit(pkg, "bench")
                token = local.create_token("bench")["token"]
            api = Client(d.url, token)
            clients.append(api)
            d.wait_pool(2)
            plain = [docker, "run", "--rm", "--network=none", f"--runtime={rt}", tag, "python3", "-c", "pass"]
            thin_env = {**base_env, "KERNEL_HOME": str(served)}
            inproc_env = {**base_env, "KERNEL_HOME": str(settings.home), "KERNEL_RUNTIME": rt, "KERNEL_NO_DAEMON": "1"}
            cli = [KERNEL, "invoke", art, "--as", "bench", "--input", "1"]

            def ok(run: Any) -> None:
                status = run["status"] if isinstance(run, dict) else run.status
                assert status == "ok", run

            rows[f"docker run --rm ({rt})"] = lambda cmd=plain: run_ok(cmd)
            rows[f"daemon API invoke ({rt})"] = lambda api=api, art=art: ok(api.invoke(art, value={"x": 1}))
            rows[f"daemon CLI invoke ({rt})"] = lambda env=thin_env, cli=cli: run_ok(cli, env)
            rows[f"in-process API invoke ({rt})"] = lambda k=k, art=art: ok(k.invoke(art, "bench", {"x": 1}))
            rows[f"in-process CLI invoke ({rt})"] = lambda env=inproc_env, cli=cli: run_ok(cli, env)
        help_env = {**base_env, "KERNEL_HOME": str(work / f"served-{runtimes[0]}")}
        rows["kernel --help (daemon)"] = lambda: run_ok([KERNEL, "--help"], help_env)
        rows["kernel --help (no daemon)"] = lambda: run_ok([KERNEL, "--help"], {**help_env, "KERNEL_NO_DAEMON": "1"})
        samples = interleaved(rows, args.n)
    finally:
        for c in clients:
            c.close()
        for d in daemons:
            d.stop()
        for k in kernels:
            k.close()
        shutil.rmtree(work, ignore_errors=True)
    report(samples, tag, args.n, args.json)


def report(samples: dict[str, list[float]], tag: str, n: int, as_json: bool) -> None:
    med = {label: statistics.median(xs) for label, xs in samples.items()}
    python = med["python3 -c pass (host)"]
    out: list[dict[str, Any]] = []
    for label, xs in samples.items():
        rt = label[label.find("(") + 1 : -1] if label.endswith(("(runc)", "(runsc)")) else None
        docker = med.get(f"docker run --rm ({rt})") if rt else None
        row = {"what": label, "median_ms": med[label] * 1000, "min_ms": min(xs) * 1000, "max_ms": max(xs) * 1000}
        row.update(x_python=med[label] / python, x_docker_run=med[label] / docker if docker else None)
        out.append(row)
    if as_json:
        print(json.dumps({"image": tag, "n": n, "python": PYTHON, "rows": out}, indent=2))
        return
    table = Table(title=f"invoke latency, {n} interleaved rounds, image {tag}, {os.cpu_count()} cores")
    for col in ("what", "median ms", "min-max ms", "x python3 -c pass", "x docker run"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for r in out:
        vs_docker = f"{r['x_docker_run']:.2f}" if r["x_docker_run"] else "-"
        table.add_row(r["what"], f"{r['median_ms']:.1f}", f"{r['min_ms']:.1f}-{r['max_ms']:.1f}",
                      f"{r['x_python']:.2f}", vs_docker)  # fmt: skip
    Console(width=130).print(table)
    print(f"baseline interpreter: {PYTHON}")


if __name__ == "__main__":
    main()
