"""Principals, accounts and double-entry transfers of scrip.

Every balance change is one ``ledger`` row (debit account -> credit account, a positive
integer amount) written in the same transaction as the balance updates and the state
change that caused it. Scrip enters only by ``mint`` (a row from the mint account,
whose balance is minus the supply), so the sum of all balances is always zero and the
supply is visible. Balances of principals and holds never go negative (a CHECK
constraint backs the explicit test).
"""

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from kernel.db import Database, now
from kernel.errors import InsufficientFunds, InvalidInput, LedgerError, NotFound
from kernel.models import MAX_SCRIP, PRINCIPAL_RE

MINT = "mint"


@dataclass(frozen=True)
class Bounds:
    """The largest single amount and the largest total supply (settings max_amount, max_supply)."""

    max_amount: int = 10**12
    max_supply: int = 10**15

    def amount(self, value: object, what: str, *, zero: bool = False) -> int:
        """``value`` as an amount of scrip, or one sentence saying why it is not one."""
        low = "zero or a positive" if zero else "a positive"
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
            raise InvalidInput(f"{what} must be {low} whole number of scrip (got {value!r}).")
        if value > self.max_amount:
            raise InvalidInput(
                f"{what} of {value} is above the largest amount, {self.max_amount} scrip (setting KERNEL_MAX_AMOUNT)."
            )
        return value


def principal_account(name: str) -> str:
    return f"principal:{name}"


def hold_account(ref: str) -> str:
    return f"hold:{ref}"


RESERVED = {"mint"}  # system principals (the Mint's escrows): never made by a user or an agent


def check_name(name: str) -> None:
    if not isinstance(name, str) or not PRINCIPAL_RE.fullmatch(name):
        raise InvalidInput(
            f"{name!r} is not a valid principal name: use 1-40 lowercase letters, digits,"
            " '-' or '_', starting with a letter."
        )
    if name in RESERVED:
        raise InvalidInput(f"'{name}' is the name of a system principal; choose another name.")


