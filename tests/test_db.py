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
        "m006_service",
        "m007_world",
        "m008_telemetry",
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


def test_kernels_starting_together_on_a_new_home_share_one_database(tmp_path: Path) -> None:
    """Eight processes create the same new home at once: one database, every process sees it whole."""
    import subprocess
    import sys

    code = (
        "import sys; from kernel.db import Database; from pathlib import Path;"
        " d = Database(Path(sys.argv[1])); print(len(d.rows('SELECT * FROM _migrations')))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "home" / "kernel.db")], stdout=subprocess.PIPE)
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=60)[0].decode().strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * 8
    assert outputs == [str(len(dbmod.MIGRATIONS))] * 8
    assert sorted(p.name for p in (tmp_path / "home").iterdir() if not p.name.startswith("kernel.db-")) == ["kernel.db"]


def test_an_older_database_is_upgraded_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbmod, "MIGRATIONS", dbmod.MIGRATIONS[:4])
    old = Database(tmp_path / "k.db")
    with old.transaction() as conn:
        conn.execute("INSERT INTO principals VALUES ('alice', 'now')")
        conn.execute(
            "INSERT INTO artifacts (id, name, version, kind, owner, price, depends, files, size, created_at)"
            " VALUES ('a1', 'x', '1', 'data', 'alice', 0, '[]', 2, 1000, 'now')"
        )
    old.close()
    monkeypatch.undo()
    new = Database(tmp_path / "k.db")
    assert new.one("SELECT stored_bytes FROM artifacts")["stored_bytes"] == 10240  # type: ignore[index]
    assert len(new.rows("SELECT * FROM _migrations")) == len(dbmod.MIGRATIONS)


def test_a_database_from_a_newer_kernel_is_refused(tmp_path: Path) -> None:
    from kernel.errors import HomeError

    d = Database(tmp_path / "k.db")
    with d.transaction() as conn:
        conn.execute("INSERT INTO _migrations VALUES ('m999_future', 'now')")
    d.close()
    with pytest.raises(HomeError, match="written by a newer kernel"):
        Database(tmp_path / "k.db")


def test_the_upgrade_never_undercounts_what_an_old_artifact_takes_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """m005 estimates stored bytes from total size and file count: never below the real blob."""
    import random

    from kernel.package import normal_tar

    rng = random.Random(5)
    monkeypatch.setattr(dbmod, "MIGRATIONS", dbmod.MIGRATIONS[:4])
    old = Database(tmp_path / "k.db")
    real: dict[str, int] = {}
    with old.transaction() as conn:
        conn.execute("INSERT INTO principals VALUES ('alice', 'now')")
        for n in range(200):
            files = {f"f{i}/{'x' * rng.randint(1, 400)}.py": rng.randbytes(rng.choice([0, 1, 511, 513, 20_000]))
                     for i in range(rng.randint(1, 40))}  # fmt: skip
            real[f"a{n}"] = len(normal_tar(files))
            conn.execute(
                "INSERT INTO artifacts (id, name, version, kind, owner, price, depends, files, size, created_at)"
                " VALUES (?, 'x', '1', 'data', 'alice', 0, '[]', ?, ?, 'now')",
                (f"a{n}", len(files), sum(len(d) for d in files.values())),
            )
    old.close()
    monkeypatch.undo()
    upgraded = {r["id"]: r["stored_bytes"] for r in Database(tmp_path / "k.db").rows("SELECT * FROM artifacts")}
    assert [a for a, size in real.items() if upgraded[a] < size] == []
