"""Provenance: who first wrote each piece of content, and which principals it reached.

A scan turns what is new since the last scan into *sightings* of fingerprinted content:

- every file of a new artifact is *authored* by its owner;
- audit events: a run's input, the files it left in its workspace and the data artifacts
  it wrote are authored by the run's principal; a ``read_artifact`` of someone else's
  artifact is a *reach*; a run's returned value is the *origin* of any new content for
  the artifact's owner (the code produced it) and a reach by the caller;
- ledger rows become payments between principals, with what they paid for (see
  ``PURCHASES``); a purchase that hands over an artifact (an escrow release) is a reach
  of its content by the payer.

Sightings are applied in time order. The first author of a fingerprint is its origin.
When content of origin A reaches B, the pair (A, B) gets the fingerprint in
``prov_flow_chunks`` once. Writing content does not make a flow: a principal who writes
a fingerprint it never obtained wrote it independently (two people can type the same
boilerplate), and one who writes what it obtained already has the flow; what it writes
matters for the content's value (what the artifacts holding it earned). A fingerprint
written independently by ``audit_common_authors`` principals, or found in the common
corpus (the standard library), is boilerplate and never counts.
"""

import hashlib
import json
import os
import sqlite3
import sysconfig
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kernel import store
from kernel.audit.fingerprint import SEGMENT, BlobPrint, Fingerprinter
from kernel.db import Database, now
from kernel.settings import Settings

INPUT_PATH = "/kernel/in/input.json"
OUTPUT_PATH = "/kernel/out/result.json"


@dataclass(frozen=True)
class Purchase:
    """What the settlement of a hold paid for."""

    artifact_id: str | None
    label: str  # for explanations: "run 1a2b..." or "escrow 3c4d..."
    delivered: bool = False  # the payer obtains the artifact itself (an escrow deliverable)


# Hold kinds ("run", "escrow") -> what settling one paid for. The kernel knows runs; the
# judiciary registers escrows, so the auditor never reads the judiciary's tables.
PURCHASES: dict[str, Callable[[Database, str], Purchase | None]] = {}


def _run_purchase(db: Database, run_id: str) -> Purchase | None:
    row = db.one("SELECT artifact_id FROM runs WHERE id = ?", (run_id,))
    return Purchase(row["artifact_id"], f"run {run_id}") if row else None


PURCHASES["run"] = _run_purchase


def fingerprinter_for(settings: Settings) -> Fingerprinter:
    return Fingerprinter(settings.audit_max_fingerprints, settings.audit_max_decoded_bytes)


def sha256_and_print(fingerprinter: Fingerprinter, pieces: Iterable[bytes], size: int) -> tuple[str, BlobPrint]:
    """One pass over a blob: its sha256 and its fingerprints."""
    digest = hashlib.sha256()

    def hashed() -> Iterator[bytes]:
        for piece in pieces:
            digest.update(piece)
            yield piece

    blob = fingerprinter.of_pieces(hashed(), size)
    return digest.hexdigest(), blob


def print_file(fingerprinter: Fingerprinter, path: Path) -> tuple[str, int, BlobPrint]:
    """(sha256, size, fingerprints) of a file, read once in bounded pieces."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        digest, blob = sha256_and_print(fingerprinter, iter(lambda: fh.read(SEGMENT), b""), size)
    return digest, blob.size, blob


def store_print(conn: sqlite3.Connection, digest: str, blob: BlobPrint) -> None:
    """Keep a blob's fingerprints (once per digest)."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO prov_blobs (digest, size, level, fingerprints, span, entropy, encodings, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (digest, blob.size, blob.level, len(blob.fingerprints), blob.span, blob.entropy,
         json.dumps(blob.encodings), now()),
    )  # fmt: skip
    if cur.rowcount:
        signed = blob.fingerprints.view(np.int64).tolist()
        conn.executemany("INSERT OR IGNORE INTO prov_chunks (digest, fp) VALUES (?, ?)", [(digest, f) for f in signed])


