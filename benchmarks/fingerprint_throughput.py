"""Fingerprinting throughput: what the auditor adds to every blob it sees.

Every file a run leaves in its workspace is now fingerprinted as well as hashed, in the
same pass; so is every package file and data artifact at scan time. Baseline, measured
in the same run on the same bytes: sha256 alone, which is what the post-run walk did
before. Rows: source-like text, random bytes (the worst case: nothing decodes, every
k-gram is distinct), gzip-compressed text (decoded and fingerprinted through).

Usage: python benchmarks/fingerprint_throughput.py [--mib 64]
"""

import argparse
import gzip
import hashlib
import random
import statistics
import time
from collections.abc import Callable

from kernel.audit.fingerprint import Fingerprinter


def text(size: int) -> bytes:
    rng = random.Random(1)
    words = [
        "def",
        "return",
        "class",
        "import",
        "self",
        "value",
        "index",
        "parse",
        "merge",
        "token",
        "ledger",
        "stream",
    ]
    out, total = [], 0
    while total < size:
        line = f"    {rng.choice(words)}_{rng.randrange(10**5)} = {rng.choice(words)}({rng.random():.5f})\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    size = args.mib << 20
    fp = Fingerprinter()
    plain = text(size)
    rows = [("source-like text", plain), ("random bytes", random.Random(2).randbytes(size))]
    packed = gzip.compress(plain[: size // 4], 6)
    rows.append((f"gzip of {size // 4 >> 20} MiB text", packed))
    print(f"fingerprinting throughput, median of 3, {args.mib} MiB blobs (fed in 1 MiB pieces), MiB/s")
    print(f"{'blob':<24} {'sha256':>8} {'fingerprints':>13} {'x sha256 time':>14} {'kept':>7} {'level':>6}")
    for name, data in rows:
        pieces = [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
        base = timed(lambda: hashlib.sha256(data).digest())  # noqa: B023 - used at once
        took = timed(lambda: fp.of_pieces(iter(pieces), len(data)))  # noqa: B023
        blob = fp.of_pieces(iter(pieces), len(data))
        mib = len(data) / (1 << 20)
        print(f"{name:<24} {mib / base:>8.0f} {mib / took:>13.1f} {took / base:>14.1f} {len(blob.fingerprints):>7}"
              f" {blob.level:>6}")  # fmt: skip


if __name__ == "__main__":
    main()
