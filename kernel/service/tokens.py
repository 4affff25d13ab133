"""API tokens: a token acts as one principal, or as an operator (admin).

A token is ``kt_<id>_<secret>``: the id names it (in listings, in `kernel token revoke`),
the secret is 32 random bytes, shown once when the token is made. Only the secret's
SHA-256 is stored; with that much entropy a fast hash is enough, and lookups compare
digests in constant time.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from kernel import ledger
from kernel.db import Database, now
from kernel.errors import InvalidInput, NotFound

PREFIX = "kt_"
MAX_LABEL = 200


@dataclass(frozen=True)
class Identity:
    """Who a request acts for: a principal, or an operator (``admin``) who may act for anyone."""

    token_id: str
    principal: str | None
    admin: bool
    scope: str = "full"  # 'telemetry': reads the dashboard's data and nothing else


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


SCOPES = ("full", "telemetry")


def create(
    db: Database, principal: str | None, admin: bool = False, label: str = "", scope: str = "full"
) -> dict[str, Any]:
    """Make a token for ``principal`` (or an admin token); returns its id and, once only, its secret.
    A ``telemetry`` token (an operator's) may only read the dashboard's data (``TELEMETRY_READS``)."""
    if admin == (principal is not None):
        raise InvalidInput("a token is either for one principal (--as P) or an operator's (--admin), not both.")
    if scope not in SCOPES or (scope == "telemetry" and not admin):
        raise InvalidInput("a token's scope is 'full', or 'telemetry' for an operator's read-only dashboard token.")
    if not isinstance(label, str) or len(label) > MAX_LABEL or not label.isprintable():
        raise InvalidInput(f"a token's label is printable text of at most {MAX_LABEL} characters.")
    db.require_writable()
    if principal is not None:
        ledger.require_principal(db, principal)
    token_id = secrets.token_hex(6)
    secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO api_tokens (id, principal, admin, secret_sha256, label, created_at, scope)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token_id, principal, int(admin), _digest(secret), label, now(), scope),
        )
    return {"id": token_id, "principal": principal, "admin": admin, "label": label, "scope": scope, "token": secret}


def revoke_scoped(db: Database, scope: str, label: str) -> list[str]:
    """Revoke the live tokens of ``scope`` labelled ``label``; their ids."""
    db.require_writable()
    with db.transaction() as conn:
        found = conn.execute(
            "SELECT id FROM api_tokens WHERE scope = ? AND label = ? AND revoked_at IS NULL", (scope, label)
        )
        ids = [r[0] for r in found]
        conn.executemany("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", [(now(), i) for i in ids])
    return ids


def allows(who: Identity, method: str, path: str) -> bool:
    """Whether a token's scope lets it make this request (a full token: always; rights are checked later)."""
    if who.scope == "full":
        return True
    return method in ("GET", "HEAD") and (path in TELEMETRY_READS or path.startswith("/v1/telemetry/"))


TELEMETRY_READS = frozenset({"/v1/telemetry", "/v1/ledger/check", "/v1/whoami"})


def revoke(db: Database, token_id: str) -> dict[str, Any]:
    """Revoke a token by its id; a revoked token is refused from then on."""
    db.require_writable()
    with db.transaction() as conn:
        row = conn.execute("SELECT id, revoked_at FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"no token has the id {token_id!r}; see `kernel token list`.")
        if row[1] is None:
            conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", (now(), token_id))
    return {"id": token_id, "revoked": True}


def listing(db: Database) -> list[dict[str, Any]]:
    rows = db.rows(
        "SELECT id, principal, admin, scope, label, created_at, revoked_at FROM api_tokens ORDER BY created_at"
    )
    return [{**r, "admin": bool(r["admin"])} for r in rows]


def verify(db: Database, presented: str) -> Identity | None:
    """The identity of a presented token, or None (unknown, malformed or revoked)."""
    if not presented.startswith(PREFIX) or len(presented) > 200 or not presented.isascii():
        return None
    token_id = presented[len(PREFIX) :].partition("_")[0]
    row = db.one(
        "SELECT id, principal, admin, scope, secret_sha256, revoked_at FROM api_tokens WHERE id = ?", (token_id,)
    )
    if row is None or row["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(row["secret_sha256"], _digest(presented)):
        return None
    return Identity(row["id"], row["principal"], bool(row["admin"]), row["scope"])
