"""Migrations are numbered, recorded, idempotent and atomic."""

import sqlite3
from pathlib import Path

import pytest

from kernel import db as dbmod
from kernel.db import Database


def test_migrations_apply_once(tmp_path: Path) -> None:
    d = Database(tmp_path / "k.db")
    assert [r["name"] for r in d.rows("SELECT name FROM _migrations")] == [
        "m001_initial",
        "m002_proxy_audit",
        "m003_escrow",
        "m004_provenance",
        "m005_bounds",
    ]
    assert d.migrate() == []
    assert d.rows("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    d.close()
    again = Database(tmp_path / "k.db")
    assert len(again.rows("SELECT name FROM _migrations")) == len(dbmod.MIGRATIONS)


def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def m002_broken(conn: sqlite3.Connection) -> None:
        dbmod.run_script(conn, "CREATE TABLE half (x INTEGER);\nCREATE TABLE oops (;\n")

    Database(tmp_path / "k.db").close()
    monkeypatch.setattr(dbmod, "MIGRATIONS", [*dbmod.MIGRATIONS, ("m002_broken", m002_broken)])
    with pytest.raises(sqlite3.OperationalError):
        Database(tmp_path / "k.db")
    conn = sqlite3.connect(tmp_path / "k.db")
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    assert conn.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(dbmod.MIGRATIONS) - 1


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    d = Database(tmp_path / "k.db")
    with pytest.raises(ZeroDivisionError), d.transaction() as conn:
        conn.execute("INSERT INTO principals VALUES ('x', 'now')")
        1 / 0  # noqa: B018
    assert d.rows("SELECT * FROM principals") == []
