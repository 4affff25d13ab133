"""Judge overhead: time to a verdict for a 50-test suite, next to plain pytest in Docker.

Measured in the same run, per runtime, on the same image, suite and deliverable:
  - judge:        Court.judge(): two fresh hardened sandboxes (the suite's, and the
                  deliverable's own, serving the target over the kernel-relayed link), the
                  report over its socket, the canary, verdict and settlement in SQLite;
  - docker run:   `docker run --rm` of the same image running `python3 -m pytest -q` on the
                  same files mounted read-only (no isolation flags, no checks);
  - open:         Court.open(), which collects the suite's test ids in a sandbox (once per escrow).

Usage: python benchmarks/judge_overhead.py [--n 9]
"""

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import judiciary.court  # noqa: F401 - registers escrow holds
from judiciary.court import Court
from kernel.api import Kernel
from kernel.sandbox.docker import connect
from kernel.sandbox.image import require
from kernel.settings import Settings

TESTS = """
import pytest
from sorter import sort


@pytest.mark.parametrize("n", range(50))
def test_sort(n):
    data = [(i * 7919 + n) % 101 for i in range(200)]
    assert sort(data) == sorted(data)
"""
MANIFEST = '[project]\nname = "{name}"\nversion = "1"\n[tool.kernel]\n{body}\n'


def package(root: Path, name: str, body: str, files: dict[str, str]) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text(MANIFEST.format(name=name, body=body))
    for fname, text in files.items():
        (root / fname).write_text(text)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=9, help="verdicts per runtime (default 9)")
    args = parser.parse_args()
    client = connect()
    image = require(client).tag
    runtimes = [r for r in ("runc", "runsc") if r in client.info().get("Runtimes", {})]
    client.close()
    docker = shutil.which("docker") or "docker"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        tests = package(t / "tests", "suite", 'kind = "tests"\ntarget = "sorter"', {"test_sort.py": TESTS})
        work = package(
            t / "work",
            "sorter",
            'kind = "code"\nentrypoint = "sorter:sort"',
            {"sorter.py": "def sort(x):\n    return sorted(x)\n"},
        )
        for rt in runtimes:
            k = Kernel(Settings(home=t / f"home-{rt}", runtime=rt))
            k.create_principal("buyer", 10**6)
            k.create_principal("worker")
            court = Court(k)
            tests_id = k.submit(tests, "buyer").artifact.id
            work_id = k.submit(work, "worker").artifact.id
            cmd = [docker, "run", "--rm", "--network=none", f"--runtime={rt}", "-v", f"{tests}:/t:ro", "-v",
                   f"{work}:/d:ro", "-e", "PYTHONPATH=/d", "-w", "/tmp", image, "python3", "-m", "pytest", "-q",
                   "-p", "no:cacheprovider", "/t"]  # fmt: skip
            opens, judges, plain = [], [], []
            for _ in range(args.n + 1):  # interleaved; the first round is a warm-up
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                plain.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                e = court.open("buyer", 1, tests_id)
                opens.append(time.perf_counter() - t0)
                court.deliver(e.id, "worker", work_id)
                t0 = time.perf_counter()
                e = court.judge(e.id)
                judges.append(time.perf_counter() - t0)
                assert e.state == "released", e.verdicts[-1].reason
            k.close()
            rows.append((rt, plain[1:], judges[1:], opens[1:]))
    print(f"time to a verdict, 50-test suite, median of {args.n} (min-max), image {image}")
    print(f"{'runtime':<9}{'docker run pytest s':>26}{'judge s':>22}{'x docker':>10}{'open (collect) s':>18}")
    for rt, plain, judges, opens in rows:
        p, j, o = statistics.median(plain), statistics.median(judges), statistics.median(opens)
        print(f"{rt:<9}{spread(plain):>26}{spread(judges):>22}{j / p:>10.2f}{o:>18.3f}")


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    main()
