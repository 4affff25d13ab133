"""`kernel audit scan | flows | alerts`: thin commands over kernel.audit.scan.Auditor."""

import click
from rich.table import Table

from kernel.cli import audit, emit, err, json_option, kernel_of, out


def _pending_hint(ctx: click.Context) -> None:
    pending = kernel_of(ctx).audit_pending()
    waiting = {k: v for k, v in pending.items() if v}
    if waiting:
        what = ", ".join(f"{v} {k if k != 'ledger' else 'ledger rows'}" for k, v in waiting.items())
        err.print(f"not scanned yet: {what}; run `kernel audit scan` to include them.")


@audit.command("scan")
@click.option("--rescore", is_flag=True, help="Run the detectors over every pair, not only what changed.")
@json_option
@click.pass_context
def audit_scan(ctx: click.Context, rescore: bool, as_json: bool) -> None:
    """Fingerprint everything new since the last scan and run the black-market detectors.

    Incremental and idempotent: a second scan with nothing new raises nothing, and the
    same event never raises two alerts. The first scan of a home also fingerprints the
    common corpus (the standard library), a few seconds once.

    \b
    Example:
      kernel audit scan
      kernel audit scan --rescore --json    # after changing KERNEL_AUDIT_* thresholds
    """
    k = kernel_of(ctx)
    with err.status("scanning", spinner="dots") as status:
        report = k.audit_scan(rescore, progress=lambda step: status.update(f"scanning: {step}"))

    def human() -> None:
        out.print(
            f"scan {report.scan}: {report.sightings} new sightings, {report.payments} payments, {report.pairs} pairs"
            f" checked in {report.seconds:.2f} s; {len(report.new_alerts)} new alerts,"
            f" {len(report.updated_alerts)} updated, {len(report.resolved_alerts)} resolved,"
            f" {report.recorded} paid flows recorded"
        )
        if report.corpus_fingerprints is not None:
            out.print(f"common corpus: {report.corpus_fingerprints} fingerprints of boilerplate")
        for alert_id in report.new_alerts:
            a = k.audit_alert(alert_id)
            out.print(f"  new {a.kind} {a.id}: {a.summary}")
        for note in report.notes:
            err.print(f"note: {note}")

    emit(report, as_json, human)


@audit.command("flows")
@json_option
@click.pass_context
def audit_flows(ctx: click.Context, as_json: bool) -> None:
    """For every ordered pair of principals: bytes of content that originated with the
    first and reached the second, next to the scrip the second paid the first.

    Paid counts transfers, invocation prices and escrow releases in the window around
    the flow; value is what the content earned. As of the last `kernel audit scan`.

    \b
    Example:
      kernel audit flows --json
    """
    flows = kernel_of(ctx).audit_flows()

    def human() -> None:
        if not flows:
            out.print("no flows between principals yet (scan first: `kernel audit scan`)")
            return
        table = Table("from", "to", "bytes", "via", "paid", "paid by", "value", "alerts")
        for f in flows:
            table.add_row(
                f.from_principal, f.to_principal, str(f.bytes),
                ", ".join(sorted(f.channels)), str(f.paid),
                ", ".join(f"{k} {v}" for k, v in sorted(f.paid_by.items())) or "-",
                str(f.value), ", ".join(f.alerts) or "-",
            )  # fmt: skip
        out.print(table)

    emit(flows, as_json, human)
    _pending_hint(ctx)


@audit.command("alerts")
@click.option("--explain", "explain", metavar="ALERT_ID", help="Tell the story of one alert, with its evidence.")
@click.option("--kind", help="Only alerts of this detector (unpaid_flow, dead_drop, laundering, ...).")
@click.option("--principal", help="Only alerts naming this principal.")
@click.option(
    "--all", "everything", is_flag=True, help="Also list findings that are not alerts: paid flows, resolved alerts."
)
@json_option
@click.pass_context
def audit_alerts(
    ctx: click.Context, explain: str | None, kind: str | None, principal: str | None, everything: bool, as_json: bool
) -> None:
    """List the flows that look like black-market transfers, highest score first.

    Each alert has its kind, where the content originated (from), who obtained it (to),
    the bytes, a score from 0 to 1, the scrip that did pass between them, the evidence
    (audit event, artifact, run and ledger ids) and the thresholds it was judged by.

    \b
    Example:
      kernel audit alerts
      kernel audit alerts --explain 3fa2c1
    """
    k = kernel_of(ctx)
    if explain:
        lines = k.explain_alert(explain)
        emit({"alert": k.audit_alert(explain), "story": lines}, as_json, lambda: out.print("\n".join(lines)))
        return
    alerts = k.audit_alerts(kind, principal, everything)

    def human() -> None:
        if not alerts:
            out.print("no alerts")
            return
        table = Table("id", "kind", "from", "to", "via", "bytes", "score", "paid", "value", "summary")
        for a in alerts:
            flag = "" if a.alert else " (not an alert)"
            incomplete = " [audit incomplete]" if a.audit_incomplete else ""
            table.add_row(
                a.id, a.kind + flag, a.from_principal, a.to_principal, a.via or "-", str(a.bytes),
                f"{a.score:.2f}", str(a.paid), str(a.value), a.summary + incomplete,
            )  # fmt: skip
        out.print(table)

    emit(alerts, as_json, human)
    _pending_hint(ctx)
