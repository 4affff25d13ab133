"""Pools: a swarm's shared, append-only memory, and messages between principals.

A pool has a member list; members read and append through the kernel (the CLI or
``kernel_client`` from a run). An entry is a JSON value, kept with its author, run, tick,
size and digest, and every append from a run is also an audit event of that run. Entries
are never changed or removed; membership changes are logged in ``pool_events``.
"""

import hashlib
import json
import re
from typing import Any

from kernel import ledger
from kernel.db import Database, now
from kernel.errors import InvalidInput, NotFound
from kernel.settings import Settings
from kernel.world.agents import current_tick
from kernel.world.errors import NotMember

POOL_RE = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def _members(db: Database, pool: str) -> list[str]:
    if db.one("SELECT 1 FROM pools WHERE name = ?", (pool,)) is None:
        raise NotFound(f"no pool named '{pool}': `kernel pool list` lists them.")
    return [r["principal"] for r in db.rows("SELECT principal FROM pool_members WHERE pool = ? ORDER BY principal",
                                            (pool,))]  # fmt: skip


def parse_members(members: list[str] | str) -> list[str]:
    names = [m.strip() for m in members.split(",")] if isinstance(members, str) else list(members)
    return sorted({m for m in names if m})


def create(db: Database, name: str, creator: str, members: list[str] | str) -> dict[str, Any]:
    """A new pool whose members are ``creator`` and ``members``."""
    if not isinstance(name, str) or not POOL_RE.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a valid pool name: use 1-40 lowercase letters, digits, '-' or '_'.")
    ledger.require_principal(db, creator)
    names = sorted(set(parse_members(members)) | {creator})
    for member in names:
        ledger.require_principal(db, member)
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM pools WHERE name = ?", (name,)).fetchone():
            raise InvalidInput(f"pool '{name}' already exists; choose another name.")
        conn.execute("INSERT INTO pools VALUES (?, ?, ?)", (name, creator, now()))
        conn.execute("INSERT INTO pool_events (pool, kind, actor, subject, at) VALUES (?, 'created', ?, ?, ?)",
                     (name, creator, creator, now()))  # fmt: skip
        for member in names:
            _join(conn, name, creator, member)
    return show(db, name)


def _join(conn: Any, pool: str, actor: str, member: str) -> None:
    conn.execute("INSERT INTO pool_members VALUES (?, ?)", (pool, member))
    conn.execute("INSERT INTO pool_events (pool, kind, actor, subject, at) VALUES (?, 'joined', ?, ?, ?)",
                 (pool, actor, member, now()))  # fmt: skip


def change_members(db: Database, pool: str, actor: str, add: list[str], remove: list[str]) -> dict[str, Any]:
    """Add or remove members; only a member may change the list, and the last member cannot leave."""
    members = set(_members(db, pool))
    if actor not in members:
        raise NotMember(f"{actor} is not a member of pool '{pool}'; only members change its members.")
    for name in add:
        ledger.require_principal(db, name)
    unknown = [n for n in remove if n not in members]
    if unknown:
        raise InvalidInput(f"{unknown[0]} is not a member of pool '{pool}'.")
    if not (members | set(add)) - set(remove):
        raise InvalidInput(f"pool '{pool}' would have no members left; keep at least one.")
    with db.transaction() as conn:
        for name in sorted(set(add) - members):
            _join(conn, pool, actor, name)
        for name in sorted(set(remove)):
            conn.execute("DELETE FROM pool_members WHERE pool = ? AND principal = ?", (pool, name))
            conn.execute("INSERT INTO pool_events (pool, kind, actor, subject, at) VALUES (?, 'left', ?, ?, ?)",
                         (pool, actor, name, now()))  # fmt: skip
    return show(db, pool)


def require_member(db: Database, pool: str, principal: str) -> None:
    if principal not in _members(db, pool):
        raise NotMember(f"{principal} is not a member of pool '{pool}'; a member can add it.")


