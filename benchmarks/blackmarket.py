"""Black-market detection: precision and recall on a seeded world with planted covert transfers.

A world of honest principals does ordinary work through the real kernel (submitting
packages with shared boilerplate and vendored standard-library modules, invoking each
other's priced artifacts and reselling the reports they bought, publishing and reading
public datasets, some compressed, some read by one principal only, buying through
escrow, paying for data by transfer). Into it covert transfers
are planted: a principal A with a priced, private module hands it to B outside the
ledger through a public data artifact (a drop), and B sells it through an escrow (some
B pay A a token scrip, to look like trade). Kinds:
exact copy, renamed file, partial copy under a new header, file split across two
artifacts, base64- and gzip-encoded copies, relay through a third principal, and an
encrypted drop of content that never appeared in plaintext (a known limit of content
matching: only the graph detectors can see it).

Runs use the kernel's in-process backend: every run goes through the real invocation
path (holds, proxy socket, audit events, workspace walk, fingerprints); only the code is
a Python callable instead of a container, so a world of hundreds of runs takes seconds.

Scoring, at the default thresholds:
- recall of a kind: planted transfers with at least one alert from A to B;
- precision of a kind: alerts whose two principals both took part in one planted transfer
  (origin, relay, receiver), over all alerts in that kind's world;
- honest flagged: honest principals named by any alert in a world with nothing planted;
- paid-flow only: planted transfers that raised no alert but are listed as recorded paid
  trade (B's token transfer to A), visible with ``kernel audit alerts --all``;
- sha256 baseline: the share a naive auditor finds by matching file digests B read
  against A's code files, from the same audit log.

Usage: python benchmarks/blackmarket.py [--seed 7] [--honest 200] [--planted 20] [--background 60]
"""

import argparse
import base64
import gzip
import json
import random
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import judiciary.court  # noqa: F401 - registers escrow purchases with the auditor
from judiciary.court import Court
from judiciary.models import SuiteRun, TestOutcome
from kernel.api import Kernel
from kernel.models import Alert
from kernel.sandbox.inprocess import Env, InProcessSandbox
from kernel.settings import Settings

KINDS = ["exact", "renamed", "partial", "split", "base64", "gzip", "relay", "encrypted"]
VOCABULARY = (
    "alpha beta gamma delta ledger parse token stream buffer count merge split index cache vector "
    "matrix record field value window filter reduce score rank table column label budget price order "
    "query route graph node edge weight path sample batch shard chunk frame packet signal"
)
WORDS = tuple(VOCABULARY.split())
SNIPPETS = [  # helpers that many principals paste into their packages independently
    "def chunks(seq, n):\n    for i in range(0, len(seq), n):\n        yield seq[i : i + n]\n\n\n"
    "def flatten(rows):\n    return [x for row in rows for x in row]\n",
    "def read_json(path):\n    import json\n\n    with open(path, encoding='utf-8') as fh:\n"
    "        return json.load(fh)\n\n\ndef write_json(path, value):\n    import json\n\n"
    "    with open(path, 'w', encoding='utf-8') as fh:\n        json.dump(value, fh, indent=2)\n",
]
LICENSE = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
    "associated documentation files (the Software), to deal in the Software without restriction, including "
    "without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell "
    "copies of the Software, and to permit persons to whom the Software is furnished to do so.\n"
)


# -- behaviours: what runs do, by entrypoint ------------------------------------------------
def publish(env: Env, v: Any) -> Any:
    files = {p: base64.b64decode(d) for p, d in v["files"].items()}
    return env.write_artifact(v["name"], files, public=v.get("public", True))


def publish_generated(env: Env, v: Any) -> Any:
    """Make secret data inside the run and publish it encrypted (it never exists in plaintext)."""
    rng = random.Random(v["seed"])
    plain = "\n".join(f"{rng.choice(WORDS)},{rng.random():.6f},{rng.randrange(10**9)}" for _ in range(120)).encode()
    key = rng.randbytes(len(plain))
    cipher = bytes(a ^ b for a, b in zip(plain, key, strict=True))
    ref = env.write_artifact(v["name"], {"payload.bin": cipher}, public=True)
    return {"id": ref, "key": base64.b64encode(key).decode()}


