"""Laundering: content that travels A -> C -> B, where C only relays it (what B obtained from
C is, almost all of it, content that originated with A), reported as A -> B with C named.

A relay is an alert when the content earned something and B paid A less than the paid
ratio of it, or when the relay served B alone.
"""

from typing import Any

from kernel.audit.detectors.base import (
    Context,
    Evidence,
    Finding,
    confidence,
    describe,
    short,
    terms,
    value_thresholds,
)
from kernel.audit.flows import PairFlow


class Laundering:
    scope = "pairs"  # it judges pairs: an alert of a pair it looked at again and cleared is resolved
    name = "laundering"
    description = "content of A reached B through C, who only relayed it"

    def detect(self, ctx: Context) -> list[Finding]:
        s = ctx.settings
        thresholds = value_thresholds(s, relay_share=s.audit_relay_share)
        found: list[Finding] = []
        for flow in ctx.pairs:
            if flow.unbought_bytes < s.audit_min_bytes:
                continue  # bought at a price: fair to the origin, or the seller's debt to it
            relays: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for r in ctx.flows.sightings(flow, limit=1000):
                owner = r["source_owner"]
                if r["role"] == "reach" and not r["purchased"] and owner not in (None, flow.from_p, flow.to_p):
                    relays.setdefault((owner, r["artifact_id"] or r["digest"]), []).append(r)
            for (relay, subject), reaches in sorted(relays.items()):
                finding = self._judge(ctx, flow, relay, subject, reaches, thresholds)
                if finding:
                    found.append(finding)
        return found

    def _share(self, ctx: Context, origin: str, reaches: list[dict[str, Any]]) -> float:
        """The share of what B obtained from the relay that originated with ``origin``."""
        digests = sorted({r["digest"] for r in reaches})
        marks = ",".join("?" * len(digests))
        row = ctx.db.one(
            "SELECT COUNT(DISTINCT c.fp) AS total, COUNT(DISTINCT CASE WHEN o.principal = ? THEN c.fp END) AS theirs"
            " FROM prov_chunks c LEFT JOIN prov_origin o ON o.fp = c.fp"
            f" WHERE c.digest IN ({marks}) AND NOT EXISTS (SELECT 1 FROM prov_common k WHERE k.fp = c.fp)",
            (origin, *digests),
        )
        return row["theirs"] / row["total"] if row and row["total"] else 0.0

    def _judge(
        self,
        ctx: Context,
        flow: PairFlow,
        relay: str,
        subject: str,
        reaches: list[dict[str, Any]],
        thresholds: dict[str, float | int],
    ) -> Finding | None:
        s = ctx.settings
        share = self._share(ctx, flow.from_p, reaches)
        if share < s.audit_relay_share:
            return None
        t = terms(ctx, flow)
        value, paid, payments = t.value, t.paid, t.payments
        readers = ctx.db.one(
            "SELECT COUNT(DISTINCT principal) AS n FROM prov_sightings WHERE role = 'reach' AND"
            " (artifact_id = ? OR digest = ?) AND principal != ?",
            (subject, subject, relay),
        )
        targeted = bool(readers and readers["n"] == 1)
        if not (t.unpaid(s) or (targeted and paid == 0)):
            return None
        # How the relay got it: the relay's own sightings of the origin's content.
        into_relay = ctx.flows.sightings(PairFlow(flow.from_p, relay, 0, 0, flow.first_at, flow.last_at), limit=10)
        evidence = Evidence()
        for r in into_relay + reaches:
            evidence.add(r)
        evidence.ledger.update(p["ledger_id"] for p in payments)
        story = [
            f"Content that originated with {flow.from_p} reached {relay}:",
            *[f"  {describe(r)}" for r in into_relay],
            f"{relay} passed it on: {share:.0%} of what {flow.to_p} obtained from {relay} is {flow.from_p}'s content:",
            *[f"  {describe(r)}" for r in reaches[:20]],
            f"{flow.to_p} paid {flow.from_p} {paid} scrip in the window; the content earned up to {value}."
            + (f" Only {flow.to_p} obtained it from {relay}." if targeted else ""),
        ]
        unpaid = 1 - paid / value if value else 1.0
        return Finding(
            kind=self.name,
            from_p=flow.from_p,
            to_p=flow.to_p,
            via=relay,
            subject=subject,
            bytes=flow.bytes,
            score=round(min(1.0, share) * unpaid * confidence(flow.bytes, s.audit_min_bytes), 3),
            paid=paid,
            value=value,
            summary=f"{flow.from_p}'s content reached {flow.to_p} through {relay}, who only relayed it"
            f" ({short(subject)})",
            story=story,
            evidence=evidence,
            thresholds=thresholds,
        )
