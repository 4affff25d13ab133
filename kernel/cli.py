"""The `kernel` command: parse, call one library function, print.

Commands load lazily: this module imports click and the standard library only, so
`kernel --help` costs little; a command's libraries load when it runs (the `escrow`,
`serve`, `token` and `audit scan|flows|alerts` commands live in modules of their own,
loaded when named)."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from kernel.errors import InvalidInput, KernelError
from kernel.listing import MAX_LISTED
from kernel.safe_io import read_user_file

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from kernel.models import RunResult
    from kernel.settings import Settings


class _LazyConsole:
    """A rich Console made on first use (rich costs an import most commands never print with)."""

    def __init__(self, stderr: bool):
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            console = Console(stderr=self._stderr, highlight=False, soft_wrap=not self._stderr, markup=False)
            if not self._stderr and not console.is_terminal:
                console.width = 160  # piped output: do not wrap tables at 80 columns
            self._console = console
        return getattr(self._console, name)


out: Any = _LazyConsole(stderr=False)  # names and outputs are data, never markup
err: Any = _LazyConsole(stderr=True)


def new_table(*columns: str, **kw: Any) -> Table:
    from rich.table import Table

    return Table(*columns, **kw)


class LazyGroup(click.Group):
    """A group whose commands in ``lazy`` (name -> ("module:attribute", short help)) load when named;
    its help lists them from their short help, without loading them."""

    lazy: dict[str, tuple[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy:
            module, _, attribute = self.lazy[name][0].partition(":")
            command = self.commands.get(name) or getattr(importlib.import_module(module), attribute)
            self.commands.setdefault(name, command)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                command = self.commands[name]
                if not command.hidden:
                    rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
            else:
                rows.append((name, _short(self.lazy[name][1], formatter.width - 6 - len(name))))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _short(text: str, limit: int) -> str:
    """``text`` cut at a word within ``limit`` characters, as click shortens a command's help."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3)].rsplit(" ", 1)[0].rstrip(",;:") + "..."


class KernelGroup(LazyGroup):
    """Turns every kernel error into one line on stderr (exit 1); no traceback reaches users."""

    lazy = {
        "escrow": (
            "judiciary.cli:escrow",
            "Escrow settled by the judiciary: a buyer's pytest suite decides who gets paid.",
        ),
        "serve": (
            "kernel.service.commands:serve",
            "Run the daemon for this home: a warm pool of fresh sandboxes, the HTTP API",
        ),
        "token": (
            "kernel.service.commands:token",
            "API tokens: each acts as one principal, or as an operator (--admin).",
        ),
        "agent": (
            "kernel.world.commands:agent",
            "Agents: principals animated by a config (a policy artifact plus parameters).",
        ),
        "agents": ("kernel.world.commands:agents_cmd", "List agents: config, owner, state, balance."),
        "world": (
            "kernel.world.commands:world",
            "The world: its clock (ticks), its status, the Mint's tasks and weights.",
        ),
        "pool": ("kernel.world.commands:pool", "Pools: a swarm's shared, append-only memory, read and written by"),
        "message": ("kernel.world.commands:message", "Leave a message for a principal (its policy sees it next step)."),
        "telemetry": (
            "kernel.telemetry.commands:telemetry",
            "The economy's metrics: the latest tick's values and totals over a window of ticks.",
        ),
        "dashboard": ("kernel.telemetry.commands:dashboard", "Make a read-only token for the dashboard and print the"),
        "browse": ("kernel.telemetry.commands:browse", "Open the home's database read-only in Datasette, for ad-hoc"),
    }

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KernelError as exc:
            raise click.ClickException(printable(str(exc))) from exc
        except UnicodeError as exc:
            raise click.ClickException(
                "an argument or KERNEL_* setting is not valid UTF-8 text; give UTF-8 (names are ASCII)."
            ) from exc
        except sqlite3.Error as exc:
            raise click.ClickException(f"the kernel database failed: {exc}; check --home and retry.") from exc
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`| head`): say so once, on stderr, and do not fail again at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.ClickException(
                "standard output was closed before everything was written (e.g. by `head`); the output is incomplete."
            ) from None
        except RecursionError as exc:
            raise click.ClickException("the input nests too deeply to process; flatten it.") from exc
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise click.ClickException(
                f"the kernel could not use a file{where}: {exc.strerror or exc}; check the path and its permissions."
            ) from exc
        except Exception as exc:
            if os.environ.get("KERNEL_DEBUG"):
                raise
            raise click.ClickException(
                f"internal error: {type(exc).__name__}: {exc} (set KERNEL_DEBUG=1 to see the traceback)"
            ) from exc


