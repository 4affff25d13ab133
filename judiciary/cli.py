"""`kernel escrow ...`: thin commands over judiciary.court.Court."""

import json
import sys
from typing import Any, get_args

import click
from rich.console import Console
from rich.table import Table

from judiciary.court import Court
from judiciary.models import Escrow, EscrowState, SuiteRun

out = Console(highlight=False, soft_wrap=True, markup=False)  # ids and test names are data
if not out.is_terminal:
    out.width = 160
err = Console(stderr=True, highlight=False, markup=False)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")


def court_of(ctx: click.Context) -> Court:
    from kernel.cli import kernel_of

    return Court(kernel_of(ctx), appeal_runs=ctx.find_root().obj["settings"].appeal_runs)


def emit(escrow: Escrow | list[Escrow], as_json: bool, human: Any) -> None:
    if as_json:
        if isinstance(escrow, list):
            click.echo(json.dumps([e.model_dump(mode="json") for e in escrow], indent=2))
        else:
            click.echo(escrow.model_dump_json(indent=2))
    else:
        human()


def print_escrow(e: Escrow, verbose: bool = True) -> None:
    out.print(f"escrow {e.id}  {e.state}  {e.amount} scrip  buyer {e.buyer}  worker {e.worker or '-'}")
    out.print(f"tests {e.tests_id[:12]} ({len(e.expected)} expected)  deliverable {(e.deliverable_id or '-')[:12]}")
    if e.deadline:
        out.print(f"deadline {e.deadline:%Y-%m-%d %H:%M:%S} UTC")
    if e.settles_at:
        out.print(f"settles at {e.settles_at:%Y-%m-%d %H:%M:%S} UTC unless disputed")
    for v in e.verdicts:
        out.print(f"{v.kind}: {'PASS' if v.passed else 'FAIL'} - {v.reason}")
        if verbose:
            if any(r.problem for r in v.runs):
                out.print("(the outcomes below are as that run reported them; the run is not trusted, see above)")
            table = Table("test", "outcome", "seconds")
            for t in v.tests:
                table.add_row(t.nodeid, t.outcome, f"{t.duration:.3f}")
            out.print(table)
            if v.flaky:
                out.print(f"flaky: {', '.join(v.flaky)}  (rule: {v.rule})")
            for i, run in enumerate(v.runs, 1):
                if run.link is not None:
                    out.print(link_line(i if len(v.runs) > 1 else None, run), markup=False)
    if verbose and e.history:
        for h in e.history:
            out.print(f"  {h.at:%H:%M:%S} {h.kind:<10} {h.actor or '':<10} {h.detail or ''}", markup=False)


def link_line(index: int | None, run: SuiteRun) -> str:
    """What crossed between the suite's sandbox and the deliverable's, in one line."""
    link = run.link
    assert link is not None
    where = f"run {index}: " if index else ""
    text = (
        f"{where}deliverable's sandbox {run.deliverable_status or '-'}; link: {link.calls} calls,"
        f" {link.bytes_to_deliverable} B to the deliverable, {link.bytes_to_suite} B back"
    )
    if link.untrusted_operations:
        text += f", {link.untrusted_operations} operators between its objects and the suite's values (refused)"
    return text


@click.group()
def escrow() -> None:
    """Escrow settled by the judiciary: a buyer's pytest suite decides who gets paid."""


@escrow.command("open")
@click.option("--as", "principal", required=True, help="The buyer.")
@click.option("--amount", type=int, required=True, help="Scrip moved into the hold now.")
@click.option("--tests", "tests_id", required=True, help='The tests artifact (kind = "tests").')
@click.option("--deadline", help="Refund if nothing is delivered within this long (e.g. 2h, 3d).")
@click.option("--dispute-window", default="0s", show_default=True, help="How long a verdict waits for an appeal.")
@json_option
@click.pass_context
def open_cmd(
    ctx: click.Context,
    principal: str,
    amount: int,
    tests_id: str,
    deadline: str | None,
    dispute_window: str,
    as_json: bool,
) -> None:
    """Lock scrip against a test suite. The suite's test ids are collected now, in a sandbox.

    \b
    Example:
      kernel escrow open --as alice --amount 40 --tests 9c1e7a --deadline 2d
    """
    with err.status("collecting the suite's tests in a sandbox"):
        e = court_of(ctx).open(principal, amount, tests_id, deadline, dispute_window)
    emit(e, as_json, lambda: print_escrow(e, verbose=False))


