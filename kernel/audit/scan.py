"""The auditor: incremental scans, flows between principals, alerts and their stories.

A scan fingerprints what is new since the last finished scan (artifacts, audit events,
ledger rows), then runs every detector over the pairs and artifacts that changed.
Findings are keyed by (kind, from, to, via, subject), so scanning again never raises an
alert twice; it updates the numbers and evidence of the ones that grew. A scan that dies
half-way is simply repeated: every step is keyed and idempotent.
"""

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from kernel.audit.detectors import Context, Finding, detectors
from kernel.audit.flows import Flows
from kernel.audit.provenance import Cursors, Ingest, default_corpus, fingerprinter_for, seed_corpus
from kernel.db import Database, now
from kernel.errors import InvalidInput
from kernel.models import Alert, AlertEvidence, Flow, ScanReport
from kernel.settings import Settings

Progress = Callable[[str], None]


def alert_id(f: Finding) -> str:
    return hashlib.sha256(f"{f.kind}|{f.from_p}|{f.to_p}|{f.via}|{f.subject}".encode()).hexdigest()[:12]


class Auditor:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings
        self.fingerprinter = fingerprinter_for(settings)
        self.flows = Flows(db, settings.audit_window_seconds, settings.audit_min_bytes)

    # -- scanning -------------------------------------------------------------------------
    def cursors(self) -> Cursors:
        last = self.db.one("SELECT * FROM audit_scans WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1")
        return Cursors(last["artifacts_to"], last["events_to"], last["ledger_to"]) if last else Cursors()

    def pending(self) -> dict[str, int]:
        """What the next scan would read: new artifacts, audit events and ledger rows."""
        c = self.cursors()
        count = self.db.one(
            "SELECT (SELECT COUNT(*) FROM artifacts WHERE rowid > ?) AS artifacts,"
            " (SELECT COUNT(*) FROM audit_events WHERE id > ?) AS events,"
            " (SELECT COUNT(*) FROM ledger WHERE id > ?) AS ledger",
            (c.artifacts, c.events, c.ledger),
        )
        return dict(count) if count else {}

    def scan(self, rescore: bool = False, progress: Progress | None = None) -> ScanReport:
        """Fingerprint what is new, then run the detectors; ``rescore`` re-runs them over every pair."""
        say = progress or (lambda _: None)
        started = time.perf_counter()
        roots = self.settings.audit_common_corpus
        say("common corpus")
        seeded = seed_corpus(self.db, self.fingerprinter, default_corpus() if roots is None else roots)
        since = self.cursors()
        with self.db.transaction() as conn:
            scan_id = conn.execute(
                "INSERT INTO audit_scans (started_at, artifacts_to, events_to, ledger_to) VALUES (?, ?, ?, ?)",
                (now(), since.artifacts, since.events, since.ledger),
            ).lastrowid
        assert scan_id is not None
        say("fingerprints and sightings")
        ingest = Ingest(self.db, self.settings, self.fingerprinter)(since)
        say("detectors")
        pairs = self.flows.pairs(None if rescore else ingest.pairs)
        if rescore:
            artifacts = {r["id"] for r in self.db.rows("SELECT id FROM artifacts")}
        else:  # what changed, and what alerts are about whose pair changed (a payment may clear a drop)
            alerted = self.db.rows(
                "SELECT from_principal, to_principal, subject FROM audit_alerts WHERE alert = 1 AND subject != ''"
            )
            artifacts = ingest.artifacts | {
                r["subject"] for r in alerted if (r["from_principal"], r["to_principal"]) in ingest.pairs
            }
        ctx = Context(self.db, self.settings, self.flows, pairs, artifacts)
        findings = [f for detector in detectors() for f in detector.detect(ctx)]
        new, updated, recorded = self._record(findings, scan_id)
        judged = {(f.from_p, f.to_p) for f in pairs} | (self._alerted_pairs() if rescore else ingest.pairs)
        resolved = self._resolve(findings, judged, artifacts, scan_id)
        c = ingest.cursors
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE audit_scans SET finished_at = ?, artifacts_to = ?, events_to = ?, ledger_to = ?,"
                " sightings = ?, payments = ?, new_alerts = ?, updated_alerts = ?, notes = ? WHERE id = ?",
                (now(), c.artifacts, c.events, c.ledger, ingest.sightings, ingest.payments, len(new),
                 len(updated), json.dumps(ingest.notes[:100]), scan_id),
            )  # fmt: skip
        return ScanReport(
            scan=scan_id,
            artifacts_to=c.artifacts,
            events_to=c.events,
            ledger_to=c.ledger,
            sightings=ingest.sightings,
            payments=ingest.payments,
            pairs=len(pairs),
            new_alerts=new,
            updated_alerts=updated,
            resolved_alerts=resolved,
            recorded=recorded,
            corpus_fingerprints=seeded,
            notes=ingest.notes[:20],
            seconds=round(time.perf_counter() - started, 3),
        )

    def _incomplete(self, f: Finding) -> list[str]:
        """The runs in the evidence whose audit record has a gap."""
        runs = sorted(f.evidence.runs)
        if not runs:
            return []
        marks = ",".join("?" * len(runs))
        rows = self.db.rows(
            f"SELECT id FROM runs WHERE audit_incomplete = 1 AND id IN ({marks}) ORDER BY started_at", tuple(runs)
        )
        return [r["id"] for r in rows]

    def _alerted_pairs(self) -> set[tuple[str, str]]:
        rows = self.db.rows("SELECT DISTINCT from_principal, to_principal FROM audit_alerts WHERE alert = 1")
        return {(r["from_principal"], r["to_principal"]) for r in rows}

    def _resolve(
        self, findings: list[Finding], pairs: set[tuple[str, str]], artifacts: set[str], scan_id: int
    ) -> list[str]:
        """Alerts a detector looked at again in this scan and no longer raises (a payment came,
        a second reader, the content turned out to be boilerplate) stop being alerts; their
        record stays, with the scan that resolved them. Raised again later, they reopen."""
        raised = {alert_id(f) for f in findings}
        scopes = {d.name: getattr(d, "scope", "pairs") for d in detectors()}
        resolved: list[str] = []
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT id, kind, from_principal, to_principal, subject, story FROM audit_alerts WHERE alert = 1"
            ).fetchall()
            for ref, kind, a, b, subject, story in rows:
                scope = scopes.get(kind, "pairs")
                looked = (a, b) in pairs if scope == "pairs" else subject in artifacts
                if not looked or ref in raised:
                    continue
                note = (
                    f"Resolved by scan {scan_id}: {kind} no longer finds this"
                    " (paid since, read by others, or found to be boilerplate)."
                )
                conn.execute(
                    "UPDATE audit_alerts SET alert = 0, summary = summary || ' (resolved)', story = ?,"
                    " last_scan = ?, updated_at = ? WHERE id = ?",
                    (json.dumps([*json.loads(story), note]), scan_id, now(), ref),
                )
                resolved.append(ref)
        return resolved

    def _record(self, findings: list[Finding], scan_id: int) -> tuple[list[str], list[str], int]:
        new: list[str] = []
        updated: list[str] = []
        recorded = 0
        with self.db.transaction() as conn:
            for f in findings:
                ref = alert_id(f)
                fields = (
                    int(f.alert), f.bytes, f.score, f.paid, f.value, f.summary, json.dumps(f.story),
                    json.dumps(f.evidence.as_dict()), json.dumps(f.thresholds), json.dumps(self._incomplete(f)),
                )  # fmt: skip
                old = conn.execute(
                    "SELECT alert, bytes, score, paid, value, summary, story, evidence, thresholds, audit_incomplete"
                    " FROM audit_alerts WHERE id = ?",
                    (ref,),
                ).fetchone()
                if old is None:
                    conn.execute(
                        "INSERT INTO audit_alerts (id, kind, from_principal, to_principal, via, subject, alert, bytes,"
                        " score, paid, value, summary, story, evidence, thresholds, audit_incomplete, first_scan,"
                        " last_scan, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                        " ?, ?, ?, ?)",
                        (ref, f.kind, f.from_p, f.to_p, f.via, f.subject, *fields, scan_id, scan_id, now(), now()),
                    )
                    if f.alert:
                        new.append(ref)
                    else:
                        recorded += 1
                elif tuple(old) != fields:
                    reopened = f.alert and not old[0]
                    conn.execute(
                        "UPDATE audit_alerts SET alert = ?, bytes = ?, score = ?, paid = ?, value = ?, summary = ?,"
                        " story = ?, evidence = ?, thresholds = ?, audit_incomplete = ?, last_scan = ?,"
                        " updated_at = ? WHERE id = ?",
                        (*fields, scan_id, now(), ref),
                    )
                    (new if reopened else updated).append(ref)
        return new, updated, recorded

    # -- reading ----------------------------------------------------------------------------
    def alerts(self, kind: str | None = None, principal: str | None = None, everything: bool = False) -> list[Alert]:
        """Alerts, highest score first; with ``everything``, also findings that are not alerts
        (recorded paid flows, resolved alerts)."""
        where, params = ["1 = 1" if everything else "alert = 1"], []
        if kind:
            known = {d.name for d in detectors()}
            if kind not in known:
                raise InvalidInput(f"no detector named '{kind}': choose one of {', '.join(sorted(known))}.")
            where.append("kind = ?")
            params.append(kind)
        if principal:
            where.append("(from_principal = ? OR to_principal = ? OR via = ?)")
            params += [principal] * 3
        rows = self.db.rows(
            f"SELECT * FROM audit_alerts WHERE {' AND '.join(where)} ORDER BY alert DESC, score DESC, created_at",
            tuple(params),
        )
        return [to_alert(r) for r in rows]

    def alert(self, ref: str) -> Alert:
        return to_alert(self.db.by_prefix("audit_alerts", ref, "an alert", "kernel audit alerts"))

    def explain(self, ref: str) -> list[str]:
        row = self.db.by_prefix("audit_alerts", ref, "an alert", "kernel audit alerts")
        a = to_alert(row)
        head = f"Alert {a.id}: {a.kind}, score {a.score:.2f}" if a.alert else f"Recorded {a.kind} {a.id} (not an alert)"
        lines = [head, a.summary + ".", "", *json.loads(row["story"]), ""]
        lines.append("Thresholds: " + ", ".join(f"{k} = {v}" for k, v in a.thresholds.items()) + ".")
        ev = a.evidence
        lines.append(
            f"Evidence: audit events {_ids(ev.events)}; artifacts {_ids([x[:12] for x in ev.artifacts])};"
            f" runs {_ids(ev.runs)}; ledger rows {_ids(ev.ledger)}."
        )
        if a.audit_incomplete:
            lines.append(
                f"Warning: the audit of runs {', '.join(a.audit_incomplete)} is incomplete (file events were lost);"
                " more content may have moved than this shows."
            )
        return lines

    def flow_table(self) -> list[Flow]:
        alerts: dict[tuple[str, str], list[str]] = {}
        side: dict[tuple[str, str], int] = {}
        for r in self.db.rows("SELECT id, kind, alert, from_principal, to_principal, paid FROM audit_alerts"):
            pair = (r["from_principal"], r["to_principal"])
            if r["alert"]:
                alerts.setdefault(pair, []).append(r["id"])
            elif r["kind"] == "reverse_payment":
                side[pair] = side.get(pair, 0) + r["paid"]
        table: list[Flow] = []
        for pf in self.flows.pairs():
            paid, payments = self.flows.paid(pf)
            by_kind: dict[str, int] = {}
            for p in payments:
                by_kind[p["kind"]] = by_kind.get(p["kind"], 0) + p["amount"]
            earnings = self.flows.earnings(pf)
            pair = (pf.from_p, pf.to_p)
            table.append(
                Flow(
                    from_principal=pf.from_p,
                    to_principal=pf.to_p,
                    bytes=pf.bytes,
                    fingerprints=pf.fingerprints,
                    channels=pf.channels,
                    first_at=pf.first_at,  # type: ignore[arg-type]
                    last_at=pf.last_at,  # type: ignore[arg-type]
                    paid=paid,
                    paid_by=by_kind,
                    value=earnings[0].value if earnings else 0,
                    side_payments=side.get(pair, 0),
                    alerts=alerts.get(pair, []),
                )
            )
        return table


def _ids(values: Any) -> str:
    items = [str(v) for v in values]
    return ", ".join(items[:30]) + (f" and {len(items) - 30} more" if len(items) > 30 else "") if items else "none"


def to_alert(row: dict[str, Any]) -> Alert:
    return Alert(
        **{
            **{k: row[k] for k in ("id", "kind", "from_principal", "to_principal", "via", "subject", "bytes",
                                   "score", "paid", "value", "summary", "first_scan", "last_scan", "created_at",
                                   "updated_at")},
            "alert": bool(row["alert"]),
            "evidence": AlertEvidence(**json.loads(row["evidence"])),
            "thresholds": json.loads(row["thresholds"]),
            "audit_incomplete": json.loads(row["audit_incomplete"]),
        }
    )  # fmt: skip