def save_prints(db: Database, prints: list[tuple[str, BlobPrint]]) -> None:
    if prints:
        with db.transaction() as conn:
            for digest, blob in prints:
                store_print(conn, digest, blob)


@dataclass
class Sighting:
    at: str
    principal: str
    role: str  # author | origin | reach
    channel: str  # artifact | data | input | workspace | output | read | delivery
    digest: str
    key: str  # unique: the same source never makes two sightings
    artifact_id: str | None = None
    source_owner: str | None = None
    run_id: str | None = None
    event_id: int | None = None
    ledger_id: int | None = None
    path: str | None = None
    purchased: bool = False  # obtained by paying its owner (an escrow release, a priced run)


@dataclass
class Cursors:
    artifacts: int = 0
    events: int = 0
    ledger: int = 0


@dataclass
class IngestReport:
    cursors: Cursors
    sightings: int = 0
    payments: int = 0
    pairs: set[tuple[str, str]] = field(default_factory=set)  # pairs whose flows or payments changed
    artifacts: set[str] = field(default_factory=set)  # artifacts newly read or created
    paid_for: set[str] = field(default_factory=set)  # artifacts newly paid for (their content gained value)
    explained: list[tuple[int, str, str]] = field(default_factory=list)  # (ledger id, artifact, label) resolved late
    notes: list[str] = field(default_factory=list)