def printable(message: str) -> str:
    """One line whatever a user typed into it: control characters are shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def kernel_of(ctx: click.Context) -> Any:
    from kernel.api import Kernel

    obj = ctx.find_root().obj
    if "kernel" not in obj:
        obj["kernel"] = Kernel(obj["settings"])
        ctx.call_on_close(obj["kernel"].close)
    return obj["kernel"]


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        if hasattr(data, "model_dump_json"):  # a pydantic model
            click.echo(data.model_dump_json(indent=2))
        else:
            click.echo(json.dumps(_plain(data), indent=2, default=str))
    else:
        human()


def _plain(data: Any) -> Any:
    if hasattr(data, "model_dump"):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [_plain(x) for x in data]
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    return data


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
LIMITS_EXAMPLE = """e.g. '{"cpu_seconds": 10, "memory_mb": 256, "wall_seconds": 30}'"""  # in bad-JSON errors
as_option = click.option("--as", "principal", required=True, help="The principal acting.")


@click.group(cls=KernelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    help="State directory (default: $KERNEL_HOME, else ./.kernel).",
)
@click.pass_context
def main(ctx: click.Context, home: str | None) -> None:
    """A sandboxed artifact-execution kernel: code packages run in throwaway,
    locked-down containers, metered and paid for in scrip.

    \b
    Example:
      kernel principal create alice --grant 100
      kernel submit examples/wordcount --as alice
      kernel invoke 3f9a2c --as alice --input '{"text": "to be or not"}'
    """
    if ctx.obj and "settings" in ctx.obj:
        return  # the daemon runs this command line on its own kernel (kernel.service.bridge)
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from kernel.settings import Settings

    try:
        if home is not None and not home.strip():
            raise click.BadParameter(
                "must not be empty: leave --home out to use $KERNEL_HOME or ./.kernel.", param_hint="--home"
            )
        settings = Settings(home=Path(home)) if home is not None else Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:  # a rule between settings
            raise click.ClickException(
                f"the KERNEL_* settings do not fit together: {first['msg'].removeprefix('Value error, ')};"
                " fix or unset them."
            ) from None
        name = "KERNEL_" + "_".join(str(part) for part in first["loc"][:1]).upper()
        field = ".".join(str(part) for part in first["loc"][1:])
        raise click.ClickException(
            f"{name}{f' ({field})' if field else ''}: {first['msg']} (got {str(first.get('input'))[:80]!r});"
            " fix or unset the environment variable."
        ) from None
    except SettingsError as exc:
        # pydantic-settings: a structured setting whose value is not JSON
        field = str(exc).split('"')[1] if '"' in str(exc) else "?"
        example = {"default_limits": LIMITS_EXAMPLE, "max_limits": LIMITS_EXAMPLE}.get(field, "a JSON value")
        raise click.ClickException(f"KERNEL_{field.upper()} is not valid JSON; give {example}, or unset it.") from None
    ctx.obj = {"settings": settings}


class UserPath(click.Path):
    """A path the user typed: relative to the caller's working directory, also when the daemon
    runs the command for the thin client (whose working directory it is told)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from kernel.service.bridge import CLIENT_CWD

        cwd = CLIENT_CWD.get()
        if cwd is not None and isinstance(value, str) and value != "-" and not os.path.isabs(value):
            value = os.path.join(cwd, os.path.expanduser(value) if value.startswith("~") else value)
        return super().convert(value, param, ctx)


# -- principals ---------------------------------------------------------------------


@main.group()
def principal() -> None:
    """Create and list principals (the agents that own artifacts and scrip)."""


@principal.command("create")
@click.argument("name")
@click.option("--grant", default=0, show_default=True, help="Scrip minted to the new principal.")
@json_option
@click.pass_context
def principal_create(ctx: click.Context, name: str, grant: int, as_json: bool) -> None:
    """Create principal NAME with an account holding GRANT scrip.

    \b
    Example:
      kernel principal create alice --grant 100
    """
    balance = kernel_of(ctx).create_principal(name, grant)
    emit({"name": name, "balance": balance}, as_json, lambda: out.print(f"created {name} with {balance} scrip"))


