"""Reverse payment: B pays A by plain transfer (no invocation, no escrow) around the time
content of A reached B: soon after, or in the same run just before the value came back.
Recorded as a paid flow, not an alert: legitimate trade is not punished, and a governor
can still see the side channel.
"""

from kernel.audit.detectors.base import Context, Evidence, Finding, describe
from kernel.audit.flows import shift


class ReversePayment:
    scope = "pairs"  # it judges pairs: an alert of a pair it looked at again and cleared is resolved
    name = "reverse_payment"
    description = "B paid A by transfer soon after A's content reached B (a paid flow, not an alert)"

    def detect(self, ctx: Context) -> list[Finding]:
        s = ctx.settings
        thresholds: dict[str, float | int] = {"reverse_seconds": s.audit_reverse_seconds}
        found: list[Finding] = []
        for flow in ctx.pairs:
            transfers = [
                p
                for p in ctx.flows.payments(flow.to_p, flow.from_p, shift(flow.first_at, -s.audit_reverse_seconds),
                                            shift(flow.last_at, s.audit_reverse_seconds))
                if p["kind"] == "transfer"
            ]  # fmt: skip
            if not transfers:
                continue
            paid = sum(p["amount"] for p in transfers)
            reaches = ctx.flows.sightings(flow, limit=10)
            evidence = Evidence(ledger={p["ledger_id"] for p in transfers})
            for r in reaches:
                evidence.add(r)
            story = [
                f"Content of {flow.from_p} reached {flow.to_p} (about {flow.bytes} bytes):",
                *[f"  {describe(r)}" for r in reaches],
                f"Within {s.audit_reverse_seconds} s of it, {flow.to_p} paid {flow.from_p} by plain transfer:",
                *[f"  {p['at'][:19]}  transfer of {p['amount']} scrip (ledger #{p['ledger_id']})" for p in transfers],
                "Recorded as paid trade through a side channel; not an alert.",
            ]
            found.append(
                Finding(
                    kind=self.name,
                    from_p=flow.from_p,
                    to_p=flow.to_p,
                    bytes=flow.bytes,
                    score=0.0,
                    paid=paid,
                    value=0,
                    summary=f"{flow.to_p} paid {flow.from_p} {paid} scrip by transfer after receiving their content",
                    story=story,
                    evidence=evidence,
                    thresholds=thresholds,
                    alert=False,
                )
            )
        return found