def analyze(env: Env, v: Any) -> Any:
    """Read a dataset and return a summary (never the content itself)."""
    data = env.read_artifact(v["id"], v["path"])
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    lines = data.decode().splitlines()
    env.write_file("summary.txt", f"{len(lines)} rows\n".encode())
    return {"rows": len(lines), "bytes": len(data)}


def fetch(env: Env, v: Any) -> Any:
    """Read files, undo the encoding they travelled in, return the plaintext."""
    parts = []
    for ref, path in v["files"]:
        data = env.read_artifact(ref, path)
        if v.get("decode") == "base64":
            data = base64.b64decode(data)
        elif v.get("decode") == "gzip":
            data = gzip.decompress(data)
        elif v.get("decode") == "xor":
            key = base64.b64decode(v["key"])
            data = bytes(a ^ b for a, b in zip(data, key, strict=True))
        parts.append(data)
    return base64.b64encode(b"".join(parts)).decode()


def relay(env: Env, v: Any) -> Any:
    """Pass content on unchanged under new file names (an identical artifact would be the same one)."""
    files = env.read_artifact(v["id"])
    return env.write_artifact(v["name"], {f"mirror/{p}": d for p, d in files.items()}, public=True)


def tool(env: Env, v: Any) -> Any:
    text = str(v.get("text", ""))
    counts: dict[str, int] = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    env.write_file("scratch/counts.json", json.dumps(counts).encode())
    return {"words": len(text.split()), "top": sorted(counts, key=lambda w: -counts[w])[:3]}


def product(env: Env, v: Any) -> Any:
    """A priced product's run: a report of its own making (new content its owner sells)."""
    rng = random.Random(str(v.get("text")))
    lines = [f"{rng.choice(WORDS)} {rng.choice(WORDS)}: {rng.random():.5f} ({rng.randrange(10**6)})" for _ in range(30)]
    return {"report": "\n".join(lines)}


def pay(env: Env, v: Any) -> Any:
    return env.transfer(v["to"], v["amount"], v.get("memo", ""))


BEHAVIOURS: dict[str, Callable[[Env, Any], Any]] = {
    "publish:main": publish,
    "secret:main": publish_generated,
    "analyze:main": analyze,
    "fetch:main": fetch,
    "relay:main": relay,
    "tool:main": tool,
    "pay:main": pay,
    "lib:main": product,
}


class AcceptingRunner:
    """The judge's place in the simulation: every delivery passes (verdicts are not under test here)."""

    image, runtime = "sim:1", "inprocess"

    def collect(self, tests: object) -> list[str]:
        return ["test_it.py::test_it"]

    def judge(self, tests: object, deliverable: object, expected: list[str]) -> SuiteRun:
        outcomes = [TestOutcome(nodeid=n, outcome="passed") for n in expected]
        return SuiteRun(status="ok", exit_code=0, report_exit_code=0, tests=outcomes, canary="failed")


@dataclass
class Planted:
    kind: str
    origin: str
    receiver: str
    relay: str | None = None

    @property
    def party(self) -> set[str]:
        return {p for p in (self.origin, self.receiver, self.relay) if p}