@principal.command("list")
@json_option
@click.pass_context
def principal_list(ctx: click.Context, as_json: bool) -> None:
    """List principals and their balances.

    \b
    Example:
      kernel principal list --json
    """
    rows = kernel_of(ctx).principals()

    def human() -> None:
        table = new_table("principal", "balance", "created")
        for r in rows:
            table.add_row(r["name"], str(r["balance"]), r["created_at"][:19])
        out.print(table)

    emit(rows, as_json, human)


@main.command()
@click.argument("name")
@json_option
@click.pass_context
def balance(ctx: click.Context, name: str, as_json: bool) -> None:
    """Print principal NAME's balance in scrip.

    \b
    Example:
      kernel balance alice
    """
    value = kernel_of(ctx).balance(name)
    emit({"name": name, "balance": value}, as_json, lambda: out.print(f"{name}: {value} scrip"))


@main.command()
@click.argument("words", nargs=-1, metavar="[FROM] TO AMOUNT")
@click.option("--as", "principal", help="The payer (instead of FROM).")
@click.option("--memo", default="", help="A note kept on the ledger row (at most 500 characters).")
@json_option
@click.pass_context
def transfer(ctx: click.Context, words: tuple[str, ...], principal: str | None, memo: str, as_json: bool) -> None:
    """Move AMOUNT scrip from FROM (or --as) to principal TO: one ledger row.

    \b
    Example:
      kernel transfer alice bob 15 --memo "for the parser"
      kernel transfer bob 15 --as alice
    """
    if len(words) == 3 and principal is None:
        principal, to, amount_text = words
    elif len(words) == 2 and principal is not None:
        to, amount_text = words
    else:
        raise click.UsageError("give FROM TO AMOUNT, or TO AMOUNT with --as FROM.")
    try:
        amount = int(amount_text)
    except ValueError:
        raise click.UsageError(f"AMOUNT must be a whole number of scrip (got {amount_text!r}).") from None
    left = kernel_of(ctx).transfer(principal, to, amount, memo)
    emit(
        {"from": principal, "to": to, "amount": amount, "balance": left},
        as_json,
        lambda: out.print(f"{principal} paid {to} {amount} scrip; {principal} has {left} left"),
    )


@main.group("ledger")
def ledger_group() -> None:
    """Check the ledger's invariants."""


@ledger_group.command("check")
@json_option
@click.pass_context
def ledger_check(ctx: click.Context, as_json: bool) -> None:
    """Verify that scrip is conserved: balances match ledger rows and sum to the supply.

    Exits 1 if any invariant is broken.

    \b
    Example:
      kernel ledger check --json
    """
    import judiciary.court  # noqa: F401 - registers escrow holds with the check

    report = kernel_of(ctx).ledger_check()

    def human() -> None:
        out.print(
            f"supply {report.supply} = principals {report.principals_total} + holds {report.holds_total}:"
            f" {'ok' if report.ok else 'BROKEN'}"
        )
        for p in report.problems:
            out.print(f"  - {p}")
        for n in report.notes:
            out.print(f"  note: {n}")

    emit(report, as_json, human)
    if not report.ok:
        sys.exit(1)


# -- artifacts ----------------------------------------------------------------------


@main.command()
@click.argument("path", type=UserPath(path_type=Path))
@as_option
@click.option(
    "--public", is_flag=True, help="Let every principal read the package's files (kernel_client.read_artifact)."
)
@json_option
@click.pass_context
def submit(ctx: click.Context, path: Path, principal: str, public: bool, as_json: bool) -> None:
    """Store the package at PATH (a folder, .tar.gz or .zip with a pyproject.toml).

    The artifact id is the sha256 of the package's normal form: the same content
    always gets the same id.

    \b
    Example:
      kernel submit examples/wordcount --as alice
    """
    result = kernel_of(ctx).submit(path, principal, public)
    a = result.artifact

    def human() -> None:
        verb = "stored" if result.created else "already stored"
        owner = "" if a.owner == principal else f" (owner {a.owner})"
        out.print(f"{verb} {a.name} {a.version} as {a.id}{owner}")

    emit(result, as_json, human)