class Ingest:
    """Turns new artifacts, audit events and ledger rows into sightings, chunks and payments.

    A scan reads a consistent prefix of time: the cutoffs are fixed first, and nothing at
    or after the start of the oldest run still in flight is read (its events, the data
    artifacts it writes and the payments around it wait for the next scan), so content
    is always seen in the order it moved.
    """

    def __init__(self, db: Database, settings: Settings, fingerprinter: Fingerprinter):
        self.db, self.settings, self.fp = db, settings, fingerprinter

    def __call__(self, since: Cursors) -> IngestReport:
        report = IngestReport(Cursors(since.artifacts, since.events, since.ledger))
        horizon = self._horizon(since)
        found = self._resolve_pending(report)
        found += self._artifacts(report, horizon.artifacts)
        found += self._events(report, horizon.events)
        found += self._ledger(report, horizon.ledger)
        found.sort(key=lambda s: (s.at, s.key))
        with self.db.transaction() as conn:  # the sightings and the late explanations commit together
            for s in found:
                if self._apply(conn, s, report):
                    report.sightings += 1
            conn.executemany(
                "UPDATE prov_payments SET artifact_id = ?, label = ? WHERE ledger_id = ?",
                [(ref, label, ledger_id) for ledger_id, ref, label in report.explained],
            )
        report.pairs |= self._valued_pairs(report.paid_for)
        return report

    def _horizon(self, since: Cursors) -> Cursors:
        """The last artifact rowid, event id and ledger id this scan may read: everything
        before the start of the oldest run in flight. One statement, so one snapshot."""
        busy = "(SELECT MIN(started_at) FROM runs WHERE state IN ('running', 'auditing'))"
        top = self.db.one(
            f"SELECT (SELECT COALESCE(MAX(rowid), 0) FROM artifacts WHERE {busy} IS NULL OR created_at < {busy})"
            " AS artifacts,"
            f" (SELECT COALESCE(MAX(id), 0) FROM audit_events WHERE {busy} IS NULL OR at < {busy}) AS events,"
            f" (SELECT COALESCE(MAX(id), 0) FROM ledger WHERE {busy} IS NULL OR at < {busy}) AS ledger,"
            " (SELECT MIN(e.id) FROM runs r JOIN audit_events e ON e.run_id = r.id"
            " WHERE r.state IN ('running', 'auditing'))"
            " AS first_busy_event"
        )
        assert top is not None
        events = int(top["events"])
        if top["first_busy_event"] is not None:
            events = min(events, int(top["first_busy_event"]) - 1)
        return Cursors(
            max(since.artifacts, int(top["artifacts"])),
            max(since.events, events),
            max(since.ledger, int(top["ledger"])),
        )

    def _valued_pairs(self, artifacts: set[str]) -> set[tuple[str, str]]:
        """Pairs whose content is in artifacts (or run outputs) that were just paid for: their value changed."""
        pairs: set[tuple[str, str]] = set()
        for ref in sorted(artifacts):
            for row in self.db.rows(
                "SELECT DISTINCT f.from_p, f.to_p FROM prov_artifacts pa JOIN prov_chunks c ON c.digest = pa.digest"
                " JOIN prov_flow_chunks f ON f.fp = c.fp WHERE pa.artifact_id = ?"
                " UNION SELECT DISTINCT f.from_p, f.to_p FROM prov_sightings s"
                " JOIN prov_chunks c ON c.digest = s.digest"
                " JOIN prov_flow_chunks f ON f.fp = c.fp WHERE s.channel = 'output' AND s.artifact_id = ?",
                (ref, ref),
            ):
                pairs.add((row["from_p"], row["to_p"]))
        return pairs

    # -- sources --------------------------------------------------------------------------
    def _artifacts(self, report: IngestReport, upto: int) -> list[Sighting]:
        """Fingerprint new artifacts; submitted packages are authored by their owner.

        Data artifacts are fingerprinted too, but their sightings come from the
        write_artifact events, which say which run (whose code) wrote them."""
        rows = self.db.rows(
            "SELECT rowid AS n, id, owner, kind, created_at FROM artifacts WHERE rowid > ? AND rowid <= ?"
            " ORDER BY rowid",
            (report.cursors.artifacts, upto),
        )
        found: list[Sighting] = []
        for start in range(0, len(rows), 100):  # one transaction per hundred artifacts
            page = rows[start : start + 100]
            prints: list[tuple[str, BlobPrint]] = []
            files: list[tuple[str, str, str]] = []
            for row in page:
                try:
                    members = [
                        (path, *sha256_and_print(self.fp, pieces, size))
                        for path, size, pieces in _members(store.blob_path(self.settings, row["id"]))
                    ]
                except (OSError, tarfile.TarError) as exc:
                    report.notes.append(f"artifact {row['id'][:12]}: its stored package could not be read ({exc})")
                    continue
                for path, digest, blob in members:
                    prints.append((digest, blob))
                    files.append((row["id"], digest, path))
                    if row["kind"] != "data":
                        key = f"artifact:{row['id']}:{path}"
                        found.append(Sighting(row["created_at"], row["owner"], "author", "artifact", digest, key,
                                              artifact_id=row["id"], path=path))  # fmt: skip
                report.artifacts.add(row["id"])
            with self.db.transaction() as conn:
                for digest, blob in prints:
                    store_print(conn, digest, blob)
                conn.executemany(
                    "INSERT OR IGNORE INTO prov_artifacts (artifact_id, digest, path) VALUES (?, ?, ?)", files
                )
        report.cursors.artifacts = max(report.cursors.artifacts, upto)
        return found

    def _events(self, report: IngestReport, upto: int) -> list[Sighting]:
        found: list[Sighting] = []
        while report.cursors.events < upto:
            page = self.db.rows(
                "SELECT e.*, r.artifact_id AS run_artifact, r.status AS run_status, r.output AS run_output, r.cost,"
                " a.owner AS owner, ra.owner AS run_owner"
                " FROM audit_events e JOIN runs r ON r.id = e.run_id"
                " LEFT JOIN artifacts a ON a.id = e.artifact_id LEFT JOIN artifacts ra ON ra.id = r.artifact_id"
                " WHERE e.id > ? AND e.id <= ? AND e.ok = 1"
                " AND e.op IN ('read_artifact', 'write_artifact', 'written', 'copy_in', 'copy_out')"
                " ORDER BY e.id LIMIT 5000",
                (report.cursors.events, upto),
            )
            for e in page:
                found.extend(self._event(e, report))
            report.cursors.events = page[-1]["id"] if page else upto
        return found

    def _event(self, e: dict[str, Any], report: IngestReport) -> list[Sighting]:
        """The sightings one audit event makes.

        A run acts for its principal, but its code is the artifact owner's: what a run of
        someone else's code writes or returns is first that owner's (origin), and what
        lands in the principal's hands (its data artifacts, the returned value) is a reach.
        """
        op, p, key = e["op"], e["principal"], f"event:{e['id']}"
        owner = e["run_owner"] or p
        common = {"run_id": e["run_id"], "event_id": e["id"], "path": e["path"]}
        handed = {"source_owner": owner, "purchased": bool(e["cost"])}
        if op == "read_artifact":
            if e["owner"] is None or e["owner"] == p or owner != p:
                return []  # its own content, or read by someone else's code (what it hands over is seen)
            report.artifacts.add(e["artifact_id"])
            return [Sighting(e["at"], p, "reach", "read", e["digest"], key, artifact_id=e["artifact_id"],
                             source_owner=e["owner"], **common)]  # fmt: skip
        if op == "write_artifact":
            report.artifacts.add(e["artifact_id"])
            if owner == p:
                return [
                    Sighting(e["at"], p, "author", "data", e["digest"], key, artifact_id=e["artifact_id"], **common)
                ]
            return [
                Sighting(e["at"], owner, "origin", "data", e["digest"], key + ":origin", artifact_id=e["artifact_id"],
                         **common),
                Sighting(e["at"], p, "reach", "data", e["digest"], key + ":reach", artifact_id=e["artifact_id"],
                         **common, **handed),
            ]  # fmt: skip
        if op == "written" or (op == "copy_in" and e["path"] == INPUT_PATH):
            if not self._known(e["digest"]):
                report.notes.append(f"event {e['id']}: no fingerprints for {e['path']} (run {e['run_id']})")
                return []
            if op == "written" and owner != p:  # the owner's code wrote it; the caller never sees it
                return [Sighting(e["at"], owner, "origin", "workspace", e["digest"], key, **common)]
            channel = "workspace" if op == "written" else "input"
            return [Sighting(e["at"], p, "author", channel, e["digest"], key, **common)]
        if op == "copy_out" and e["run_status"] == "ok" and e["run_output"] is not None:
            text = e["run_output"].encode()
            digest, blob = sha256_and_print(self.fp, [text], len(text))
            save_prints(self.db, [(digest, blob)])
            seen = [Sighting(e["at"], owner, "origin", "output", digest, key + ":origin", artifact_id=e["run_artifact"],
                             **common)]  # fmt: skip
            if owner != p:
                seen.append(Sighting(e["at"], p, "reach", "output", digest, key + ":reach",
                                     artifact_id=e["run_artifact"], **common, **handed))  # fmt: skip
            return seen
        return []

    def _known(self, digest: str | None) -> bool:
        return bool(digest) and self.db.one("SELECT 1 AS x FROM prov_blobs WHERE digest = ?", (digest,)) is not None

    def _ledger(self, report: IngestReport, upto: int) -> list[Sighting]:
        rows = self.db.rows(
            "SELECT l.id, l.at, l.amount, l.kind, l.debit, da.kind AS debit_kind, da.principal AS payer,"
            " ca.kind AS credit_kind, ca.principal AS payee FROM ledger l"
            " JOIN accounts da ON da.id = l.debit JOIN accounts ca ON ca.id = l.credit"
            " WHERE l.id > ? AND l.id <= ? ORDER BY l.id",
            (report.cursors.ledger, upto),
        )
        found: list[Sighting] = []
        for row in rows:
            payer, payee = row["payer"], row["payee"]
            if row["credit_kind"] != "principal" or row["debit_kind"] == "mint" or not payer or payer == payee:
                continue  # grants, holds being opened, refunds
            hold = row["debit"].removeprefix("hold:") if row["debit_kind"] == "hold" else None
            purchase = self._purchase(hold) if hold else None
            with self.db.transaction() as conn:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO prov_payments (ledger_id, at, payer, payee, amount, kind, artifact_id,"
                    " label, hold) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (row["id"], row["at"], payer, payee, row["amount"], row["kind"],
                     purchase.artifact_id if purchase else None, purchase.label if purchase else None, hold),
                )  # fmt: skip
            report.payments += cur.rowcount
            report.pairs.add((payee, payer))  # the payee's content may have reached the payer
            found += self._purchased(report, row["id"], row["at"], payer, payee, purchase)
        report.cursors.ledger = max(report.cursors.ledger, upto)
        return found

    def _purchased(
        self, report: IngestReport, ledger_id: int, at: str, payer: str, payee: str, purchase: Purchase | None
    ) -> list[Sighting]:
        """What a payment bought: the artifact gains value; a delivered one reaches the payer."""
        if purchase is None or purchase.artifact_id is None:
            return []
        report.paid_for.add(purchase.artifact_id)
        if not purchase.delivered:
            return []
        files = self.db.rows("SELECT digest, path FROM prov_artifacts WHERE artifact_id = ?", (purchase.artifact_id,))
        return [
            Sighting(at, payer, "reach", "delivery", f["digest"], f"ledger:{ledger_id}:{f['path']}",
                     artifact_id=purchase.artifact_id, source_owner=payee, ledger_id=ledger_id, path=f["path"],
                     purchased=True)
            for f in files
        ]  # fmt: skip

    def _resolve_pending(self, report: IngestReport) -> list[Sighting]:
        """Payments of holds nobody could explain when they were read (their client, e.g. the
        judiciary, was not loaded then): explained now if it is."""
        found: list[Sighting] = []
        for row in self.db.rows("SELECT * FROM prov_payments WHERE artifact_id IS NULL AND hold IS NOT NULL"):
            purchase = self._purchase(row["hold"])
            if purchase is None or purchase.artifact_id is None:
                continue
            report.explained.append((row["ledger_id"], purchase.artifact_id, purchase.label))
            report.pairs.add((row["payee"], row["payer"]))
            found += self._purchased(report, row["ledger_id"], row["at"], row["payer"], row["payee"], purchase)
        return found

    def _purchase(self, hold: str) -> Purchase | None:
        kind, _, ref = hold.partition(":")
        resolve = PURCHASES.get(kind)
        return resolve(self.db, ref) if resolve else None

    # -- applying a sighting ------------------------------------------------------------------
    def _apply(self, conn: sqlite3.Connection, s: Sighting, report: IngestReport) -> bool:
        """Record a sighting and what it implies; False if an earlier (perhaps interrupted)
        scan recorded it already, in which case its pairs are still looked at again."""
        cur = conn.execute(
            "INSERT OR IGNORE INTO prov_sightings (at, principal, role, channel, digest, artifact_id, source_owner,"
            " run_id, event_id, ledger_id, path, purchased, key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (s.at, s.principal, s.role, s.channel, s.digest, s.artifact_id, s.source_owner, s.run_id,
             s.event_id, s.ledger_id, s.path, int(s.purchased), s.key),
        )  # fmt: skip
        new = bool(cur.rowcount)
        sid = (
            cur.lastrowid
            if new
            else conn.execute("SELECT id FROM prov_sightings WHERE key = ?", (s.key,)).fetchone()[0]
        )
        p, d = s.principal, s.digest
        if new and s.role in ("author", "origin"):
            conn.execute(
                "INSERT OR IGNORE INTO prov_origin (fp, principal, span, sighting_id)"
                " SELECT c.fp, ?, b.span, ? FROM prov_chunks c JOIN prov_blobs b ON b.digest = c.digest"
                " WHERE c.digest = ?",
                (p, sid, d),
            )
        if new and s.role == "author":
            # Independent unless this principal had obtained the fingerprint from its origin before.
            conn.execute(
                "INSERT OR IGNORE INTO prov_authors (fp, principal, independent)"
                " SELECT c.fp, ?, NOT EXISTS (SELECT 1 FROM prov_flow_chunks f"
                "   WHERE f.from_p = o.principal AND f.to_p = ? AND f.fp = c.fp)"
                " FROM prov_chunks c JOIN prov_origin o ON o.fp = c.fp WHERE c.digest = ?",
                (p, p, d),
            )
            became = conn.execute(
                "INSERT OR IGNORE INTO prov_common (fp, source)"
                " SELECT a.fp, 'authors' FROM prov_chunks c JOIN prov_authors a ON a.fp = c.fp"
                " WHERE c.digest = ? AND a.independent = 1 GROUP BY a.fp HAVING COUNT(*) >= ?",
                (d, self.settings.audit_common_authors),
            ).rowcount
            if became:  # flows that held it shrank: judge their pairs again
                for pair in conn.execute(
                    "SELECT DISTINCT f.from_p, f.to_p FROM prov_chunks c JOIN prov_common k ON k.fp = c.fp"
                    " JOIN prov_flow_chunks f ON f.fp = c.fp WHERE c.digest = ?",
                    (d,),
                ).fetchall():
                    report.pairs.add((pair[0], pair[1]))
        if s.role == "reach":
            if new:
                conn.execute(
                    "INSERT OR IGNORE INTO prov_flow_chunks (from_p, to_p, fp, sighting_id)"
                    " SELECT o.principal, ?, c.fp, ? FROM prov_chunks c JOIN prov_origin o ON o.fp = c.fp"
                    " WHERE c.digest = ? AND o.principal != ?",
                    (p, sid, d, p),
                )
            for (origin,) in conn.execute(
                "SELECT DISTINCT from_p FROM prov_flow_chunks WHERE sighting_id = ?", (sid,)
            ).fetchall():
                report.pairs.add((origin, p))
        return new