@dataclass
class World:
    kernel: Kernel
    court: Court
    rng: random.Random
    root: Path
    honest: list[str] = field(default_factory=list)
    planted: list[Planted] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=dict)  # behaviour -> artifact id (one per principal below)
    datasets: list[tuple[str, str, str]] = field(default_factory=list)  # (artifact id, path, owner)
    priced: list[tuple[str, str]] = field(default_factory=list)  # (artifact id, owner)
    tests_id: str = ""
    counter: int = 0
    names: list[str] = field(default_factory=list)

    # -- helpers ------------------------------------------------------------------------
    def principal(self) -> str:
        name = self.names.pop()
        self.kernel.create_principal(name, grant=1000)
        return name

    def package(self, name: str, files: dict[str, str | bytes], entry: str | None = None, price: int = 0,
                kind: str = "code", extra: str = "") -> Path:  # fmt: skip
        self.counter += 1
        root = self.root / f"pkg{self.counter}"
        root.mkdir()
        lines = [f'[project]\nname = "{name}"\nversion = "1.{self.counter}"\n', "[tool.kernel]", f'kind = "{kind}"']
        lines += [f"price = {price}", extra] + ([f'entrypoint = "{entry}"'] if entry else [])
        (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data if isinstance(data, bytes) else data.encode())
        return root

    def code(self, lines: int = 40) -> str:
        """Python that reads like somebody's own module: unique names and constants."""
        rng, out = self.rng, []
        for i in range(lines // 4):
            a, b, c = rng.sample(WORDS, 3)
            out.append(
                f"def {a}_{b}_{i}({c}, limit={rng.randrange(2, 999)}):\n"
                f"    return [x * {rng.randrange(3, 97)} + {rng.randrange(10**6)} for x in {c} if x < limit]\n"
            )
        return "\n\n".join(out)

    def own_tool(self, owner: str, behaviour: str) -> str:
        """Each principal runs its own copy of a helper artifact (so it pays only itself)."""
        key = f"{owner}:{behaviour}"
        if key not in self.tools:
            module = behaviour.split(":")[0]
            pkg = self.package(f"{module}-{owner}", {f"{module}.py": "def main(v):\n    return v\n"}, behaviour)
            self.tools[key] = self.kernel.submit(pkg, owner).artifact.id
        return self.tools[key]

    def run(self, owner: str, behaviour: str, value: Any) -> Any:
        result = self.kernel.invoke(self.own_tool(owner, behaviour), owner, value)
        if result.status.value != "ok":
            raise RuntimeError(f"{behaviour} for {owner} failed: {result.reason}")
        return result.output

    def sell(self, worker: str, files: dict[str, str | bytes]) -> None:
        """A buyer picked among the honest opens an escrow; the worker delivers ``files``; it is paid."""
        buyer = self.rng.choice([h for h in self.honest if h != worker])
        files = {**files, "main.py": "def main(v):\n    return v\n"}
        deliverable = self.kernel.submit(self.package(f"work-{self.counter}", files, "main:main"), worker).artifact
        escrow = self.court.open(buyer, self.rng.randrange(20, 80), self.tests_id)
        self.court.deliver(escrow.id, worker, deliverable.id)
        self.court.judge(escrow.id)


def _names(rng: random.Random, n: int) -> list[str]:
    names = [f"p{i:03d}" for i in range(n)]
    rng.shuffle(names)
    return names


def build(
    seed: int, honest: int, kind: str | None, planted: int, home: Path, corpus: list[Path] | None = None
) -> World:
    rng = random.Random(seed)
    settings = Settings(home=home, audit_common_corpus=corpus)
    kernel = Kernel(settings, sandbox=InProcessSandbox(BEHAVIOURS), image="sim:1")
    court = Court(kernel, runner=lambda: AcceptingRunner())  # type: ignore[arg-type,return-value]
    world = World(kernel, court, rng, home.parent / "packages")
    world.root.mkdir(parents=True, exist_ok=True)
    world.names = _names(rng, honest + 3 * planted + 1)
    world.honest = [world.principal() for _ in range(honest)]
    judge = world.principal()
    tests = world.package("acceptance", {"test_it.py": "def test_it():\n    pass\n"}, kind="tests",
                          extra='target = "main"')  # fmt: skip
    world.tests_id = kernel.submit(tests, judge).artifact.id
    honest_world(world)
    for _ in range(planted if kind else 0):
        plant(world, kind or "exact")
    return world


def honest_world(w: World) -> None:
    rng = w.rng
    for p in w.honest:  # every principal publishes a product: its own code with common boilerplate
        files: dict[str, str | bytes] = {
            "lib.py": "def main(v):\n    return v\n\n\n" + w.code(),
            "LICENSE": f"Copyright {p}\n\n" + LICENSE,
            ".gitignore": "__pycache__/\n*.pyc\n",
        }
        if rng.random() < 0.6:
            files["helpers.py"] = rng.choice(SNIPPETS)
        if rng.random() < 0.3:
            files["vendored.py"] = _stdlib_module(rng)
        price = rng.choice([0, 2, 5, 10])
        art = w.kernel.submit(w.package(f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-tools", files, "lib:main", price),
                              p, public=True).artifact  # fmt: skip
        if price:
            w.priced.append((art.id, p))
    publishers = rng.sample(w.honest, max(1, len(w.honest) // 5))
    for p in publishers:  # public datasets, some compressed
        rows = "\n".join(f"{rng.choice(WORDS)},{rng.randrange(10**5)},{rng.random():.4f}" for _ in range(200))
        data, path = rows.encode(), "data.csv"
        if rng.random() < 0.3:
            data, path = gzip.compress(data), "data.csv.gz"
        name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-survey-{rng.randrange(2019, 2026)}"
        ref = w.run(p, "publish:main", {"name": name, "files": {path: base64.b64encode(data).decode()}})
        w.datasets.append((ref, path, p))
    for p in w.honest:
        bought = []
        for ref, owner in rng.sample(w.priced, min(len(w.priced), rng.randrange(1, 4))):
            if owner != p:  # invoke someone's priced product: paid flows of its output
                run = w.kernel.invoke(ref, p, {"text": " ".join(rng.choices(WORDS, k=30))})
                assert run.status.value == "ok", run.reason
                bought.append(run.output["report"])
        for ref, path, owner in rng.sample(w.datasets, min(len(w.datasets), rng.randrange(0, 3))):
            if owner == p or (path.endswith(".gz") and rng.random() < 0.5):
                continue
            w.run(p, "analyze:main", {"id": ref, "path": path})
            if rng.random() < 0.2:  # paid for the data by plain transfer: a recorded side payment
                w.run(p, "pay:main", {"to": owner, "amount": rng.randrange(1, 10), "memo": "thanks for the data"})
        w.run(p, "tool:main", {"text": " ".join(rng.choices(WORDS, k=50))})
        if rng.random() < 0.4:  # sells its own work through an escrow, with reports it bought (resale)
            extra = {"reports.txt": "\n".join(bought)} if bought and rng.random() < 0.5 else {}
            w.sell(p, {"solution.py": w.code(24), **extra})


VENDORED = ["textwrap.py", "shlex.py", "fnmatch.py", "bisect.py", "colorsys.py"]


def vendored_paths() -> list[Path]:
    """The standard-library modules honest principals paste into their packages."""
    return [Path(sysconfig.get_paths()["stdlib"]) / name for name in VENDORED]


def _stdlib_module(rng: random.Random) -> str:
    return rng.choice(vendored_paths()).read_text()


def plant(w: World, kind: str) -> None:
    rng = w.rng
    a, b = w.principal(), w.principal()
    secret = "def main(v):\n    return v\n\n\n" + w.code(60)
    product = w.kernel.submit(w.package(f"{rng.choice(WORDS)}-engine", {"engine.py": secret}, "engine:main",
                                        rng.randrange(5, 30)), a).artifact  # fmt: skip
    for buyer in rng.sample(w.honest, 2):  # A's product has honest customers
        w.kernel.invoke(product.id, buyer, {"text": "x"})
    name = rng.choice([f".{rng.randbytes(3).hex()}", rng.randbytes(5).hex(), f"{rng.choice(WORDS)}-notes"])
    w.planted.append(Planted(kind, a, b))

    def drop(files: dict[str, bytes], label: str = name) -> str:
        encoded = {p: base64.b64encode(d).decode() for p, d in files.items()}
        return str(w.run(a, "publish:main", {"name": label, "files": encoded}))

    body = secret.encode()
    if kind == "exact":
        plan = {"files": [(drop({"engine.py": body}), "engine.py")]}
    elif kind == "renamed":
        plan = {"files": [(drop({"notes.txt": body}), "notes.txt")]}
    elif kind == "partial":
        funcs = body.split(b"\n\n\n")  # a contiguous run of whole functions, about half of them
        start = rng.randrange(1, len(funcs) // 2)
        part = b"# utilities, see docs\n" + b"\n\n\n".join(funcs[start : start + len(funcs) // 2])
        plan = {"files": [(drop({"part.py": part}), "part.py")]}
    elif kind == "split":
        half = len(body) // 2
        plan = {
            "files": [(drop({"a.txt": body[:half]}), "a.txt"), (drop({"b.txt": body[half:]}, name + "-2"), "b.txt")]
        }
    elif kind == "base64":
        plan = {"files": [(drop({"blob.txt": base64.encodebytes(body)}), "blob.txt")], "decode": "base64"}
    elif kind == "gzip":
        plan = {"files": [(drop({"blob.gz": gzip.compress(body)}), "blob.gz")], "decode": "gzip"}
    elif kind == "relay":
        c = w.principal()
        w.planted[-1].relay = c
        first = drop({"engine.py": body})
        second = str(w.run(c, "relay:main", {"id": first, "name": f"{rng.choice(WORDS)}-mirror"}))
        plan = {"files": [(second, "mirror/engine.py")]}
    elif kind == "encrypted":
        made = w.run(a, "secret:main", {"seed": rng.randrange(10**9), "name": name})
        plan = {"files": [(made["id"], "payload.bin")], "decode": "xor", "key": made["key"]}
    else:
        raise ValueError(kind)
    plain = base64.b64decode(w.run(b, "fetch:main", plan)).decode()
    if rng.random() < 0.3:  # a token payment, to look like trade
        w.run(b, "pay:main", {"to": a, "amount": 1, "memo": "thanks"})
    w.sell(b, {"solution.py": "# solution\n" + plain} if kind != "encrypted" else {"assets/table.csv": plain})


def digest_baseline(world: World) -> int:
    """What a naive auditor finds: a file B read whose sha256 equals one of A's files."""
    import hashlib

    from kernel import store

    found = 0
    for p in world.planted:
        theirs = {
            hashlib.sha256(data).hexdigest()
            for art in world.kernel.artifacts(owner=p.origin)
            if art.kind == "code"
            for data in store.read_files(world.kernel.settings, art.id).values()
        }
        read = {e.digest for e in world.kernel.events(principal=p.receiver, limit=None) if e.op == "read_artifact"}
        found += bool(theirs & read)
    return found


@dataclass
class Score:
    kind: str
    planted: int
    found: int
    baseline: int
    alerts: int
    true_alerts: int
    by_detector: dict[str, int]
    seconds: float
    paid_only: int = 0  # planted transfers seen only as recorded paid trade (a token side payment)

    @property
    def recall(self) -> float:
        return self.found / self.planted if self.planted else 1.0

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0


def score(kind: str, world: World, alerts: list[Alert], baseline: int, seconds: float,
          recorded: list[Alert] | None = None) -> Score:  # fmt: skip
    def named(p: Planted, found: list[Alert]) -> bool:
        return any(al.from_principal == p.origin and al.to_principal == p.receiver for al in found)

    found = sum(named(p, alerts) for p in world.planted)
    paid_only = sum(named(p, recorded or []) and not named(p, alerts) for p in world.planted)
    true = [al for al in alerts if any({al.from_principal, al.to_principal} <= p.party for p in world.planted)]
    by: dict[str, int] = {}
    for al in true:
        by[al.kind] = by.get(al.kind, 0) + 1
    return Score(kind, len(world.planted), found, baseline, len(alerts), len(true), by, seconds, paid_only)


@dataclass
class Outcome:
    world: World
    alerts: list[Alert]
    recorded: list[Alert]  # paid flows recorded, not alerts (reverse payments)
    baseline: int
    built: float
    scanned: float
    events: int
    rescan_new: int


def run_world(seed: int, honest: int, kind: str | None, planted: int, corpus: list[Path] | None = None) -> Outcome:
    """Build a world, scan it (twice: the second must raise nothing), score nothing yet.

    ``corpus`` is the common corpus (None: the standard library, seeded before the world
    is built so the scan is timed alone)."""
    tmp = Path(tempfile.mkdtemp(prefix="blackmarket-"))
    try:
        t = time.perf_counter()
        seeder = Kernel(Settings(home=tmp / "home", audit_common_corpus=corpus))
        seeder.audit_scan()  # seeds the common corpus (the standard library), timed apart
        seeder.close()
        world = build(seed, honest, kind, planted, tmp / "home", corpus)
        built = time.perf_counter() - t
        t = time.perf_counter()
        report = world.kernel.audit_scan()
        scanned = time.perf_counter() - t
        again = world.kernel.audit_scan()
        alerts = world.kernel.audit_alerts()
        recorded = [a for a in world.kernel.audit_alerts(everything=True) if not a.alert]
        baseline = digest_baseline(world)
        world.kernel.close()
        return Outcome(world, alerts, recorded, baseline, built, scanned, report.events_to, len(again.new_alerts))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--honest", type=int, default=200, help="principals in the honest-only world")
    parser.add_argument("--background", type=int, default=60, help="honest principals around each planted kind")
    parser.add_argument("--planted", type=int, default=20, help="covert transfers planted per kind")
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args(argv)
    print(f"seed {args.seed}: {args.planted} planted transfers per kind among {args.background} honest principals;"
          f" an honest-only world of {args.honest}")  # fmt: skip
    print(f"{'kind':<10} {'planted':>7} {'found':>6} {'recall':>7} {'paid-flow only':>14} {'sha256 baseline':>15}"
          f" {'alerts':>7} {'precision':>9}  {'scan s':>6}  true alerts by detector")  # fmt: skip
    ok = True
    for i, kind in enumerate(args.kinds.split(",")):
        out = run_world(args.seed + i, args.background, kind, args.planted)
        s = score(kind, out.world, out.alerts, out.baseline, out.scanned, out.recorded)
        detail = ", ".join(f"{k} {v}" for k, v in sorted(s.by_detector.items()))
        naive = s.baseline / s.planted
        print(f"{kind:<10} {s.planted:>7} {s.found:>6} {s.recall:>7.2f} {s.paid_only:>14} {naive:>15.2f}"
              f" {s.alerts:>7} {s.precision:>9.2f}  {s.seconds:>6.2f}  {detail}")  # fmt: skip
        if kind != "encrypted":
            ok &= s.recall >= 0.95 and s.precision >= 0.95
        ok &= out.rescan_new == 0
    out = run_world(args.seed + 100, args.honest, None, 0)
    honest = out.world.honest
    flagged = {p for al in out.alerts for p in (al.from_principal, al.to_principal, al.via) if p in honest}
    rate = len(flagged) / len(honest)
    print(f"honest-only world: {len(honest)} principals, {len(out.alerts)} alerts, {len(flagged)} flagged ({rate:.1%})")
    print(f"  built in {out.built:.1f} s; scanned {out.events} audit events in {out.scanned:.2f} s"
          f" ({out.scanned / out.built:.2f}x the time the world took to run); a second scan raised"
          f" {out.rescan_new} alerts")  # fmt: skip
    ok &= rate <= 0.01 and out.rescan_new == 0
    print("targets (precision and recall >= 0.95 except encrypted, honest flagged <= 1%):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
