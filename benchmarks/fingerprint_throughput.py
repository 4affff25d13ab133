"""Fingerprinting throughput: what the auditor adds to every blob it sees.

Every file a run leaves in its workspace is now fingerprinted as well as hashed, in the
same pass; so is every package file and data artifact at scan time. Baseline, measured
in the same run on the same bytes: sha256 alone, which is what the post-run walk did
before. Rows: source-like text, random bytes (the worst case: nothing decodes, every
k-gram is distinct), gzip-compressed text (decoded and fingerprinted through).

Blobs up to 16 MiB are also searched for base64 and decoded; larger ones are hashed
raw (and sampled), so the two sizes below show both paths.

Usage: python benchmarks/fingerprint_throughput.py [--mib 8 64]
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
    parser.add_argument("--mib", type=int, nargs="+", default=[8, 64])
    args = parser.parse_args()
    fp = Fingerprinter()
    rows = []
    for mib in args.mib:
        size = mib << 20
        plain = text(size)
        rows.append((f"{mib} MiB source-like text", plain))
        rows.append((f"{mib} MiB random bytes", random.Random(2).randbytes(size)))
        rows.append((f"gzip of {mib // 4} MiB text", gzip.compress(plain[: size // 4], 6)))
    print("fingerprinting throughput, median of 3, blobs fed in 1 MiB pieces, MiB/s of the blob as stored")
    print(f"{'blob':<26} {'sha256':>8} {'fingerprints':>13} {'x sha256 time':>14} {'kept':>7} {'level':>6}")
    for name, data in rows:
        pieces = [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
        base = timed(lambda: hashlib.sha256(data).digest())  # noqa: B023 - used at once
        took = timed(lambda: fp.of_pieces(iter(pieces), len(data)))  # noqa: B023
        blob = fp.of_pieces(iter(pieces), len(data))
        stored = len(data) / (1 << 20)
        kept = len(blob.fingerprints)
        print(f"{name:<26} {stored / base:>8.0f} {stored / took:>13.1f} {took / base:>14.1f} {kept:>7} {blob.level:>6}")


if __name__ == "__main__":
    main()