def _members(blob: Path) -> Iterator[tuple[str, int, Iterator[bytes]]]:
    """(path, size, pieces) of every regular file in a stored package, streamed."""
    with tarfile.open(blob) as tar:
        for info in tar:
            stream = tar.extractfile(info)
            if stream is None:
                continue
            with stream:
                yield info.name, info.size, iter(lambda s=stream: s.read(SEGMENT), b"")  # type: ignore[misc]


def default_corpus() -> list[Path]:
    """The standard library of the Python running the kernel (on Debian 12, the same 3.11
    the sandbox image carries)."""
    return [Path(sysconfig.get_paths()["stdlib"])]


def corpus_files(roots: list[Path]) -> Iterator[Path]:
    skip = {"test", "tests", "idle_test", "__pycache__", "site-packages", "dist-packages"}
    for root in roots:
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*.py")):
            if not skip.intersection(path.relative_to(root).parts[:-1]) and path.is_file():
                yield path


def seed_corpus(db: Database, fingerprinter: Fingerprinter, roots: list[Path]) -> int | None:
    """Mark the fingerprints of the common corpus as boilerplate; once per set of roots.

    Returns how many fingerprints were added, or None when the corpus was already seeded."""
    key = json.dumps(sorted(str(r) for r in roots))
    row = db.one("SELECT value FROM audit_meta WHERE key = 'corpus'")
    if row and row["value"] == key:
        return None
    fps: set[int] = set()
    for path in corpus_files(roots):
        try:
            _, _, blob = print_file(fingerprinter, path)
        except OSError:
            continue
        fps.update(blob.fingerprints.view(np.int64).tolist())
    with db.transaction() as conn:
        conn.execute("DELETE FROM prov_common WHERE source = 'corpus'")
        conn.executemany("INSERT OR IGNORE INTO prov_common (fp, source) VALUES (?, 'corpus')", ((f,) for f in fps))
        conn.execute("INSERT OR REPLACE INTO audit_meta (key, value) VALUES ('corpus', ?)", (key,))
    return len(fps)