@main.command()
@click.option("--owner", help="Only artifacts owned by this principal.")
@json_option
@click.pass_context
def artifacts(ctx: click.Context, owner: str | None, as_json: bool) -> None:
    """List stored artifacts.

    \b
    Example:
      kernel artifacts --owner alice
    """
    items = kernel_of(ctx).artifacts(owner)

    def human() -> None:
        table = new_table("id", "name", "version", "kind", "owner", "price", "files", "bytes")
        for a in items:
            table.add_row(a.short_id, a.name, a.version, a.kind, a.owner, str(a.price), str(a.files), str(a.size))
        out.print(table)

    emit(items, as_json, human)


@main.command()
@click.argument("artifact_id")
@json_option
@click.pass_context
def artifact(ctx: click.Context, artifact_id: str, as_json: bool) -> None:
    """Show one artifact (id or unique prefix of at least 6 hex digits).

    \b
    Example:
      kernel artifact 3f9a2c --json
    """
    a = kernel_of(ctx).artifact(artifact_id)
    emit(a, as_json, lambda: out.print(a.model_dump_json(indent=2)))


# -- runs ---------------------------------------------------------------------------


def parse_input(text: str | None, file: Path | None, settings: Settings) -> Any:
    """The JSON input of --input or --input-file ('-': stdin), read up to the input cap only."""
    if text is not None and file is not None:
        raise InvalidInput("give --input or --input-file, not both.")
    cap = settings.max_input_bytes
    if file is not None:
        raw = read_user_file(file, cap, "--input-file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"--input-file {file} is not UTF-8 text (byte {exc.start}).") from exc
    if text is None:
        return None
    if len(text) > cap:
        raise InvalidInput(f"--input is larger than {cap} bytes (setting KERNEL_MAX_INPUT_BYTES); send less.")
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidInput(
            f"--input nests deeper than {settings.max_input_depth} levels (setting KERNEL_MAX_INPUT_DEPTH); flatten it."
        ) from None
    except ValueError as exc:
        raise InvalidInput(f"--input is not valid JSON ({exc}); quote it, e.g. --input '{{\"n\": 3}}'.") from exc


@main.command()
@click.argument("artifact_id")
@as_option
@click.option("--input", "input_text", help="The JSON value passed to the entrypoint.")
@click.option(
    "--input-file",
    type=UserPath(dir_okay=False, allow_dash=True, path_type=Path),
    help="Read the JSON input from a file ('-': standard input).",
)
@json_option
@click.pass_context
def invoke(
    ctx: click.Context, artifact_id: str, principal: str, input_text: str | None, input_file: Path | None, as_json: bool
) -> None:
    """Run ARTIFACT_ID's entrypoint in a fresh sandbox, paid by --as.

    Prints the returned value, the status, and the metered usage and cost.
    Exits 1 unless the run's status is ok.

    \b
    Example:
      kernel invoke 3f9a2c --as bob --input '{"text": "to be or not to be"}'
    """
    value = parse_input(input_text, input_file, ctx.find_root().obj["settings"])
    result = kernel_of(ctx).invoke(artifact_id, principal, value)
    emit(result, as_json, lambda: print_run(result))
    if result.status != "ok":
        sys.exit(1)


def print_run(r: RunResult) -> None:
    u = r.usage
    tick = f"  tick {r.tick}" if r.tick is not None else ""
    out.print(f"run {r.id}  status {r.status.value}  runtime {r.runtime}  trigger {r.trigger}{tick}")
    if r.reason:
        out.print(f"reason: {r.reason}")
    if r.status == "ok":
        out.print(f"output: {json.dumps(r.output)}")
    out.print(
        f"usage: cpu {u.cpu_seconds:.3f} s, wall {u.wall_seconds:.3f} s, peak memory"
        f" {u.peak_memory_bytes / 2**20:.1f} MiB, in {u.bytes_in} B, out {u.bytes_out} B,"
        f" workspace {u.workspace_bytes} B"
    )
    out.print(
        f"cost: {r.cost} scrip; kernel calls: {u.proxy_calls} ({u.proxy_bytes_in} B in, {u.proxy_bytes_out} B out)"
    )
    if r.parent_run_id:
        out.print(f"invoked by run {r.parent_run_id} (depth {r.depth})")
    if r.audit_incomplete:
        out.print("audit: INCOMPLETE (see `kernel audit events --run` for why)")
    for name, text, cut in (("stdout", r.stdout, r.stdout_truncated), ("stderr", r.stderr, r.stderr_truncated)):
        if text:
            out.print(f"{name}{' (truncated)' if cut else ''}:\n{text.rstrip()}", markup=False)


@main.command("runs")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, MAX_LISTED), help="At most this many.")
@click.option("--as", "principal", help="Only runs of this principal.")
@json_option
@click.pass_context
def runs_cmd(ctx: click.Context, limit: int, principal: str | None, as_json: bool) -> None:
    """List recent runs, newest first.

    \b
    Example:
      kernel runs --limit 5 --json
    """
    items = kernel_of(ctx).runs(limit, principal)

    def human() -> None:
        table = new_table("run", "artifact", "principal", "trigger", "status", "cpu s", "wall s", "cost", "started")
        for r in items:
            table.add_row(
                r.id,
                r.artifact_id[:12],
                r.principal,
                r.trigger if r.tick is None else f"{r.trigger} @{r.tick}",
                r.status.value,
                f"{r.usage.cpu_seconds:.3f}",
                f"{r.usage.wall_seconds:.3f}",
                str(r.cost),
                str(r.started_at)[:19],
            )
        out.print(table)

    emit(items, as_json, human)


