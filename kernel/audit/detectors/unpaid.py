"""Unpaid content flow: content first written by A reached B for free (a read, a free run's
value), and B paid A far less than it was worth.

The value of the content is what it earned: the largest payment for an artifact or a
run output containing it (an escrow release, an invocation price), scaled by the share
of that artifact or output the content makes up. Content that earned nothing is not
trade; a free copy with a covert shape is the dead-drop detector's business.
"""

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


class UnpaidFlow:
    scope = "pairs"  # it judges pairs: an alert of a pair it looked at again and cleared is resolved
    name = "unpaid_flow"
    description = "content of A reached B and B paid A less than a share of what the content earned"

    def detect(self, ctx: Context) -> list[Finding]:
        s = ctx.settings
        thresholds = value_thresholds(s)
        found: list[Finding] = []
        for flow in ctx.pairs:
            if flow.unbought_bytes < s.audit_min_bytes:
                continue  # bought at a price: fair to the origin, or the seller's debt to it
            t = terms(ctx, flow)
            if not t.unpaid(s):
                continue
            earnings, value, paid, payments = t.earnings, t.value, t.paid, t.payments
            evidence = Evidence()
            origins, reaches = ctx.flows.origins(flow), ctx.flows.sightings(flow)
            sources, uses = ctx.flows.sources(reaches), ctx.flows.uses(flow)
            for sighting in origins + reaches + sources + uses:
                evidence.add(sighting)
            evidence.ledger.update(e.ledger_id for e in earnings[:5])
            evidence.ledger.update(p["ledger_id"] for p in payments)
            start, end = ctx.flows.window_of(flow)
            best = earnings[0]
            story = [f"Content first written by {flow.from_p}:"]
            story += [f"  {describe(o)}" for o in origins]
            story += [f"reached {flow.to_p} (about {flow.bytes} bytes, {flow.fingerprints} fingerprints):"]
            story += [f"  {describe(r)}" for r in reaches]
            if sources:
                story += ["The artifacts it was read from were made so:"]
                story += [f"  {describe(m)}" for m in sources]
            if uses:
                story += [f"{flow.to_p} then wrote it into:"]
                story += [f"  {describe(u)}" for u in uses]
            listed = ", ".join(f"{p['kind']} #{p['ledger_id']}: {p['amount']}" for p in payments)
            story += [
                f"It earned up to {value} scrip: {best.label} paid {best.amount} to {best.payee} for"
                f" {short(best.artifact_id)}, {best.share:.0%} of which is this content (ledger #{best.ledger_id}).",
                f"{flow.to_p} paid {flow.from_p} {paid} scrip between {start[:19]} and {end[:19]}"
                + (f" ({listed})." if payments else "."),
                f"Unpaid: {paid} < {s.audit_paid_ratio} x {value}.",
            ]  # fmt: skip
            found.append(
                Finding(
                    kind=self.name,
                    from_p=flow.from_p,
                    to_p=flow.to_p,
                    bytes=flow.bytes,
                    score=round((1 - paid / value) * confidence(flow.bytes, s.audit_min_bytes), 3),
                    paid=paid,
                    value=value,
                    summary=f"{flow.bytes} bytes of {flow.from_p}'s content reached {flow.to_p}, worth {value},"
                    f" paid {paid}",
                    story=story,
                    evidence=evidence,
                    thresholds=thresholds,
                )
            )
        return found
