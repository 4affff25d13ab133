"""`kernel serve` and `kernel token ...`: the daemon and its API tokens."""

import json
import sys
from typing import Any

import click

from kernel.cli import emit, json_option, kernel_of, main, out


@main.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where the HTTP API listens (default: $KERNEL_LISTEN, else 127.0.0.1:8765; port 0 picks one).",
)
@click.option("--json", "as_json", is_flag=True, help="When ready, print where it serves as one JSON line.")
@click.pass_context
def serve(ctx: click.Context, listen: str | None, as_json: bool) -> None:
    """Run the daemon for this home: a warm pool of fresh sandboxes, the HTTP API
    (tokens: `kernel token create`), and the Unix socket the `kernel` command uses.

    While it runs, every `kernel` command on this home goes through it. Stop it with
    Ctrl-C or SIGTERM: requests in flight finish, its containers are removed. The API's
    reference is served at /docs (OpenAPI at /openapi.json).

    \b
    Example:
      kernel serve --listen 127.0.0.1:8765 &
      kernel token create --as alice
    """
    from kernel.service.daemon import serve as run

    settings = ctx.find_root().obj["settings"]

    def ready(info: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(info), flush=True)
        else:
            out.print(f"kernel serve: {settings.home} on {info['url']} (API docs {info['url']}/docs), {info['socket']}")
            sys.stdout.flush()

    run(settings, listen, ready)


@main.group()
def token() -> None:
    """API tokens: each acts as one principal, or as an operator (--admin)."""


@token.command("create")
@click.option("--as", "principal", help="The principal the token acts for.")
@click.option("--admin", is_flag=True, help="An operator's token: acts for anyone, reads everything.")
@click.option("--label", default="", help="A note to tell tokens apart (e.g. the agent's host).")
@json_option
@click.pass_context
def token_create(ctx: click.Context, principal: str | None, admin: bool, label: str, as_json: bool) -> None:
    """Make an API token. Its secret is printed once; only its digest is kept.

    \b
    Example:
      kernel token create --as alice --label laptop
      curl -H "Authorization: Bearer kt_..." http://127.0.0.1:8765/v1/whoami
    """
    from kernel.service import tokens

    made = tokens.create(kernel_of(ctx).db, principal, admin, label)
    emit(
        made, as_json, lambda: out.print(f"token {made['id']} for {principal or 'operators (admin)'}:\n{made['token']}")
    )


@token.command("revoke")
@click.argument("token_id")
@json_option
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str, as_json: bool) -> None:
    """Revoke a token by its id (see `kernel token list`); it is refused from then on.

    \b
    Example:
      kernel token revoke 3f9a2c1b7d0e
    """
    from kernel.service import tokens

    done = tokens.revoke(kernel_of(ctx).db, token_id)
    emit(done, as_json, lambda: out.print(f"token {token_id} revoked"))


@token.command("list")
@json_option
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """List tokens (ids, principals, labels; never secrets).

    \b
    Example:
      kernel token list --json
    """
    from kernel.service import tokens

    rows = tokens.listing(kernel_of(ctx).db)

    def human() -> None:
        for r in rows:
            who = "admin" if r["admin"] else r["principal"]
            state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
            out.print(f"{r['id']}  {who:<20} {state:<40} {r['label']}")

    emit(rows, as_json, human)