@main.command()
@click.argument("run_id")
@json_option
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show one run: status, output, usage, cost, limits.

    \b
    Example:
      kernel show 5be1d0 --json
    """
    r = kernel_of(ctx).run(run_id)
    emit(r, as_json, lambda: print_run(r))


# -- audit and graph ----------------------------------------------------------------


class AuditGroup(LazyGroup):
    lazy = {
        "scan": (
            "kernel.audit.commands:audit_scan",
            "Fingerprint everything new since the last scan and run the black-market detectors.",
        ),
        "flows": ("kernel.audit.commands:audit_flows", "For every ordered pair of principals: bytes of content"),
        "alerts": (
            "kernel.audit.commands:audit_alerts",
            "List the flows that look like black-market transfers, highest score first.",
        ),
    }


@main.group(cls=AuditGroup)
def audit() -> None:
    """Every read and write (events, export) and the black-market auditor (scan, flows, alerts)."""


@audit.command("events")
@click.option("--run", "run_id", help="Only events of this run (id or prefix).")
@click.option("--principal", help="Only events of runs acting for this principal.")
@click.option(
    "--limit",
    default=1000,
    show_default=True,
    type=click.IntRange(0, MAX_LISTED),
    help="At most this many events (0: all).",
)
@json_option
@click.pass_context
def audit_events(ctx: click.Context, run_id: str | None, principal: str | None, limit: int, as_json: bool) -> None:
    """List audit events, oldest first.

    Each has its time, run, principal, operation, target (artifact and path),
    byte count, sha256 and source (proxy, kernel or file).

    \b
    Example:
      kernel audit events --run 5be1d0 --json
    """
    events = kernel_of(ctx).events(run_id, principal, limit or None)

    def human() -> None:
        columns = ["id", "time", "run", "principal", "source", "op", "target", "bytes", "sha256", "detail"]
        said = any(e.reasoning for e in events)
        table = new_table(*columns, *(["reasoning"] if said else []))
        for e in events:
            target = " ".join(x for x in ((e.artifact_id or "")[:12], e.path or "") if x)
            table.add_row(
                str(e.id), e.at.strftime("%H:%M:%S.%f")[:-3], e.run_id[:8], e.principal, e.source,
                e.op if e.ok else f"{e.op} (refused)", target, "" if e.bytes is None else str(e.bytes),
                (e.digest or "")[:12], e.detail or "", *([printable(e.reasoning or "")[:200]] if said else []),
            )  # fmt: skip
        out.print(table)

    emit(events, as_json, human)


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", type=UserPath(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.pass_context
def audit_export(ctx: click.Context, fmt: Literal["jsonl", "csv"], output: Path | None) -> None:
    """Export every audit event for offline analysis, streamed as JSON lines or CSV.

    \b
    Example:
      kernel audit export --format csv -o events.csv
    """
    chunks = kernel_of(ctx).export_events(fmt)
    if output is None:
        sys.stdout.flush()
        for chunk in chunks:
            write_all(sys.stdout.fileno(), chunk.encode())
        return
    try:
        fh = output.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot write {output}: {exc.strerror}; choose a path in a folder you can write.") from exc
    with fh:
        for chunk in chunks:
            fh.write(chunk)
    err.print(f"wrote {output}")


def write_all(fd: int, data: bytes) -> None:
    """Write every byte or raise: a reader that closes mid-write ends in BrokenPipeError, never
    in a silently short output (a buffered stream can drop the rest of one large write)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@main.command()
