"""Flows between principals: content that reached one from another, the scrip that went back,
and what the content earned (its value).

Boilerplate fingerprints (``prov_common``) never count. Bytes are estimates: each shared
fingerprint stands for the bytes per fingerprint of the blob where it first appeared.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kernel.db import Database

NOT_COMMON = "NOT EXISTS (SELECT 1 FROM prov_common k WHERE k.fp = f.fp)"


@dataclass
class Earning:
    """A payment for content that contains part of a flow: value = amount x share."""

    amount: int
    share: float
    label: str  # "run 1a2b..." or "escrow 3c4d..."
    artifact_id: str | None
    ledger_id: int
    payee: str

    @property
    def value(self) -> int:
        return round(self.amount * self.share)


@dataclass
class PairFlow:
    from_p: str
    to_p: str
    fingerprints: int
    bytes: int
    first_at: str
    last_at: str
    channels: dict[str, int] = field(default_factory=dict)
    bought_bytes: int = 0  # bought at the seller's price (an escrow, a priced run)

    @property
    def unbought_bytes(self) -> int:
        """Bytes that reached the receiver free (a read, a free run's value), not bought.

        Bought from the origin, the content was paid at the origin's own asking price;
        bought from a third party, any debt to the origin is that seller's, not the buyer's.
        """
        return self.bytes - self.bought_bytes


def shift(stamp: str, seconds: int) -> str:
    return (datetime.fromisoformat(stamp) + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


class Flows:
    """Queries over the provenance tables, for one database."""

    def __init__(self, db: Database, window_seconds: int, min_bytes: int):
        self.db, self.window, self.min_bytes = db, window_seconds, min_bytes

    def pairs(self, only: set[tuple[str, str]] | None = None) -> list[PairFlow]:
        """One PairFlow per ordered pair with content in common (all pairs, or ``only`` these)."""
        sql = (
            "SELECT f.from_p, f.to_p, s.channel, COUNT(*) AS n, SUM(o.span) AS bytes, MIN(s.at) AS first_at,"
            " MAX(s.at) AS last_at, s.purchased AS bought"
            " FROM prov_flow_chunks f JOIN prov_origin o ON o.fp = f.fp"
            f" JOIN prov_sightings s ON s.id = f.sighting_id WHERE {NOT_COMMON} {{where}}"
            " GROUP BY f.from_p, f.to_p, s.channel, bought"
        )
        rows: list[dict[str, Any]] = []
        if only is None:
            rows = self.db.rows(sql.format(where=""))
        else:
            for a, b in sorted(only):
                rows += self.db.rows(sql.format(where="AND f.from_p = ? AND f.to_p = ?"), (a, b))
        merged: dict[tuple[str, str], PairFlow] = {}
        for r in rows:
            key = (r["from_p"], r["to_p"])
            flow = merged.get(key)
            if flow is None:
                flow = merged[key] = PairFlow(key[0], key[1], 0, 0, r["first_at"], r["last_at"])
            flow.fingerprints += r["n"]
            flow.bytes += round(r["bytes"] or 0)
            flow.bought_bytes += round(r["bytes"] or 0) if r["bought"] else 0
            flow.first_at, flow.last_at = min(flow.first_at, r["first_at"]), max(flow.last_at, r["last_at"])
            flow.channels[r["channel"]] = flow.channels.get(r["channel"], 0) + r["n"]
        return sorted(merged.values(), key=lambda f: (-f.bytes, f.from_p, f.to_p))

    def window_of(self, flow: PairFlow) -> tuple[str, str]:
        return shift(flow.first_at, -self.window), shift(flow.last_at, self.window)

    def payments(self, payer: str, payee: str, start: str, end: str) -> list[dict[str, Any]]:
        return self.db.rows(
            "SELECT * FROM prov_payments WHERE payer = ? AND payee = ? AND at >= ? AND at <= ? ORDER BY at",
            (payer, payee, start, end),
        )

    def paid(self, flow: PairFlow) -> tuple[int, list[dict[str, Any]]]:
        """Scrip the receiver paid the origin in the flow's window, and the payments."""
        rows = self.payments(flow.to_p, flow.from_p, *self.window_of(flow))
        return sum(r["amount"] for r in rows), rows

    def earnings(self, flow: PairFlow, free_only: bool = False) -> list[Earning]:
        """What the flow's content earned its origin or its receiver, largest value first.

        An earning is a payment to either of them for an artifact (an escrow deliverable, an
        invoked package) or a run output holding at least ``min_bytes`` of the flow's content,
        valued at the payment times the share of that artifact or output the content makes up.
        With ``free_only``, only the part of the flow that was not bought counts.
        """
        pair = (flow.from_p, flow.to_p)
        flow_fps = "FROM prov_flow_chunks f JOIN prov_origin o ON o.fp = f.fp JOIN prov_chunks c ON c.fp = f.fp"
        if free_only:
            flow_fps += " JOIN prov_sightings fs ON fs.id = f.sighting_id AND fs.purchased = 0"
        payees = "SELECT {key} FROM prov_payments WHERE payee IN (?, ?) AND {key} IS NOT NULL"
        # Each fingerprint once per artifact or output, however many of its files hold it.
        grouped = "SELECT ref, COUNT(*) AS shared, SUM(span) AS shared_bytes FROM ({inner}) GROUP BY ref"
        in_artifacts = self.db.rows(
            grouped.format(
                inner=f"SELECT DISTINCT pa.artifact_id AS ref, f.fp, o.span {flow_fps}"
                " JOIN prov_artifacts pa ON pa.digest = c.digest"
                f" WHERE f.from_p = ? AND f.to_p = ? AND {NOT_COMMON}"
                f" AND pa.artifact_id IN ({payees.format(key='artifact_id')})"
            ),
            (*pair, *pair),
        )
        in_outputs = self.db.rows(
            grouped.format(
                inner=f"SELECT DISTINCT s.run_id AS ref, f.fp, o.span {flow_fps}"
                " JOIN prov_sightings s ON s.digest = c.digest"
                f" WHERE f.from_p = ? AND f.to_p = ? AND {NOT_COMMON} AND s.channel = 'output' AND s.role = 'origin'"
                f" AND ('run ' || s.run_id) IN ({payees.format(key='label')})"
            ),
            (*pair, *pair),
        )
        found: list[Earning] = []
        for row in in_artifacts:
            if (row["shared_bytes"] or 0) < self.min_bytes:
                continue
            total = self.db.one(
                "SELECT COUNT(DISTINCT c.fp) AS n FROM prov_artifacts pa JOIN prov_chunks c ON c.digest = pa.digest"
                " WHERE pa.artifact_id = ?",
                (row["ref"],),
            )
            pay = self.db.one(
                "SELECT * FROM prov_payments WHERE artifact_id = ? AND payee IN (?, ?)"
                " ORDER BY amount DESC, ledger_id LIMIT 1",
                (row["ref"], *pair),
            )
            if total and total["n"] and pay:
                found.append(self._earning(pay, row["shared"] / total["n"], row["ref"]))
        for row in in_outputs:
            if (row["shared_bytes"] or 0) < self.min_bytes:
                continue
            total = self.db.one(
                "SELECT b.fingerprints AS n FROM prov_sightings s JOIN prov_blobs b ON b.digest = s.digest"
                " WHERE s.run_id = ? AND s.channel = 'output' AND s.role = 'origin'",
                (row["ref"],),
            )
            pay = self.db.one("SELECT * FROM prov_payments WHERE label = ? AND kind = 'price'", (f"run {row['ref']}",))
            if total and total["n"] and pay:
                found.append(self._earning(pay, row["shared"] / total["n"], pay["artifact_id"]))
        return sorted(found, key=lambda e: (-e.value, e.ledger_id))

    @staticmethod
    def _earning(pay: dict[str, Any], share: float, artifact_id: str | None) -> Earning:
        return Earning(pay["amount"], min(1.0, share), pay["label"] or pay["kind"], artifact_id, pay["ledger_id"],
                       pay["payee"])  # fmt: skip

    def sightings(self, flow: PairFlow, limit: int = 20) -> list[dict[str, Any]]:
        """The sightings through which the content reached the receiver, oldest first."""
        return self.db.rows(
            "SELECT s.*, COUNT(*) AS fingerprints FROM prov_flow_chunks f JOIN prov_sightings s ON s.id = f.sighting_id"
            f" WHERE f.from_p = ? AND f.to_p = ? AND {NOT_COMMON} GROUP BY s.id ORDER BY s.at, s.id LIMIT ?",
            (flow.from_p, flow.to_p, limit),
        )

    def origins(self, flow: PairFlow, limit: int = 10) -> list[dict[str, Any]]:
        """Where the origin first wrote the content, oldest first."""
        return self.db.rows(
            "SELECT s.*, COUNT(*) AS fingerprints FROM prov_flow_chunks f JOIN prov_origin o ON o.fp = f.fp"
            f" JOIN prov_sightings s ON s.id = o.sighting_id WHERE f.from_p = ? AND f.to_p = ? AND {NOT_COMMON}"
            " GROUP BY s.id ORDER BY s.at, s.id LIMIT ?",
            (flow.from_p, flow.to_p, limit),
        )

    def sources(self, reaches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """How the artifacts the receiver obtained got their content: each file's first author sighting."""
        found: dict[int, dict[str, Any]] = {}
        for r in reaches:
            if r["artifact_id"] and r["path"] and r["channel"] in ("read", "delivery"):
                made = self.db.one(
                    "SELECT * FROM prov_sightings WHERE artifact_id = ? AND path = ? AND role IN ('author', 'origin')"
                    " ORDER BY event_id IS NULL, at, id LIMIT 1",
                    (r["artifact_id"], r["path"]),
                )
                if made:
                    found[made["id"]] = made
        return sorted(found.values(), key=lambda s: (s["at"], s["id"]))

    def uses(self, flow: PairFlow, limit: int = 10) -> list[dict[str, Any]]:
        """Where the receiver wrote the content it obtained: artifacts, inputs, workspace files."""
        return self.db.rows(
            "SELECT s.*, COUNT(DISTINCT f.fp) AS fingerprints FROM prov_sightings s"
            " JOIN prov_chunks c ON c.digest = s.digest"
            " JOIN prov_flow_chunks f ON f.fp = c.fp AND f.from_p = ? AND f.to_p = s.principal"
            f" WHERE s.principal = ? AND s.role = 'author' AND {NOT_COMMON} AND s.id > f.sighting_id"
            " GROUP BY s.id ORDER BY s.at, s.id LIMIT ?",
            (flow.from_p, flow.to_p, limit),
        )
