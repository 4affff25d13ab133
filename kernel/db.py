"""SQLite state: one file under the home directory, WAL mode, numbered migrations.

Writes happen inside ``transaction()`` (``BEGIN IMMEDIATE``), so a state change and the
ledger rows it causes commit together or not at all, and concurrent kernel processes
queue behind SQLite's write lock instead of interleaving.
"""

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from kernel import process
from kernel.errors import Ambiguous, HomeError, InvalidInput, NotFound, ReadOnlyHome

MIN_PREFIX = 6  # shortest id prefix accepted for artifacts and runs


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run DDL statements one by one inside the caller's transaction.

    (``executescript`` would COMMIT the open transaction first, so a failed migration
    could leave half a schema behind.)"""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


def m001_initial(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE principals (
            name TEXT PRIMARY KEY,
            created_at TEXT NOT NULL
        );
        -- kind: 'principal' (one per principal), 'hold' (scrip held for a run or escrow),
        -- 'mint' (the source of all scrip; its balance is minus the supply).
        CREATE TABLE accounts (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('principal', 'hold', 'mint')),
            principal TEXT REFERENCES principals(name),
            balance INTEGER NOT NULL DEFAULT 0,
            CHECK (kind = 'mint' OR balance >= 0)
        );
        -- Double entry: every row debits one account and credits another by the same amount.
        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            debit TEXT NOT NULL REFERENCES accounts(id),
            credit TEXT NOT NULL REFERENCES accounts(id),
            amount INTEGER NOT NULL CHECK (amount > 0),
            kind TEXT NOT NULL,
            memo TEXT NOT NULL DEFAULT '',
            run_id TEXT,
            CHECK (debit != credit)
        );
        CREATE INDEX ledger_run ON ledger(run_id);
        CREATE TABLE artifacts (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            kind TEXT NOT NULL,
            owner TEXT NOT NULL REFERENCES principals(name),
            price INTEGER NOT NULL CHECK (price >= 0),
            entrypoint TEXT,
            target TEXT,
            depends TEXT NOT NULL,
            limits TEXT,
            files INTEGER NOT NULL,
            size INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX artifacts_owner ON artifacts(owner);
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            artifact_id TEXT NOT NULL REFERENCES artifacts(id),
            principal TEXT NOT NULL REFERENCES principals(name),
            state TEXT NOT NULL CHECK (state IN ('running', 'done')),
            status TEXT,
            reason TEXT,
            exit_code INTEGER,
            output TEXT,
            stdout TEXT NOT NULL DEFAULT '',
            stderr TEXT NOT NULL DEFAULT '',
            stdout_truncated INTEGER NOT NULL DEFAULT 0,
            stderr_truncated INTEGER NOT NULL DEFAULT 0,
            usage TEXT NOT NULL DEFAULT '{}',
            cost INTEGER NOT NULL DEFAULT 0,
            runtime TEXT,
            image TEXT,
            limits TEXT,
            owner_process TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX runs_started ON runs(started_at);
        CREATE INDEX runs_state ON runs(state);
        CREATE INDEX runs_principal ON runs(principal);
        """,
    )


