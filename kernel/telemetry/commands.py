"""`kernel telemetry`, `kernel dashboard`, `kernel browse`: the economy's numbers, its page, its database."""

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from kernel.cli import UserPath, emit, json_option, kernel_of, main, new_table, out
from kernel.errors import InvalidInput

window_option = click.option(
    "--window", type=int, default=None, help="Ticks the windowed figures cover (default: KERNEL_TELEMETRY_WINDOW)."
)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


@main.group(invoke_without_command=True)
@window_option
@json_option
@click.pass_context
def telemetry(ctx: click.Context, window: int | None, as_json: bool) -> None:
    """The economy's metrics: the latest tick's values and totals over a window of ticks.

    A snapshot is stored at the end of every world tick (`kernel world run`).

    \b
    Example:
      kernel telemetry --window 20
      kernel telemetry --json
      kernel telemetry firms
      kernel telemetry export --format csv --output telemetry.csv
    """
    if ctx.invoked_subcommand is not None:
        return
    from kernel.telemetry import views

    k = kernel_of(ctx)
    data = views.current(k.db, window, k.settings.telemetry_window)

    def human() -> None:
        if data["tick"] is None:
            out.print("no telemetry yet: it is recorded at the end of each world tick (`kernel world run`).")
            return
        table = new_table("metric", f"tick {data['tick']}", f"last {data['window']} ticks", "what it is")
        for name, label in data["labels"].items():
            table.add_row(name, _fmt(data["values"].get(name)), _fmt(data["over_window"].get(name)), label)
        out.print(table)

    emit(data, as_json, human)


@telemetry.command("firms")
@json_option
@click.pass_context
def telemetry_firms(ctx: click.Context, as_json: bool) -> None:
    """Firms: communities of principals (Louvain, fixed seed) tied by config ownership, pools,
    escrows and payments, with each one's manager and share of output.

    \b
    Example:
      kernel telemetry firms --json
    """
    from kernel.telemetry import views

    data = views.firms(kernel_of(ctx).db)

    def human() -> None:
        out.print(f"modularity {_fmt(data['modularity'])}")
        table = new_table("firm", "manager", "members", "output share", "autonomy")
        for f in data["firms"]:
            table.add_row(str(f["id"]), f["manager"] or "-", ", ".join(f["members"]), _fmt(f["output_share"]),
                          _fmt(f["autonomy"]))  # fmt: skip
        out.print(table)

    emit(data, as_json, human)


@telemetry.command("lindy")
@window_option
@json_option
@click.pass_context
def telemetry_lindy(ctx: click.Context, window: int | None, as_json: bool) -> None:
    """Artifacts' survival (dead once unused --window ticks; Kaplan-Meier) and the candidates
    for Genesis promotion: old, alive, reused by several principals.

    \b
    Example:
      kernel telemetry lindy --window 10
    """
    from kernel.telemetry import views

    k = kernel_of(ctx)
    data = views.lindy(k.db, window, k.settings.telemetry_window)

    def human() -> None:
        s = data["survival"]
        out.print(f"{s['artifacts']} code artifacts, {s['deaths']} died (unused {data['window']} ticks)")
        if s["survival"]:
            out.print(f"share alive after {s['ticks'][-1]:.0f} ticks: {s['survival'][-1]:.2f}")
        table = new_table("Genesis candidate", "owner", "age", "invokers", "uses")
        for c in data["candidates"]:
            table.add_row(f"{c['name']} {c['id'][:12]}", c["owner"], str(c["age"]), str(c["invokers"]), str(c["uses"]))
        out.print(table)

    emit(data, as_json, human)


@telemetry.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option(
    "--output",
    type=UserPath(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    help="Write to this file ('-' or none: standard output).",
)
@click.pass_context
def telemetry_export(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """Every tick's metrics, one row (csv) or one JSON object (jsonl) per tick, oldest first.

    \b
    Example:
      kernel telemetry export --format csv --output telemetry.csv
      kernel telemetry export --format jsonl | jq .velocity
    """
    from kernel.telemetry import views

    data = views.series(kernel_of(ctx).db)
    names = list(data["metrics"])
    buffer = io.StringIO()
    if fmt == "csv":
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["tick", *names])
        for i, tick in enumerate(data["ticks"]):
            writer.writerow([tick, *("" if data["metrics"][n][i] is None else data["metrics"][n][i] for n in names)])
    else:
        for i, tick in enumerate(data["ticks"]):
            buffer.write(json.dumps({"tick": tick, **{n: data["metrics"][n][i] for n in names}}) + "\n")
    if output is None or str(output) == "-":
        click.echo(buffer.getvalue(), nl=False)
        return
    try:
        output.write_text(buffer.getvalue())
    except OSError as exc:
        raise InvalidInput(f"could not write {output}: {exc.strerror or exc}; choose another --output.") from None
    click.echo(f"{len(data['ticks'])} ticks written to {output}", err=True)


@main.command()
@click.option("--label", default="dashboard", show_default=True, help="The label of the token it makes.")
@json_option
@click.pass_context
def dashboard(ctx: click.Context, label: str, as_json: bool) -> None:
    """Make a read-only token for the dashboard and print the page's address.

    The daemon (`kernel serve`) serves the page at its HTTP address; the token travels in the
    address's fragment, which the browser never sends. The token reads the telemetry and the
    ledger check and nothing else; a new address revokes the one made before with the same
    --label. Revoke it with `kernel token revoke ID`.

    \b
    Example:
      kernel serve &
      kernel dashboard
    """
    from kernel.service import daemon, tokens

    k = kernel_of(ctx)
    info = daemon.running(k.settings) or {}
    base = info.get("url") or f"http://{k.settings.listen}"
    revoked = tokens.revoke_scoped(k.db, "telemetry", label)  # one live address per label
    made = tokens.create(k.db, None, True, label, scope="telemetry")
    data = {"url": f"{base}/#token={made['token']}", "token_id": made["id"], "serving": "url" in info,
            "revoked": revoked}  # fmt: skip

    def human() -> None:
        out.print(data["url"])
        if not data["serving"]:
            out.print("(no daemon serves this home yet: start `kernel serve`, then open the address)")

    emit(data, as_json, human)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Where Datasette listens.")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="Its port (0: any).")
@click.pass_context
def browse(ctx: click.Context, host: str, port: int) -> None:
    """Open the home's database read-only in Datasette, for ad-hoc SQL queries.

    Datasette opens the file read-only: nothing it runs can change the kernel's records.

    \b
    Example:
      kernel browse --port 8001
      curl 'http://127.0.0.1:8001/kernel/telemetry_ticks.json?_shape=array'
    """
    settings = ctx.find_root().obj["settings"]
    db = settings.home / "kernel.db"
    if not db.is_file():
        raise InvalidInput(f"there is no kernel database in {settings.home}; check --home.")
    argv = [sys.executable, "-m", "datasette", "serve", str(db), "--host", host, "--port", str(port),
            "--setting", "sql_time_limit_ms", "5000", "--setting", "max_returned_rows", "5000"]  # fmt: skip
    out.print(f"Datasette on http://{host}:{port}/kernel (read-only; Ctrl-C stops it)")
    sys.stdout.flush()
    os.execv(sys.executable, argv)