def append(
    db: Database, settings: Settings, pool: str, author: str, data: Any, run_id: str | None = None
) -> dict[str, Any]:
    """Append one JSON value; returns its sequence number, size and digest."""
    require_member(db, pool, author)
    try:
        text = json.dumps(data, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"a pool entry must be a JSON value: {exc}.") from exc
    size = len(text.encode())
    if size > settings.pool_entry_bytes:
        raise InvalidInput(f"a pool entry is at most {settings.pool_entry_bytes} bytes (KERNEL_POOL_ENTRY_BYTES).")
    digest = hashlib.sha256(text.encode()).hexdigest()
    with db.transaction() as conn:
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM pool_entries WHERE pool = ?", (pool,)).fetchone()[0]
        if seq > settings.max_pool_entries:
            raise InvalidInput(f"pool '{pool}' holds its most entries ({settings.max_pool_entries}); make another.")
        conn.execute("INSERT INTO pool_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (pool, seq, author, run_id, current_tick(conn), text, size, digest, now()))  # fmt: skip
    return {"pool": pool, "seq": seq, "bytes": size, "digest": digest}


def read(db: Database, pool: str, reader: str, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Entries after ``since``, oldest first (members only)."""
    require_member(db, pool, reader)
    rows = db.rows(
        "SELECT seq, author, tick, data FROM pool_entries WHERE pool = ? AND seq > ? ORDER BY seq LIMIT ?",
        (pool, since, limit),
    )
    return [{"seq": r["seq"], "author": r["author"], "tick": r["tick"], "data": json.loads(r["data"])} for r in rows]


def show(db: Database, pool: str) -> dict[str, Any]:
    members = _members(db, pool)
    info = db.one("SELECT creator, created_at FROM pools WHERE name = ?", (pool,))
    assert info is not None
    count = db.one("SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM pool_entries WHERE pool = ?", (pool,))
    assert count is not None
    log = db.rows("SELECT kind, actor, subject, at FROM pool_events WHERE pool = ? ORDER BY id", (pool,))
    return {"name": pool, **info, "members": members, "entries": count["n"], "bytes": count["b"], "log": log}


def pools_of(db: Database, principal: str) -> list[str]:
    return [r["pool"] for r in db.rows("SELECT pool FROM pool_members WHERE principal = ? ORDER BY pool",
                                       (principal,))]  # fmt: skip


def list_pools(db: Database) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT p.name, p.creator, (SELECT COUNT(*) FROM pool_members m WHERE m.pool = p.name) AS members,"
        " (SELECT COUNT(*) FROM pool_entries e WHERE e.pool = p.name) AS entries FROM pools p ORDER BY p.name"
    )


def send_message(db: Database, settings: Settings, sender: str, to: str, body: str, run_id: str | None = None) -> int:
    """Leave ``body`` for principal ``to`` (its policy sees it in its next observation); the
    sender pays KERNEL_MESSAGE_PRICE, burned."""
    ledger.require_principal(db, sender)
    ledger.require_principal(db, to)
    if not isinstance(body, str) or not 0 < len(body) <= 4000:
        raise InvalidInput("a message is 1-4000 characters of text.")
    with db.transaction() as conn:
        ledger.move(conn, ledger.principal_account(sender), ledger.MINT, settings.message_price, kind="message",
                    memo=f"to {to}", run_id=run_id)  # fmt: skip
        cur = conn.execute("INSERT INTO messages (sender, recipient, body, run_id, tick, at) VALUES (?, ?, ?, ?, ?, ?)",
                           (sender, to, body, run_id, current_tick(conn), now()))  # fmt: skip
        return int(cur.lastrowid or 0)


def inbox(db: Database, principal: str, after: int = 0, limit: int = 50) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT id, sender AS 'from', body, tick FROM messages WHERE recipient = ? AND id > ? ORDER BY id LIMIT ?",
        (principal, after, limit),
    )