def m002_proxy_audit(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        ALTER TABLE artifacts ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
        -- The invocation tree: top-level runs have depth 1 and are their own root.
        ALTER TABLE runs ADD COLUMN parent_run_id TEXT REFERENCES runs(id);
        ALTER TABLE runs ADD COLUMN root_run_id TEXT;
        ALTER TABLE runs ADD COLUMN depth INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE runs ADD COLUMN audit_incomplete INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX runs_parent ON runs(parent_run_id);
        CREATE INDEX runs_root ON runs(root_run_id);
        -- Every read and write: proxy calls, kernel copies, files in run workspaces.
        CREATE TABLE audit_events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            run_id TEXT NOT NULL,
            principal TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('proxy', 'kernel', 'file')),
            op TEXT NOT NULL,
            artifact_id TEXT,
            path TEXT,
            bytes INTEGER,
            digest TEXT,
            ok INTEGER NOT NULL DEFAULT 1,
            detail TEXT
        );
        CREATE INDEX audit_run ON audit_events(run_id, id);
        CREATE INDEX audit_principal ON audit_events(principal, id);
        CREATE INDEX audit_artifact ON audit_events(artifact_id);
        CREATE INDEX audit_digest ON audit_events(digest);
        """,
    )


def m003_escrow(conn: sqlite3.Connection) -> None:
    """The judiciary's tables (it reaches the ledger and runs only through kernel functions)."""
    run_script(
        conn,
        """
        CREATE TABLE escrows (
            id TEXT PRIMARY KEY,
            buyer TEXT NOT NULL REFERENCES principals(name),
            amount INTEGER NOT NULL CHECK (amount > 0),
            tests_id TEXT NOT NULL REFERENCES artifacts(id),
            expected TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('open', 'delivered', 'judged', 'disputed', 'released', 'refunded')),
            worker TEXT REFERENCES principals(name),
            deliverable_id TEXT REFERENCES artifacts(id),
            deadline TEXT,
            dispute_window INTEGER NOT NULL DEFAULT 0,
            settles_at TEXT,
            disputed_by TEXT,
            dispute_reason TEXT,
            judging TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX escrows_state ON escrows(state);
        CREATE TABLE escrow_events (
            id INTEGER PRIMARY KEY,
            escrow_id TEXT NOT NULL REFERENCES escrows(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT,
            detail TEXT
        );
        CREATE INDEX escrow_events_escrow ON escrow_events(escrow_id, id);
        CREATE TABLE verdicts (
            id TEXT PRIMARY KEY,
            escrow_id TEXT NOT NULL REFERENCES escrows(id),
            kind TEXT NOT NULL CHECK (kind IN ('judgement', 'appeal')),
            passed INTEGER NOT NULL,
            record TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX verdicts_escrow ON verdicts(escrow_id);
        """,
    )