@json_option
@click.pass_context
def graph(ctx: click.Context, as_json: bool) -> None:
    """Print the dependency graph: which artifacts invoked which, how often, how deep.

    \b
    Example:
      kernel graph --json
    """
    g = kernel_of(ctx).graph()

    def human() -> None:
        names = {n.id: f"{n.name} ({n.id[:8]})" for n in g.nodes}
        out.print(f"{len(g.nodes)} artifacts ran, {len(g.edges)} invocation edges, depth {g.depth}")
        for e in g.edges:
            out.print(f"  {names.get(e.parent, e.parent[:8])} -> {names.get(e.child, e.child[:8])}  x{e.invocations}")
        if g.most_reused:
            out.print("most reused: " + ", ".join(f"{names[n.id]} by {n.invoked_by}" for n in g.most_reused))

    emit(g, as_json, human)


# -- engine -------------------------------------------------------------------------


@main.group()
def image() -> None:
    """Build the sandbox image every artifact runs in."""


@image.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if an image of this recipe exists.")
@json_option
@click.pass_context
def image_build(ctx: click.Context, force: bool, as_json: bool) -> None:
    """Build the sandbox image from sandbox_images/ (cached by recipe digest).

    Uses a registry base image where one can be pulled, else a Debian root
    filesystem made with debootstrap and `docker import`.

    \b
    Example:
      kernel image build
    """
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from kernel.sandbox import image as image_mod
    from kernel.sandbox.docker import connect

    client = connect()
    settings = ctx.find_root().obj["settings"]
    from rich.console import Console

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.fields[phase]:<7}"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
        disable=as_json and not console.is_terminal,
    ) as bar:
        task = bar.add_task("starting", total=1.0, phase="image")

        def progress(phase: str, message: str, fraction: float | None) -> None:
            bar.update(task, description=message[:70], phase=phase, completed=fraction or 0)

        try:
            info = image_mod.build(client, settings, progress, force=force)
        finally:
            client.close()
    emit(
        info,
        as_json,
        lambda: out.print(f"image {info.tag} ({info.id[:19]}, {info.size / 2**20:.0f} MiB, source {info.source})"),
    )


@main.command()
@json_option
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Report the engine version, runtimes, image and anything missing.

    Exits 1 if something is missing.

    \b
    Example:
      kernel doctor --json
    """
    from kernel.doctor import diagnose

    report = diagnose(ctx.find_root().obj["settings"])

    def human() -> None:
        eng = report.get("engine") or {}
        out.print(f"home:     {report['home']}")
        out.print(f"engine:   Docker {eng.get('version', '-')} (cgroup v{eng.get('cgroup_version', '-')})")
        out.print(f"runtimes: {', '.join(eng.get('runtimes', [])) or '-'}; runs use {report.get('runtime', '-')}")
        img = report.get("image") or {}
        out.print(f"image:    {img.get('tag', '-')} {img.get('id') or '(not built)'}")
        out.print(f"quota:    {'tmpfs per run' if report['workspace_quota'] else 'none (not root)'}")
        for m in report["missing"]:
            out.print(f"missing:  {m}")

    emit(report, as_json, human)
    if report["missing"] and report.get("engine") is None:
        sys.exit(1)


@main.command()
@json_option
@click.pass_context
def sweep(ctx: click.Context, as_json: bool) -> None:
    """Clean up after a crashed kernel: refund its runs, remove its containers and run folders.

    Runs automatically before invocations; safe to run any time.

    \b
    Example:
      kernel sweep --json
    """
    done = kernel_of(ctx).sweep()
    emit(done, as_json, lambda: out.print(", ".join(f"{k}: {len(v)}" for k, v in done.items())))


if __name__ == "__main__":
    # `python -m kernel.cli`: run the module everything registered on (kernel.audit.commands
    # imports kernel.cli, which is a second module beside __main__).
    from kernel.cli import main as registered

    registered()
