"""Peers: the same trivial job through plain Docker, epicbox and llm-sandbox, next to a bare Python.

The job is ``python3 -c "print(1+1)"`` in a fresh container of the local sandbox image (no
network, the image's own user), and every contender must print 2. Measured in one run, for each
runtime the engine has (runc, and runsc when gVisor is registered), interleaved: every repetition
runs each contender once per runtime, starting from a different contender each time, after one
warm-up round that is not counted.

  - docker run --rm:  ``client.containers.run(..., remove=True)`` through the docker SDK;
  - epicbox:          ``epicbox.run`` with a profile on the local image;
  - llm-sandbox:      one docker-backend session (open, ``execute_command``, close);
  - python3 -c pass:  the host's real interpreter (never a version-manager shim).

The peers run in a worker process inside ``.venv-peers`` (see ``benchmarks/peer_worker.py``),
which times the peer's own call, so the pipe and the worker's start-up are not counted. No image is
ever pulled, and every container carries this run's label and is removed by id at the end.

  - kernel (daemon, pooled): ``kernel.client.Client.invoke`` of an artifact returning 1 + 1,
                    through `kernel serve` (a fresh pooled container, metered, paid, audited).
To add a row, add an entry to ``contenders``: a callable that runs the job once and returns its
seconds is all a row needs.

Usage: .venv/bin/python benchmarks/peers.py [--reps 15] [--json]   (or: make bench-peers)
"""

import argparse
import functools
import json
import os
import select
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from peer_worker import NoPullClient
from rich.console import Console
from rich.table import Table

from kernel.errors import KernelError
from kernel.sandbox.docker import connect
from kernel.sandbox.image import require

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
WORKER = Path(__file__).with_name("peer_worker.py")
JOB = ["python3", "-c", "print(1+1)"]
EXPECTED = "2"
RUNTIMES = ("runc", "runsc")
LABEL_KEY = "bench-peers"
LABEL = f"{LABEL_KEY}={uuid.uuid4().hex[:12]}"  # on every container this run makes
WORKER_TIMEOUT = 120.0  # seconds one peer job may take before the worker is given up on

DOCKER_RUN = "docker run --rm"
BARE_PYTHON = "python3 -c pass (host)"
NOTES = {
    "epicbox": "epicbox.run: its default limits (64 MiB, 1 s CPU), logging off, network_disabled=True (no network "
    "sandbox at all, unlike network_mode='none'), the job under /bin/sh -c; epicbox 1.1.0 has no runtime option, so "
    "for a runtime other than the engine's default the worker adds runtime= to its one containers.create call.",
    "llm-sandbox": "one session per job: create and start a keep-alive container, execute_command, stop (SIGKILL) and "
    "remove; environment setup (venv, pip) skipped; run(code) is not used: it calls `python`, which the image lacks.",
    DOCKER_RUN: "containers.run(image, job, remove=True, runtime=..., network_mode='none').",
    BARE_PYTHON: "subprocess.run([os.path.realpath(sys.executable), '-c', 'pass']).",
}


class Unsupported(Exception):
    """A contender cannot run on this runtime; the message says why."""


class ContenderFailed(Exception):
    """A contender ran the job and it failed; the message says how."""


# --- contenders --------------------------------------------------------------------------------


@functools.cache
def docker_client() -> NoPullClient:
    """A docker client that refuses pulls, so ``containers.run`` can never fetch an image."""
    return NoPullClient.from_env(timeout=120)


def docker_run(image: str, runtime: str) -> float:
    key, _, value = LABEL.partition("=")
    start = time.perf_counter()
    try:
        out = docker_client().containers.run(
            image, JOB, remove=True, runtime=runtime, network_mode="none", labels={key: value}
        )
    except docker.errors.DockerException as exc:
        raise ContenderFailed(f"docker run: {exc}") from exc
    seconds = time.perf_counter() - start
    if out.decode(errors="replace").strip() != EXPECTED:
        raise ContenderFailed(f"docker run printed {out[-200:]!r}, not {EXPECTED}")
    return seconds


def bare_python() -> float:
    start = time.perf_counter()
    subprocess.run([os.path.realpath(sys.executable), "-c", "pass"], check=True)
    return time.perf_counter() - start