def m004_provenance(conn: sqlite3.Connection) -> None:
    """Black-market detection: content fingerprints, who first wrote them, where they went."""
    run_script(
        conn,
        """
        -- One row per distinct content the auditor has fingerprinted (keyed by its sha256).
        CREATE TABLE prov_blobs (
            digest TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            level INTEGER NOT NULL,
            fingerprints INTEGER NOT NULL,
            span REAL NOT NULL,
            entropy REAL NOT NULL,
            encodings TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE prov_chunks (
            digest TEXT NOT NULL,
            fp INTEGER NOT NULL,
            PRIMARY KEY (digest, fp)
        ) WITHOUT ROWID;
        CREATE INDEX prov_chunks_fp ON prov_chunks(fp);
        -- Where content was seen: written (author), produced by code (origin only), or obtained (reach).
        CREATE TABLE prov_sightings (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            principal TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('author', 'origin', 'reach')),
            channel TEXT NOT NULL,
            digest TEXT NOT NULL,
            artifact_id TEXT,
            source_owner TEXT,
            run_id TEXT,
            event_id INTEGER,
            ledger_id INTEGER,
            path TEXT,
            purchased INTEGER NOT NULL DEFAULT 0,  -- obtained by paying its owner (escrow, priced run)
            key TEXT NOT NULL UNIQUE
        );
        CREATE INDEX prov_sightings_artifact ON prov_sightings(artifact_id);
        CREATE INDEX prov_sightings_digest ON prov_sightings(digest);
        -- The principal who first wrote each fingerprint, and the bytes one fingerprint stands for.
        CREATE TABLE prov_origin (
            fp INTEGER PRIMARY KEY,
            principal TEXT NOT NULL,
            span REAL NOT NULL,
            sighting_id INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE prov_authors (
            fp INTEGER NOT NULL,
            principal TEXT NOT NULL,
            independent INTEGER NOT NULL,
            PRIMARY KEY (fp, principal)
        ) WITHOUT ROWID;
        -- Boilerplate: in the common corpus (standard library) or written independently by many.
        CREATE TABLE prov_common (
            fp INTEGER PRIMARY KEY,
            source TEXT NOT NULL
        ) WITHOUT ROWID;
        -- Content of from_p that reached to_p: one row per fingerprint, first sighting kept.
        CREATE TABLE prov_flow_chunks (
            from_p TEXT NOT NULL,
            to_p TEXT NOT NULL,
            fp INTEGER NOT NULL,
            sighting_id INTEGER NOT NULL,
            PRIMARY KEY (from_p, to_p, fp)
        ) WITHOUT ROWID;
        CREATE INDEX prov_flow_chunks_sighting ON prov_flow_chunks(sighting_id);
        CREATE INDEX prov_flow_chunks_fp ON prov_flow_chunks(fp);
        CREATE TABLE prov_artifacts (
            artifact_id TEXT NOT NULL,
            digest TEXT NOT NULL,
            path TEXT NOT NULL,
            PRIMARY KEY (artifact_id, path)
        ) WITHOUT ROWID;
        -- Scrip that passed from one principal to another, and what it paid for.
        CREATE TABLE prov_payments (
            ledger_id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            payer TEXT NOT NULL,
            payee TEXT NOT NULL,
            amount INTEGER NOT NULL,
            kind TEXT NOT NULL,
            artifact_id TEXT,
            label TEXT,
            hold TEXT  -- the settled hold ('run:ID', 'escrow:ID'), when the payment settled one
        );
        CREATE INDEX prov_payments_pair ON prov_payments(payer, payee, at);
        CREATE INDEX prov_payments_artifact ON prov_payments(artifact_id);
        CREATE TABLE audit_scans (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            artifacts_to INTEGER NOT NULL,
            events_to INTEGER NOT NULL,
            ledger_to INTEGER NOT NULL,
            sightings INTEGER NOT NULL DEFAULT 0,
            payments INTEGER NOT NULL DEFAULT 0,
            new_alerts INTEGER NOT NULL DEFAULT 0,
            updated_alerts INTEGER NOT NULL DEFAULT 0,
            notes TEXT NOT NULL DEFAULT '[]'
        );
        -- Findings: alerts, and paid flows recorded so legitimate trade is visible (alert = 0).
        CREATE TABLE audit_alerts (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            alert INTEGER NOT NULL,
            from_principal TEXT NOT NULL,
            to_principal TEXT NOT NULL,
            via TEXT NOT NULL DEFAULT '',
            subject TEXT NOT NULL DEFAULT '',
            bytes INTEGER NOT NULL,
            score REAL NOT NULL,
            paid INTEGER NOT NULL,
            value INTEGER NOT NULL,
            summary TEXT NOT NULL,
            story TEXT NOT NULL,
            evidence TEXT NOT NULL,
            thresholds TEXT NOT NULL,
            audit_incomplete TEXT NOT NULL DEFAULT '[]',
            first_scan INTEGER NOT NULL,
            last_scan INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (kind, from_principal, to_principal, via, subject)
        );
        CREATE INDEX audit_alerts_pair ON audit_alerts(from_principal, to_principal);
        CREATE TABLE audit_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    )


def m005_bounds(conn: sqlite3.Connection) -> None:
    """Storage is paid by the byte; a judgement not given in time has an end."""
    run_script(
        conn,
        """
        -- Bytes the artifact's blob takes on disk (its normal tar), what storage is charged on.
        ALTER TABLE artifacts ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
        -- (a normal tar: per file a header, a long-name header and its data, content padded to 512;
        -- 1024 at the end, a 10240-byte record; an upper bound for names under 480 bytes)
        UPDATE artifacts SET stored_bytes = ((size + 2048 * files + 1024 + 10239) / 10240) * 10240;
        -- A delivered or disputed escrow with no verdict by then ends without one.
        ALTER TABLE escrows ADD COLUMN judge_by TEXT;
        UPDATE escrows SET judge_by = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '+7 days')
            WHERE state IN ('delivered', 'disputed');
        -- An open escrow with no deadline would wait for a delivery for ever.
        UPDATE escrows SET deadline = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '+366 days')
            WHERE state = 'open' AND deadline IS NULL;
        """,
    )


def m006_service(conn: sqlite3.Connection) -> None:
    """A settled run may still be committing its audit (``auditing``); API tokens of the daemon."""
    # Loosening a CHECK constraint leaves every stored row valid: SQLite documents editing the
    # table's schema text in place for it (lang_altertable.html, "other kinds of changes").
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'runs'",
        ("CHECK (state IN ('running', 'done'))", "CHECK (state IN ('running', 'auditing', 'done'))"),
    )
    conn.execute(f"PRAGMA schema_version={int(version) + 1}")
    conn.execute("PRAGMA writable_schema=OFF")
    run_script(
        conn,
        """
        -- Who may use the HTTP API: a token acts as its principal only, or as an operator (admin).
        -- Only the SHA-256 of the secret is kept; the secret is shown once, when it is made.
        CREATE TABLE api_tokens (
            id TEXT PRIMARY KEY,
            principal TEXT REFERENCES principals(name),
            admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
            secret_sha256 TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            CHECK ((admin = 1) = (principal IS NULL))
        );
        CREATE INDEX api_tokens_principal ON api_tokens (principal);
        """,
    )


def m007_world(conn: sqlite3.Connection) -> None:
    """The economy: what triggered each run, reasoning on audit events, agents and their configs,
    the world's clock, pools, messages, the Mint's tasks and weights."""
    run_script(
        conn,
        """
        -- tick: an agent's own loop, command: its config's owner, call: another run, user: a person.
        ALTER TABLE runs ADD COLUMN trigger TEXT NOT NULL DEFAULT 'user'
            CHECK (trigger IN ('tick', 'command', 'call', 'user'));
        -- the world's tick when the run started (NULL outside a world)
        ALTER TABLE runs ADD COLUMN tick INTEGER;
        CREATE INDEX runs_trigger ON runs (trigger);
        CREATE INDEX runs_artifact ON runs (artifact_id, status);
        ALTER TABLE audit_events ADD COLUMN reasoning TEXT;

        -- One world per home: its seed, its clock and the state of its seeded ids.
        CREATE TABLE world (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seed INTEGER NOT NULL,
            tick INTEGER NOT NULL DEFAULT 0,          -- ticks completed
            ids_issued INTEGER NOT NULL DEFAULT 0,    -- seeded ids handed out by completed ticks
            resumes INTEGER NOT NULL DEFAULT 0,       -- times a run resumed an interrupted tick
            in_tick INTEGER,                          -- the tick under way (NULL between ticks)
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        -- Per-config state the Governor may change: what spawning an agent of it costs.
        CREATE TABLE config_costs (
            artifact_id TEXT PRIMARY KEY REFERENCES artifacts(id),
            spawn_cost INTEGER NOT NULL CHECK (spawn_cost >= 0),
            updated_at TEXT NOT NULL
        );

        -- An agent is a principal animated by a config: a code artifact plus parameters,
        -- owned by config_owner (its manager, or itself once it bought its config).
        CREATE TABLE agents (
            name TEXT PRIMARY KEY REFERENCES principals(name),
            artifact_id TEXT NOT NULL REFERENCES artifacts(id),
            params TEXT NOT NULL DEFAULT '{}',
            config_owner TEXT NOT NULL REFERENCES principals(name),
            state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
            sale_price INTEGER CHECK (sale_price IS NULL OR sale_price >= 0),  -- set by the owner, NULL: not for sale
            memory TEXT NOT NULL DEFAULT 'null',
            inbox_seen INTEGER NOT NULL DEFAULT 0,   -- the last message id its policy has seen
            spawned_by TEXT NOT NULL,
            spawn_cost INTEGER NOT NULL,
            spawned_tick INTEGER NOT NULL,
            seq INTEGER NOT NULL UNIQUE,              -- spawn order: the agent's seed stream
            created_at TEXT NOT NULL
        );
        CREATE INDEX agents_owner ON agents (config_owner);
        CREATE TABLE agent_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agent TEXT NOT NULL,
            tick INTEGER NOT NULL,
            kind TEXT NOT NULL,
            actor TEXT,
            detail TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX agent_events_agent ON agent_events (agent, id);

        -- Every policy run: its tick, trigger, the decision it returned and its reasoning.
        CREATE TABLE steps (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tick INTEGER NOT NULL,
            agent TEXT NOT NULL,
            trigger TEXT NOT NULL CHECK (trigger IN ('tick', 'command')),
            run_id TEXT,
            status TEXT NOT NULL,
            decision TEXT,
            reasoning TEXT,
            at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX steps_tick_agent ON steps (tick, agent) WHERE trigger = 'tick';
        CREATE INDEX steps_agent ON steps (agent, id);

        -- Pools: shared append-only memory of a swarm, read and written by members through the kernel.
        CREATE TABLE pools (
            name TEXT PRIMARY KEY,
            creator TEXT NOT NULL REFERENCES principals(name),
            created_at TEXT NOT NULL
        );
        CREATE TABLE pool_members (
            pool TEXT NOT NULL REFERENCES pools(name),
            principal TEXT NOT NULL REFERENCES principals(name),
            PRIMARY KEY (pool, principal)
        );
        CREATE TABLE pool_entries (
            pool TEXT NOT NULL REFERENCES pools(name),
            seq INTEGER NOT NULL,
            author TEXT NOT NULL,
            run_id TEXT,
            tick INTEGER,
            data TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            digest TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (pool, seq)
        );
        CREATE TABLE pool_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pool TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('created', 'joined', 'left')),
            actor TEXT NOT NULL,
            subject TEXT NOT NULL,
            at TEXT NOT NULL
        );

        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sender TEXT NOT NULL,
            recipient TEXT NOT NULL REFERENCES principals(name),
            body TEXT NOT NULL,
            run_id TEXT,
            tick INTEGER,
            at TEXT NOT NULL
        );
        CREATE INDEX messages_recipient ON messages (recipient, id);

        -- Externally valued work: each task's suite is a tests artifact the Mint holds.
        CREATE TABLE tasks (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            reward INTEGER NOT NULL CHECK (reward > 0),
            tests_id TEXT NOT NULL REFERENCES artifacts(id),
            spec TEXT NOT NULL,
            escrow_id TEXT,               -- the escrow posted for it now, if any
            posted INTEGER NOT NULL DEFAULT 0,
            settled_tick INTEGER,
            loaded_at TEXT NOT NULL
        );
        CREATE TABLE mint_weights (
            kind TEXT PRIMARY KEY,
            weight REAL NOT NULL CHECK (weight >= 0),
            updated_at TEXT NOT NULL
        );
        -- Scrip minted for tasks, per tick (bounded by KERNEL_MINT_PER_TICK).
        CREATE TABLE mint_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tick INTEGER NOT NULL,
            task TEXT NOT NULL,
            amount INTEGER NOT NULL,
            escrow_id TEXT,
            at TEXT NOT NULL
        );
        """,
    )


def m008_telemetry(conn: sqlite3.Connection) -> None:
    """Telemetry of the economy, kept tick by tick from what each tick added (kernel/telemetry),
    and the Genesis artifacts: infrastructure the Governor promoted."""
    run_script(
        conn,
        """
        CREATE INDEX runs_tick ON runs (tick);
        -- full: what the token's principal (or an operator) may do; telemetry: read the dashboard's data only
        ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'telemetry'));
        CREATE TABLE genesis (
            artifact_id TEXT PRIMARY KEY REFERENCES artifacts(id),
            tick INTEGER,
            reason TEXT NOT NULL,
            at TEXT NOT NULL
        );
        -- One row per world tick: its metrics, and where the next snapshot's reading starts.
        CREATE TABLE telemetry_ticks (
            tick INTEGER PRIMARY KEY,
            ledger_to INTEGER NOT NULL,       -- the last ledger row counted
            artifacts_to INTEGER NOT NULL,    -- the last artifacts rowid counted
            runs_to INTEGER NOT NULL,         -- the last runs rowid seen (runs outside a world's ticks)
            metrics TEXT NOT NULL,            -- JSON: name -> number or null
            took_ms REAL NOT NULL,
            at TEXT NOT NULL
        );
        -- Per artifact, what the snapshots learnt so far.
        CREATE TABLE telemetry_artifacts (
            artifact_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL,
            born_tick INTEGER NOT NULL,
            depth INTEGER NOT NULL,
            depth_ng INTEGER NOT NULL,        -- depth with the Genesis artifacts removed
            compound INTEGER NOT NULL,        -- builds on an older artifact of another owner
            uses INTEGER NOT NULL DEFAULT 0,  -- runs of it invoked by a run or a person
            invokers INTEGER NOT NULL DEFAULT 0,
            last_use INTEGER,
            productive_tick INTEGER,          -- first invoked, or depended on, by another principal
            earned INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE telemetry_invocations (
            artifact_id TEXT NOT NULL,
            tick INTEGER NOT NULL,
            principal TEXT NOT NULL,
            runs INTEGER NOT NULL,
            PRIMARY KEY (artifact_id, tick, principal)
        ) WITHOUT ROWID;
        CREATE INDEX telemetry_invocations_tick ON telemetry_invocations (tick);
        CREATE TABLE telemetry_invokers (
            artifact_id TEXT NOT NULL,
            principal TEXT NOT NULL,
            PRIMARY KEY (artifact_id, principal)
        ) WITHOUT ROWID;
        -- Per principal: its steps started by its own loop (tick) and by its config's owner (command).
        CREATE TABLE telemetry_control (
            principal TEXT PRIMARY KEY,
            ticks INTEGER NOT NULL DEFAULT 0,
            commands INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE telemetry_actions (
            agent TEXT NOT NULL,
            tick INTEGER NOT NULL,
            category TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (tick, agent, category)
        ) WITHOUT ROWID;
        -- Ties between principals that money made (payments, escrows settled): firms are read from them.
        CREATE TABLE telemetry_ties (
            a TEXT NOT NULL,
            b TEXT NOT NULL,
            kind TEXT NOT NULL,
            weight REAL NOT NULL,
            PRIMARY KEY (a, b, kind)
        ) WITHOUT ROWID;
        -- Output per principal per tick (artifacts that became productive, escrows won).
        CREATE TABLE telemetry_output (
            principal TEXT NOT NULL,
            tick INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (tick, principal)
        ) WITHOUT ROWID;
        """,
    )


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("m001_initial", m001_initial),
    ("m002_proxy_audit", m002_proxy_audit),
    ("m003_escrow", m003_escrow),
    ("m004_provenance", m004_provenance),
    ("m005_bounds", m005_bounds),
    ("m006_service", m006_service),
    ("m007_world", m007_world),
    ("m008_telemetry", m008_telemetry),
]

# Every table the migrations make: a database missing one is damaged, not new.
TABLES = [
    "_migrations",
    "principals",
    "accounts",
    "ledger",
    "artifacts",
    "runs",
    "audit_events",
    "escrows",
    "escrow_events",
    "verdicts",
    "prov_blobs",
    "prov_chunks",
    "prov_sightings",
    "prov_origin",
    "prov_authors",
    "prov_common",
    "prov_flow_chunks",
    "prov_artifacts",
    "prov_payments",
    "audit_scans",
    "audit_alerts",
    "audit_meta",
]


NEW_DATABASE = ".kernel.db.new-"  # a database being built (with its -wal, -shm): swept when its kernel is gone


def create(path: Path) -> None:
    """Make a new, fully migrated database at ``path`` unless one appears there meanwhile.

    The schema is built in a file of this process's own, then hard-linked into place: the
    link fails if another kernel got there first, and nobody ever opens a file that is
    still being built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{NEW_DATABASE}{process.token()}-{os.urandom(4).hex()}")
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            for name, migration in MIGRATIONS:
                migration(conn)
                conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now()))
            conn.execute("COMMIT")
        finally:
            conn.close()  # the last connection: the WAL is checkpointed into the file
        with contextlib.suppress(FileExistsError):  # another kernel created it first: use theirs
            os.link(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


class Database:
    """The kernel's SQLite database. ``rows`` and ``table`` are sqlite-utils for reads.

    A missing file is created whole (built aside, then linked into place, so a kernel
    starting beside another never sees half a schema); an existing file that is empty,
    unreadable or missing tables is refused, never re-initialised. ``read_only`` opens
    without writing anything (a read-only home): reads work, writes raise ReadOnlyHome.
    """

    def __init__(self, path: Path, read_only: bool = False):
        self.path, self.read_only = path, read_only
        if path.is_symlink() and not path.exists():
            raise HomeError(
                f"{path} is a link to {os.readlink(path)}, which does not exist: restore the database there,"
                " or remove the link to start an empty home."
            )
        if not read_only and not path.exists():
            create(path)
        elif not path.exists():
            raise HomeError(f"{path} does not exist and the home is read-only: nothing to read.")
        try:
            self.conn = self._connect(path, read_only)
            tables = self.tables()
        except sqlite3.DatabaseError as exc:
            raise HomeError(
                f"{path} is not a readable kernel database ({exc}); it was left untouched:"
                " restore it from a backup, or move it away to start an empty home."
            ) from exc
        self._refuse_foreign(tables)  # before anything could write to the file
        if not read_only:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.utils = sqlite_utils.Database(self.conn)
        # Proxy threads share this connection with the invoking thread: one at a time.
        self.lock = threading.RLock()
        self._upgrade(tables)

    def tables(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    @staticmethod
    def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every write is inside an
        # explicit BEGIN IMMEDIATE from transaction().
        if not read_only:
            return sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
        # A WAL database needs its -shm file; on a read-only home that cannot be made, so
        # then read the file as immutable (nothing can write it there either).
        uri = path.absolute().as_uri()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=60, check_same_thread=False)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            wal = path.with_name(path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise HomeError(
                    f"the kernel's home {path.parent} is read-only and its latest changes are still in"
                    f" {wal.name}, which cannot be read without writing: run any command once with the home writable."
                ) from None
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
        return conn

    def _refuse_foreign(self, tables: set[str]) -> None:
        """Refuse a file that is not a kernel database (empty, or someone else's)."""
        if "_migrations" not in tables:
            what = "is empty" if not tables else f"holds no kernel schema (tables: {', '.join(sorted(tables)[:5])})"
            raise HomeError(
                f"{self.path} {what}: it is not a kernel database, and it was left untouched;"
                " restore it from a backup, or move it away to start an empty home."
            )

    def _upgrade(self, tables: set[str]) -> None:
        """Apply pending migrations; refuse a database newer than this kernel or missing tables."""
        done = {r[0] for r in self.conn.execute("SELECT name FROM _migrations")}
        if not done and tables - {"_migrations"}:
            raise HomeError(
                f"{self.path} has tables but no record of its migrations: the database is damaged and was left"
                " untouched; restore it from a backup."
            )
        unknown = done - {name for name, _ in MIGRATIONS}
        if unknown:
            raise HomeError(
                f"{self.path} was written by a newer kernel (migration {sorted(unknown)[0]}); upgrade this kernel."
            )
        if len(done) < len(MIGRATIONS):
            if self.read_only:
                raise HomeError(
                    f"{self.path} needs a schema upgrade, and the home is read-only; open it writable once."
                )
            self.migrate()
            tables = self.tables()
        missing = sorted(set(TABLES) - tables)
        if missing:
            raise HomeError(
                f"{self.path} is missing the table{'s' if len(missing) > 1 else ''} {', '.join(missing)}:"
                " the database is damaged and was left untouched; restore it from a backup."
            )

    def require_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyHome(
                f"the kernel's home {self.path.parent} is read-only, and this command writes;"
                " reading commands (balance, runs, show, audit events) still work."
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.require_writable()
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def migrate(self) -> list[str]:
        """Apply migrations not yet recorded in ``_migrations``; returns their names."""
        applied: list[str] = []
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
            for name, migration in MIGRATIONS:
                if name in done:
                    continue
                migration(conn)
                conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now()))
                applied.append(name)
        return applied

    def rows(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.utils.query(sql, params))

    def one(self, sql: str, params: tuple[object, ...] | dict[str, object] = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def by_prefix(self, table: str, ref: str, noun: str, listing: str) -> dict[str, Any]:
        """The one row of ``table`` whose id starts with ``ref`` (ids are lowercase hex)."""
        ref = ref.strip().lower()
        if len(ref) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in ref):
            raise InvalidInput(f"'{ref}' is not {noun} id: give at least {MIN_PREFIX} hex digits.")
        rows = self.rows(f"SELECT * FROM {table} WHERE id >= ? AND id < ? LIMIT 2", (ref, ref + "g"))
        if not rows:
            raise NotFound(f"no {noun.split()[-1]} with id '{ref}': `{listing}` lists them.")
        if len(rows) > 1:
            raise Ambiguous(f"'{ref}' matches several {noun.split()[-1]}s; give more digits.")
        return rows[0]

    def close(self) -> None:
        self.conn.close()