def ensure_mint(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT OR IGNORE INTO accounts (id, kind) VALUES (?, 'mint')", (MINT,))


def create_principal(db: Database, name: str, grant: int = 0, bounds: Bounds = Bounds()) -> int:
    """Create a principal with an account, minting ``grant`` scrip to it; returns the balance."""
    check_name(name)
    bounds.amount(grant, "--grant", zero=True)
    with db.transaction() as conn:
        add_principal(conn, name)
        if grant:
            mint(conn, principal_account(name), grant, bounds, memo="grant")
    return grant


def add_principal(conn: sqlite3.Connection, name: str, what: str = "principal") -> None:
    """A new principal with an empty account, inside the caller's transaction."""
    if conn.execute("SELECT 1 FROM principals WHERE name = ?", (name,)).fetchone():
        raise InvalidInput(f"principal '{name}' already exists; choose another name for the {what}.")
    conn.execute("INSERT INTO principals VALUES (?, ?)", (name, now()))
    conn.execute(
        "INSERT INTO accounts (id, kind, principal) VALUES (?, 'principal', ?)", (principal_account(name), name)
    )


def supply_in(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT balance FROM accounts WHERE id = ?", (MINT,)).fetchone()
    return -int(row[0]) if row else 0


def mint(conn: sqlite3.Connection, to: str, amount: int, bounds: Bounds, *, memo: str) -> int | None:
    """Create ``amount`` new scrip in account ``to``; refused if the supply would pass its bound."""
    ensure_mint(conn)
    supply = supply_in(conn)
    if supply + amount > bounds.max_supply:
        raise InvalidInput(
            f"minting {amount} scrip would take the supply from {supply} to {supply + amount}, above its bound of"
            f" {bounds.max_supply} (setting KERNEL_MAX_SUPPLY); grant less."
        )
    return move(conn, MINT, to, amount, kind="mint", memo=memo)


def transfer(db: Database, payer: str, to: str, amount: int, memo: str, bounds: Bounds,
             run_id: str | None = None) -> int:  # fmt: skip
    """Move ``amount`` from principal ``payer`` to principal ``to``; returns the payer's new balance."""
    bounds.amount(amount, "a transfer's amount")
    if len(memo) > 500 or not all(c.isprintable() for c in memo):
        raise InvalidInput("a transfer's memo is at most 500 printable characters.")
    require_principal(db, payer)
    require_principal(db, to)
    if payer == to:
        raise InvalidInput(f"{payer} cannot transfer to itself; name another principal.")
    with db.transaction() as conn:
        move(conn, principal_account(payer), principal_account(to), amount, kind="transfer", memo=memo, run_id=run_id)
        return balance_in(conn, payer)


def require_principal(conn: sqlite3.Connection | Database, name: str) -> None:
    c = conn.conn if isinstance(conn, Database) else conn
    if not c.execute("SELECT 1 FROM principals WHERE name = ?", (name,)).fetchone():
        raise NotFound(f"no principal named '{name}': create it with `kernel principal create {name}`.")


def balance_in(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT balance FROM accounts WHERE id = ?", (principal_account(name),)).fetchone()
    if row is None:
        raise NotFound(f"no principal named '{name}'.")
    return int(row[0])


def balance(db: Database, name: str) -> int:
    require_principal(db, name)
    row = db.one("SELECT balance FROM accounts WHERE id = ?", (principal_account(name),))
    assert row is not None
    return int(row["balance"])


def move(
    conn: sqlite3.Connection,
    debit: str,
    credit: str,
    amount: int,
    *,
    kind: str,
    memo: str = "",
    run_id: str | None = None,
) -> int | None:
    """Move ``amount`` from ``debit`` to ``credit`` inside the caller's transaction.

    Returns the ledger row id, or None for a zero amount (nothing to record).
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_SCRIP:
        raise LedgerError(f"a ledger amount must be a whole number from 0 to {MAX_SCRIP} (got {amount!r}).")
    if amount == 0 or debit == credit:
        return None
    row = conn.execute("SELECT kind, balance FROM accounts WHERE id = ?", (debit,)).fetchone()
    if row is None:
        raise NotFound(f"no account '{debit}'.")
    if row[0] != "mint" and row[1] < amount:
        raise InsufficientFunds(f"{debit.removeprefix('principal:')} has {row[1]} scrip and needs {amount}.")
    if not conn.execute("SELECT 1 FROM accounts WHERE id = ?", (credit,)).fetchone():
        raise NotFound(f"no account '{credit}'.")
    conn.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, debit))
    conn.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, credit))
    cur = conn.execute(
        "INSERT INTO ledger (at, debit, credit, amount, kind, memo, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (now(), debit, credit, amount, kind, memo, run_id),
    )
    return cur.lastrowid


def open_hold(
    conn: sqlite3.Connection, ref: str, payer: str, amount: int, *, run_id: str | None = None, memo: str = ""
) -> int | None:
    """Move ``amount`` from ``payer`` into a new hold account named after ``ref``; returns the row id."""
    account = hold_account(ref)
    conn.execute("INSERT INTO accounts (id, kind, principal) VALUES (?, 'hold', ?)", (account, payer))
    return move(conn, principal_account(payer), account, amount, kind="hold", run_id=run_id, memo=memo)


def settle_hold(
    conn: sqlite3.Connection, ref: str, to: str, *, kind: str, run_id: str | None = None, memo: str = ""
) -> int | None:
    """Empty a hold into principal ``to``'s account; returns the ledger row id (None if it was empty)."""
    account = hold_account(ref)
    row = conn.execute("SELECT balance FROM accounts WHERE id = ?", (account,)).fetchone()
    if row is None:
        raise NotFound(f"no hold '{ref}'.")
    return move(conn, account, principal_account(to), row[0], kind=kind, run_id=run_id, memo=memo)


# Clients that hold scrip (the judiciary's escrows) register a function returning the
# hold accounts they own right now; `check` requires every non-empty hold to have one owner.
HoldOwners = Callable[[Database], dict[str, str]]  # hold account -> what owns it
HOLD_OWNERS: list[HoldOwners] = []


def run_holds(db: Database) -> dict[str, str]:
    return {f"hold:run:{r['id']}": f"run {r['id']}" for r in db.rows("SELECT id FROM runs WHERE state = 'running'")}


HOLD_OWNERS.append(run_holds)


class LedgerReport(BaseModel):
    """The result of ``kernel ledger check``."""

    ok: bool
    supply: int
    principals_total: int
    holds_total: int
    problems: list[str]
    notes: list[str] = []  # within the hard bounds, above today's settings


def _account_sums(db: Database) -> dict[str, int]:
    """Each account's net ledger rows; summed in Python when SQLite's 64-bit SUM would overflow."""
    try:
        return {
            r["id"]: r["net"]
            for r in db.rows(
                "SELECT id, COALESCE(SUM(delta), 0) AS net FROM ("
                " SELECT credit AS id, amount AS delta FROM ledger"
                " UNION ALL SELECT debit AS id, -amount AS delta FROM ledger) GROUP BY id"
            )
        }
    except sqlite3.OperationalError as exc:
        if "overflow" not in str(exc):
            raise
    sums: dict[str, int] = {}
    with db.lock:
        for debit, credit, amount in db.conn.execute("SELECT debit, credit, amount FROM ledger"):
            sums[credit] = sums.get(credit, 0) + amount
            sums[debit] = sums.get(debit, 0) - amount
    return sums


def check(db: Database, bounds: Bounds = Bounds()) -> LedgerReport:
    """Verify conservation and bounds.

    Every balance is an integer equal to the sum of its account's ledger rows; principals
    and holds are never negative; balances sum to the supply; every row's amount is a
    whole number in 1..2^62, which no setting allows above; every non-empty hold has
    exactly one owner. Rows and a supply above today's (lowerable) settings are notes:
    they were allowed when written.
    """
    problems: list[str] = []
    notes: list[str] = []
    derived = _account_sums(db)
    totals = {"principal": 0, "hold": 0, "mint": 0}
    for acc in db.rows("SELECT id, kind, balance, typeof(balance) AS type FROM accounts"):
        if acc["type"] != "integer":
            problems.append(f"account {acc['id']} holds {acc['balance']!r}, which is not a whole number")
            continue
        totals[acc["kind"]] += acc["balance"]
        if acc["balance"] != derived.get(acc["id"], 0):
            problems.append(
                f"account {acc['id']} holds {acc['balance']} but its ledger rows sum to {derived.get(acc['id'], 0)}"
            )
        if acc["kind"] != "mint" and acc["balance"] < 0:
            problems.append(f"account {acc['id']} is negative ({acc['balance']})")
        if acc["kind"] != "mint" and acc["balance"] > MAX_SCRIP:
            problems.append(f"account {acc['id']} holds {acc['balance']}, above any possible supply")
    bad_rows = db.rows(
        "SELECT id, amount, kind FROM ledger WHERE typeof(amount) != 'integer' OR amount <= 0 OR amount > ?"
        " ORDER BY id LIMIT 20",
        (MAX_SCRIP,),
    )
    for row in bad_rows:
        problems.append(f"ledger row {row['id']} ({row['kind']}) moves {row['amount']!r}, outside 1..2^62")
    high = db.one("SELECT COUNT(*) AS n, MIN(id) AS first FROM ledger WHERE amount > ?", (bounds.max_amount,))
    if high and high["n"]:
        notes.append(
            f"{high['n']} ledger rows (the first: {high['first']}) move more than today's KERNEL_MAX_AMOUNT,"
            f" {bounds.max_amount}; they were written under a higher setting"
        )
    supply = -totals["mint"]
    if supply > MAX_SCRIP:
        problems.append(f"the supply {supply} is above any possible bound")
    elif supply > bounds.max_supply:
        notes.append(f"the supply {supply} is above today's KERNEL_MAX_SUPPLY, {bounds.max_supply}: no grant can mint")
    if totals["principal"] + totals["hold"] != supply:
        problems.append(f"principals ({totals['principal']}) + holds ({totals['hold']}) != supply ({supply})")
    owners: dict[str, list[str]] = {}
    for registry in HOLD_OWNERS:
        for account, owner in registry(db).items():
            owners.setdefault(account, []).append(owner)
    for hold in db.rows("SELECT id FROM accounts WHERE kind = 'hold' AND balance > 0"):
        found = owners.get(hold["id"], [])
        if len(found) != 1:
            what = "nothing in flight owns it" if not found else f"{len(found)} owners claim it"
            problems.append(f"{hold['id']} holds scrip but {what}")
    return LedgerReport(
        ok=not problems,
        supply=supply,
        principals_total=totals["principal"],
        holds_total=totals["hold"],
        problems=problems,
        notes=notes,
    )
