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


@pytest.mark.parametrize("name", ["eve\n", "eve\r", "\neve", "eve\x00", "évé", "e" * 41])
def test_names_are_matched_whole(fake_kernel: Kernel, name: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid principal name"):
        fake_kernel.create_principal(name)
    assert [p["name"] for p in fake_kernel.principals()] == ["alice", "bob"]


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


def test_grants_cannot_overflow_the_supply(fake_kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    for grant in (2**63 - 1, 10**25):
        with pytest.raises(InvalidInput, match="above the largest amount"):
            fake_kernel.create_principal("carol", grant)
    monkeypatch.setattr(fake_kernel.settings, "max_supply", 150)
    with pytest.raises(InvalidInput, match="from 110 to 170, above its bound of 150"):
        fake_kernel.create_principal("carol", 60)
    fake_kernel.create_principal("carol", 40)
    report = fake_kernel.ledger_check()
    assert report.ok and report.supply == 150
    assert [p["name"] for p in fake_kernel.principals()] == ["alice", "bob", "carol"]


@pytest.mark.parametrize("amount", [0, -1, True, 1.5, "3", 10**25])
def test_transfers_take_bounded_whole_amounts(fake_kernel: Kernel, amount: object) -> None:
    with pytest.raises(InvalidInput, match="transfer's amount"):
        fake_kernel.transfer("alice", "bob", amount)  # type: ignore[arg-type]
    assert fake_kernel.balance("alice") == 100


def test_transfer_moves_scrip_in_one_row(fake_kernel: Kernel) -> None:
    assert fake_kernel.transfer("alice", "bob", 30, "for the parser") == 70
    assert fake_kernel.balance("bob") == 40
    row = fake_kernel.db.rows("SELECT * FROM ledger ORDER BY id DESC LIMIT 1")[0]
    assert (row["debit"], row["credit"], row["amount"], row["kind"], row["memo"]) == (
        "principal:alice", "principal:bob", 30, "transfer", "for the parser",
    )  # fmt: skip


def test_check_reports_amounts_outside_their_bounds(fake_kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = fake_kernel.db.conn
    # What the defect left behind: a balance that became a float, and a row no setting allows.
    conn.execute(
        "INSERT INTO ledger (at, debit, credit, amount, kind) VALUES ('t', 'mint', 'principal:bob', ?, 'mint')",
        (2**63 - 1,),
    )
    conn.execute("UPDATE accounts SET balance = 1e19 WHERE id = 'principal:alice'")
    report = fake_kernel.ledger_check()
    assert not report.ok
    text = "\n".join(report.problems)
    assert "principal:alice holds 1e+19, which is not a whole number" in text
    assert f"moves {2**63 - 1}, outside 1..2^62" in text
    conn.execute("UPDATE accounts SET balance = 100 WHERE id = 'principal:alice'")
    conn.execute("DELETE FROM ledger WHERE amount = ?", (2**63 - 1,))
    assert fake_kernel.ledger_check().ok


def test_lowering_a_bound_later_is_a_note_not_a_broken_ledger(
    fake_kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_kernel.settings, "max_supply", 50)
    monkeypatch.setattr(fake_kernel.settings, "max_amount", 20)
    report = fake_kernel.ledger_check()
    assert report.ok and report.problems == []
    assert any("today's KERNEL_MAX_AMOUNT, 20" in n for n in report.notes)
    assert any("the supply 110 is above today's KERNEL_MAX_SUPPLY, 50" in n for n in report.notes)
    with pytest.raises(InvalidInput, match="above its bound of 50"):
        fake_kernel.create_principal("carol", 1)


def test_the_python_api_answers_bad_arguments_with_a_sentence(fake_kernel: Kernel, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cases = [
        (lambda: fake_kernel.transfer("alice", "bob", 1, None), "a memo must be text"),  # type: ignore[arg-type]
        (lambda: fake_kernel.runs(10**30), "limit must be a whole number from 1"),
        (lambda: fake_kernel.runs(-1), "limit must be a whole number from 1"),
        (lambda: fake_kernel.events(limit=10**30), "limit must be a whole number from 0"),
        (lambda: fake_kernel.artifact(None), "an artifact id must be text"),  # type: ignore[arg-type]
        (lambda: fake_kernel.submit(tmp_path, "alice", public="false"), "public must be True or False"),  # type: ignore[arg-type]
    ]
    for call, message in cases:
        with pytest.raises(InvalidInput, match=message):
            call()
    from kernel.errors import PackageError

    with pytest.raises(PackageError, match="does not exist"):
        fake_kernel.submit(str(tmp_path / "nothing"), "alice")  # a str path is a path
