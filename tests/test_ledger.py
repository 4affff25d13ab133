"""Principals and double-entry scrip: conservation, no negative balances, checks that bite."""

import pytest

from kernel import ledger
from kernel.api import Kernel
from kernel.errors import InsufficientFunds, InvalidInput, NotFound


def test_grant_is_minted_and_conserved(fake_kernel: Kernel) -> None:
    report = fake_kernel.ledger_check()
    assert report.ok and report.supply == 110 and report.principals_total == 110
    rows = fake_kernel.db.rows("SELECT debit, credit, amount, kind FROM ledger ORDER BY id")
    assert rows == [
        {"debit": "mint", "credit": "principal:alice", "amount": 100, "kind": "mint"},
        {"debit": "mint", "credit": "principal:bob", "amount": 10, "kind": "mint"},
    ]


@pytest.mark.parametrize(
    "name, grant, message",
    [("alice", 0, "already exists"), ("Alice!", 0, "not a valid principal name"), ("carol", -5, "--grant")],
)
def test_bad_principals(fake_kernel: Kernel, name: str, grant: int, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        fake_kernel.create_principal(name, grant)
    assert fake_kernel.ledger_check().supply == 110


def test_overdraft_moves_nothing(fake_kernel: Kernel) -> None:
    with pytest.raises(InsufficientFunds, match="bob has 10 scrip and needs 11"), fake_kernel.db.transaction() as conn:
        ledger.move(conn, "principal:bob", "principal:alice", 11, kind="transfer")
    assert fake_kernel.balance("bob") == 10 and fake_kernel.balance("alice") == 100


def test_hold_and_settle(fake_kernel: Kernel) -> None:
    with fake_kernel.db.transaction() as conn:
        ledger.open_hold(conn, "t1", "alice", 30, run_id="t1")
    assert fake_kernel.balance("alice") == 70
    assert fake_kernel.ledger_check().holds_total == 30
    with fake_kernel.db.transaction() as conn:
        row = ledger.settle_hold(conn, "t1", "bob", kind="price", run_id="t1")
    assert fake_kernel.db.one("SELECT amount, credit FROM ledger WHERE id = ?", (row,)) == {
        "amount": 30,
        "credit": "principal:bob",
    }
    assert fake_kernel.balance("bob") == 40
    assert fake_kernel.ledger_check().ok


def test_orphan_hold_is_reported(fake_kernel: Kernel) -> None:
    with fake_kernel.db.transaction() as conn:
        ledger.open_hold(conn, "run:nobody", "alice", 5, run_id="nobody")
    report = fake_kernel.ledger_check()
    assert not report.ok and "nothing in flight owns it" in report.problems[0]
    with fake_kernel.db.transaction() as conn:  # put it back so the fixture's check passes
        ledger.settle_hold(conn, "run:nobody", "alice", kind="refund", run_id="nobody")


def test_check_detects_a_balance_changed_behind_the_ledger(fake_kernel: Kernel) -> None:
    fake_kernel.db.conn.execute("UPDATE accounts SET balance = balance + 7 WHERE id = 'principal:bob'")
    report = fake_kernel.ledger_check()
    assert not report.ok
    assert any("principal:bob holds 17 but its ledger rows sum to 10" in p for p in report.problems)
    assert any("!= supply" in p for p in report.problems)
    fake_kernel.db.conn.execute("UPDATE accounts SET balance = balance - 7 WHERE id = 'principal:bob'")


def test_database_refuses_negative_balances(fake_kernel: Kernel) -> None:
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError):
        fake_kernel.db.conn.execute("UPDATE accounts SET balance = -1 WHERE id = 'principal:bob'")


def test_balance_of_unknown_principal(fake_kernel: Kernel) -> None:
    with pytest.raises(NotFound, match="kernel principal create carol"):
        fake_kernel.balance("carol")
