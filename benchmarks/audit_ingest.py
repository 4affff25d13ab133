"""Audit ingest: events per second the audit writer sustains into SQLite.

Baseline, measured in the same run on a fresh database with the same schema: raw
``executemany`` of the same rows in 1,000-row transactions on one connection. The
writer's figure includes queueing from the producing thread, batching on its own
thread, and the final flush.

Usage: python benchmarks/audit_ingest.py [--events 200000]
"""

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from kernel.audit.log import INSERT, AuditWriter
from kernel.db import Database, now


def rows(n: int) -> list[tuple[object, ...]]:
    digest = hashlib.sha256(b"x").hexdigest()
    at = now()
    return [
        (at, f"run{i % 50:04d}", f"p{i % 7}", "file", "modified", None, f"f{i % 1000}.txt", i, digest, 1, None, None)
        for i in range(n)
    ]


def raw_executemany(path: Path, data: list[tuple[object, ...]]) -> float:
    db = Database(path)
    conn = db.conn
    t = time.perf_counter()
    for i in range(0, len(data), 1000):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, data[i : i + 1000])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t
    db.close()
    return elapsed


def writer(path: Path, data: list[tuple[object, ...]], one_by_one: bool) -> float:
    Database(path).close()
    w = AuditWriter(path, batch=1000)
    t = time.perf_counter()
    if one_by_one:
        for r in data:
            w.record(r[1], r[2], r[3], r[4], path=r[6], size=r[7], digest=r[8])  # type: ignore[arg-type]
    else:
        w.record_rows(data)
    w.flush()
    elapsed = time.perf_counter() - t
    w.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    data = rows(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        base = raw_executemany(Path(tmp) / "raw.db", data)
        bulk = writer(Path(tmp) / "bulk.db", data, one_by_one=False)
        each = writer(Path(tmp) / "each.db", data, one_by_one=True)
    n = args.events
    print(f"audit ingest, {n} events, WAL, synchronous=NORMAL")
    print(f"{'what':<44}{'events/s':>12}{'x raw':>8}")
    for label, secs in (
        ("raw executemany, 1,000-row transactions", base),
        ("AuditWriter.record_rows (bulk producer)", bulk),
        ("AuditWriter.record, one call per event", each),
    ):
        print(f"{label:<44}{n / secs:>12,.0f}{base / secs:>8.2f}")


if __name__ == "__main__":
    main()