class PeerWorker:
    """The long-lived ``peer_worker.py`` in ``.venv-peers``: one JSON request, one JSON answer."""

    def __init__(self, python: Path = PEERS_PYTHON) -> None:
        self.proc = subprocess.Popen([str(python), str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.buffer = b""
        hello = self._answer(timeout=60)
        self.versions: dict[str, str] = hello.get("versions", {})

    def run(self, peer: str, image: str, runtime: str) -> float:
        request = {"peer": peer, "image": image, "runtime": runtime, "label": LABEL}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        answer = self._answer(WORKER_TIMEOUT)
        if answer.get("unsupported"):
            raise Unsupported(answer.get("error") or f"{peer} cannot run on {runtime}")
        if not answer.get("ok"):
            raise ContenderFailed(answer.get("error") or f"{peer} failed")
        return float(answer["seconds"])

    def _answer(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + timeout
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self.close()
                why = "gave no answer in time" if not ready else "exited"
                raise ContenderFailed(f"the peer worker {why} (its stderr is above)")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return dict(json.loads(line))

    def close(self) -> None:
        """EOF ends the worker; kill it (our own child, by its pid) if it does not exit."""
        if self.proc.poll() is not None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@functools.cache
def peer_worker() -> PeerWorker:
    return PeerWorker()


def peer(name: str, image: str, runtime: str) -> float:
    return peer_worker().run(name, image, runtime)


KERNEL_JOB = "def main(v):\n    return 1 + 1\n"
KERNEL_MANIFEST = '[project]\nname = "two"\nversion = "1"\n[tool.kernel]\nkind = "code"\nentrypoint = "art:main"\n'


class KernelDaemons:
    """One `kernel serve` per runtime (a warm pool), started on first use, stopped at the end."""

    def __init__(self) -> None:
        import tempfile

        self.work = Path(tempfile.mkdtemp(prefix="bench-peers-kernel-"))
        self.served: dict[str, tuple[Any, Any, str]] = {}

    def invoke(self, runtime: str) -> float:
        from kernel.client import Client
        from kernel.service.spawn import Daemon

        if runtime not in self.served:
            pkg = self.work / "pkg"
            pkg.mkdir(exist_ok=True)
            (pkg / "pyproject.toml").write_text(KERNEL_MANIFEST)
            (pkg / "art.py").write_text(KERNEL_JOB)
            daemon = Daemon(self.work / f"home-{runtime}", {"KERNEL_RUNTIME": runtime, "KERNEL_POOL_MIN": "2"})
            daemon.__enter__()
            with daemon.local() as local:
                local.create_principal("bench", 0)
                art = local.submit(pkg, "bench")["artifact"]["id"]
                token = local.create_token("bench")["token"]
            daemon.wait_pool(2)
            self.served[runtime] = (daemon, Client(daemon.url, token), art)
        _, client, art = self.served[runtime]
        t = time.perf_counter()
        run = client.invoke(art)
        seconds = time.perf_counter() - t
        if run["status"] != "ok" or run["output"] != 2:
            raise ContenderFailed(f"the kernel's run ended {run['status']}: {run['reason']}")
        return seconds

    def close(self) -> None:
        import shutil

        for daemon, client, _ in self.served.values():
            client.close()
            daemon.stop()
        shutil.rmtree(self.work, ignore_errors=True)


@functools.cache
def kernel_daemons() -> KernelDaemons:
    return KernelDaemons()


def contenders(image: str, runtime: str) -> dict[str, Callable[[], float]]:
    """The rows for one runtime: each callable runs the job once and returns its seconds.

    Raise ``Unsupported`` when a contender cannot run on ``runtime`` (its row says so), anything
    else when the job fails. Extend this dict to add rows; the first entry is the docker baseline.
    """
    return {
        DOCKER_RUN: functools.partial(docker_run, image, runtime),
        "epicbox": functools.partial(peer, "epicbox", image, runtime),
        "llm-sandbox": functools.partial(peer, "llm-sandbox", image, runtime),
        "kernel (daemon, pooled)": functools.partial(kernel_daemons().invoke, runtime),
        BARE_PYTHON: bare_python,
    }


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    samples: list[float] = field(default_factory=list)
    status: str = "ok"  # "ok", "unsupported" or "failed"
    note: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.status == "ok" and self.samples else None


def measure(image: str, runtimes: list[str], reps: int) -> dict[str, list[Row]]:
    """Round -1 warms every contender up; rounds 0..reps-1 are timed, rotating the starting contender."""
    table = {rt: contenders(image, rt) for rt in runtimes}
    rows = {rt: {name: Row(name) for name in table[rt]} for rt in runtimes}
    for rep in range(-1, reps):
        for rt in runtimes:
            names = list(table[rt])
            shift = max(rep, 0) % len(names)
            for name in names[shift:] + names[:shift]:
                row = rows[rt][name]
                if row.status != "ok":
                    continue
                try:
                    seconds = table[rt][name]()
                except Unsupported as exc:
                    row.status, row.note = "unsupported", str(exc)
                except Exception as exc:  # a failed contender is reported in its row; the others go on
                    row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
                else:
                    if rep >= 0:
                        row.samples.append(seconds)
    return {rt: list(rows[rt].values()) for rt in runtimes}


def sweep(client: docker.DockerClient) -> int:
    """Remove, by id, every container that carries this run's label; return how many there were."""
    ids = [c["Id"] for c in client.api.containers(all=True, filters={"label": LABEL})]
    for container_id in ids:
        with suppress(docker.errors.NotFound):
            client.api.remove_container(container_id, force=True, v=True)
    return len(ids)


# --- reporting ---------------------------------------------------------------------------------


def ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def rounded(x: float | None) -> float | None:
    return round(x, 3) if x is not None else None


def report(rows: list[Row]) -> list[dict[str, Any]]:
    medians = {r.name: r.median for r in rows}
    docker_base, python_base = medians.get(DOCKER_RUN), medians.get(BARE_PYTHON)
    return [
        {
            "contender": r.name,
            "status": r.status,
            "note": r.note,
            "samples_ms": [round(s * 1000, 2) for s in r.samples],
            "median_ms": round(r.median * 1000, 2) if r.median is not None else None,
            "min_ms": round(min(r.samples) * 1000, 2) if r.median is not None else None,
            "max_ms": round(max(r.samples) * 1000, 2) if r.median is not None else None,
            "x_docker_run": rounded(ratio(r.median, docker_base)),
            "x_bare_python": rounded(ratio(r.median, python_base)),
        }
        for r in rows
    ]


def render(console: Console, runtime: str, title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"{runtime}: {title}", title_justify="left")
    table.add_column("contender", no_wrap=True)
    for column in ("median ms", "min–max ms", "× docker run", "× python"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        if r["median_ms"] is None:
            table.add_row(r["contender"], r["status"], "-", "-", "-")
            continue
        table.add_row(
            r["contender"],
            f"{r['median_ms']:.1f}",
            f"{r['min_ms']:.1f}–{r['max_ms']:.1f}",
            f"{r['x_docker_run']:.2f}" if r["x_docker_run"] is not None else "-",
            f"{r['x_bare_python']:.1f}" if r["x_bare_python"] is not None else "-",
        )
    console.print(table)
    for r in rows:
        if r["status"] != "ok":
            console.print(f"  {r['contender']} {r['status']}: {r['note']}", markup=False, highlight=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15, help="timed repetitions per contender (default 15)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    args = parser.parse_args()
    if not PEERS_PYTHON.exists():
        sys.exit(f"{PEERS_PYTHON.parent.parent.name} is missing: run `make bench-peers`, which creates it.")
    try:
        engine = connect()
        image = require(engine).tag
    except KernelError as exc:
        sys.exit(str(exc))
    runtimes = [rt for rt in RUNTIMES if rt in engine.info().get("Runtimes", {})]

    started = time.perf_counter()
    try:
        results = measure(image, runtimes, args.reps)
    finally:
        worker_started = peer_worker.cache_info().currsize > 0
        versions = peer_worker().versions if worker_started else {}
        if worker_started:
            peer_worker().close()
        kernel_daemons().close()
        left = sweep(engine)
        engine.close()
    doc = {
        "image": image,
        "reps": args.reps,
        "warmup_rounds": 1,
        "cores": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
        "peers": versions,
        "containers_swept": left,
        "notes": NOTES,
        "runtimes": {rt: report(rows) for rt, rows in results.items()},
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    console = Console()
    title = f"{image}, {args.reps} interleaved reps (+1 warm-up), {os.cpu_count()} cores"
    for rt, rows in doc["runtimes"].items():
        render(console, rt, title, rows)
    peers = ", ".join(f"{k} {v}" for k, v in versions.items())
    print(f"× docker run: median over {DOCKER_RUN}'s; × python: over the bare host python's.")
    print(f"peers: {peers}; {doc['seconds']} s in all; containers left over and removed: {left}")
    for name, note in NOTES.items():
        print(f"  {name}: {note}")


if __name__ == "__main__":
    main()