@escrow.command()
@click.argument("escrow_id")
@click.option("--as", "principal", required=True, help="The worker delivering.")
@click.option("--artifact", "artifact_id", required=True, help="The code artifact delivered (yours).")
@json_option
@click.pass_context
def deliver(ctx: click.Context, escrow_id: str, principal: str, artifact_id: str, as_json: bool) -> None:
    """Deliver a code artifact to an open escrow.

    \b
    Example:
      kernel escrow deliver 5d2f0a --as bob --artifact 77ab01
    """
    e = court_of(ctx).deliver(escrow_id, principal, artifact_id)
    emit(e, as_json, lambda: print_escrow(e, verbose=False))


@escrow.command()
@click.argument("escrow_id")
@json_option
@click.pass_context
def judge(ctx: click.Context, escrow_id: str, as_json: bool) -> None:
    """Run the suite on the deliverable in a fresh sandbox and settle the escrow.

    Exits 1 if the verdict is a fail (the buyer is refunded).

    \b
    Example:
      kernel escrow judge 5d2f0a --json
    """
    with err.status("judging: running the suite on the deliverable in a sandbox"):
        e = court_of(ctx).judge(escrow_id)
    emit(e, as_json, lambda: print_escrow(e))
    if not e.verdicts[-1].passed:
        sys.exit(1)


@escrow.command()
@click.argument("escrow_id")
@click.option("--as", "principal", required=True, help="The buyer or the worker.")
@click.option("--reason", required=True, help="Why the verdict is wrong.")
@json_option
@click.pass_context
def dispute(ctx: click.Context, escrow_id: str, principal: str, reason: str, as_json: bool) -> None:
    """Appeal a verdict once: the suite runs several times in fresh sandboxes; that verdict is final.

    \b
    Example:
      kernel escrow dispute 5d2f0a --as bob --reason "test_random is flaky"
    """
    with err.status("appeal: running the suite several times in fresh sandboxes"):
        e = court_of(ctx).dispute(escrow_id, principal, reason)
    emit(e, as_json, lambda: print_escrow(e))


@escrow.command()
@json_option
@click.pass_context
def expire(ctx: click.Context, as_json: bool) -> None:
    """Refund escrows past their deadline with no delivery; pay out verdicts whose window closed.

    \b
    Example:
      kernel escrow expire --json
    """
    changed = court_of(ctx).expire()

    def human() -> None:
        out.print(f"{len(changed)} escrow(s) settled")
        for e in changed:
            out.print(f"  {e.id} -> {e.state}")

    emit(changed, as_json, human)


@escrow.command()
@click.argument("escrow_id")
@json_option
@click.pass_context
def show(ctx: click.Context, escrow_id: str, as_json: bool) -> None:
    """Show an escrow: state, verdicts with per-test outcomes, history.

    \b
    Example:
      kernel escrow show 5d2f0a --json
    """
    e = court_of(ctx).show(escrow_id)
    emit(e, as_json, lambda: print_escrow(e))


@escrow.command("list")
@click.option("--state", type=click.Choice(list(get_args(EscrowState))), help="Only escrows in this state.")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, state: str | None, as_json: bool) -> None:
    """List escrows, oldest first.

    \b
    Example:
      kernel escrow list --state open
    """
    items = court_of(ctx).escrows(state)

    def human() -> None:
        table = Table("escrow", "state", "amount", "buyer", "worker", "tests", "verdict")
        for e in items:
            verdict = ("PASS" if e.verdicts[-1].passed else "FAIL") if e.verdicts else ""
            table.add_row(e.id, e.state, str(e.amount), e.buyer, e.worker or "", e.tests_id[:12], verdict)
        out.print(table)

    emit(items, as_json, human)
