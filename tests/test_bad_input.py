"""The bad-input table: every input a user can type gets one sentence, the right exit code,
and leaves the home exactly as it was.

Each case runs the real `kernel` command in a subprocess (real exit codes, real stdin,
real pipes), on a home holding a principal, a code artifact and a tests artifact.
"""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kernel.api import Kernel
from kernel.sandbox.base import SandboxOutcome
from kernel.sandbox.fake import FakeSandbox
from kernel.settings import Settings

KERNEL = [sys.executable, "-m", "kernel.cli"]
TABLES = ("principals", "accounts", "ledger", "artifacts", "runs", "escrows", "audit_events", "verdicts")


@dataclass
class Case:
    id: str
    args: list[str]
    message: str
    code: int = 1
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None


def package(root: Path, project: str, kernel_table: str, files: dict[str, str] | None = None) -> Path:
    """A package folder: its [project] and [tool.kernel] lines, and art.py unless ``files`` say otherwise."""
    root.mkdir()
    (root / "pyproject.toml").write_text(f"[project]\n{project}\n[tool.kernel]\n{kernel_table}\n")
    for name, text in (files or {"art.py": "def main(v):\n    return v\n"}).items():
        (root / name).write_text(text)
    return root


def snapshot(home: Path) -> dict[str, object]:
    """Everything a command could have stored: every row of the state tables, and every file."""
    conn = sqlite3.connect(f"file:{home / 'kernel.db'}?mode=ro", uri=True)
    try:
        rows = {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}
    finally:
        conn.close()
    files = sorted(
        str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and not p.name.startswith("kernel.db")
    )
    return {"rows": rows, "files": files}


def kernel(
    home: Path | None, args: list[str], env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    full_env["KERNEL_AUDIT_COMMON_CORPUS"] = "[]"
    if home is not None:
        full_env["KERNEL_HOME"] = str(home)
    full_env.update(env or {})
    r = subprocess.run([*KERNEL, *args], input=stdin, capture_output=True, env=full_env, timeout=60, check=False)
    return subprocess.CompletedProcess(
        r.args, r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")
    )


def assert_one_sentence(result: subprocess.CompletedProcess[str], message: str, code: int) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    if code == 1:
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """A home with alice (100 scrip), a code artifact and a tests artifact; returns their ids."""
    root = tmp_path_factory.mktemp("bad")
    home = root / "home"
    k = Kernel(Settings(home=home, audit_common_corpus=[]), sandbox=FakeSandbox(), image="fake:1")
    k.create_principal("alice", grant=100)
    k.create_principal("bob")
    code = package(root / "code", 'name = "art"\nversion = "1"', 'kind = "code"\nentrypoint = "art:main"')
    tests = package(
        root / "tests",
        'name = "t"\nversion = "1"',
        'kind = "tests"\ntarget = "art"',
        {"test_art.py": "import art\n\ndef test_it():\n    assert art.main(1) == 1\n"},
    )
    code_id = k.submit(code, "alice").artifact.id
    tests_id = k.submit(tests, "alice").artifact.id
    k.close()
    write_inputs(root)
    yield home, code_id, tests_id


PRICES = ("1e23", str(2 * 10**12))


def price_package(root: Path, price: str) -> Path:
    return root / f"priced-{PRICES.index(price)}"


def write_inputs(root: Path) -> None:
    """The files the cases name: packages with bad prices, a deep and a big input, a FIFO."""
    for price in PRICES:
        package(
            price_package(root, price),
            'name = "p"\nversion = "1"',
            f'kind = "code"\nentrypoint = "art:main"\nprice = {price}',
        )
    package(root / "fresh", 'name = "fresh"\nversion = "1"', 'kind = "code"\nentrypoint = "art:main"')
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "big.json").write_text('"' + "x" * (2 * 1024 * 1024) + '"')
    os.mkfifo(root / "fifo")


def cases(root: Path, code_id: str, tests_id: str) -> list[Case]:
    deep, big, fifo = root / "deep.json", root / "big.json", root / "fifo"
    open_escrow = ["escrow", "open", "--as", "alice", "--amount", "5", "--tests", tests_id]
    invoke = ["invoke", code_id, "--as", "alice"]
    return [
        # identifiers are matched whole: a trailing newline is not a name
        Case("name-newline", ["principal", "create", "eve\n"], "not a valid principal name"),
        Case("name-space", ["principal", "create", "eve x"], "not a valid principal name"),
        # scrip: amounts and the supply are bounded before anything is written
        Case("grant-int64", ["principal", "create", "carol", "--grant", str(2**63 - 1)], "above the largest amount"),
        Case("grant-1e25", ["principal", "create", "carol", "--grant", str(10**25)], "above the largest amount"),
        Case("grant-negative", ["principal", "create", "carol", "--grant", "-5"], "zero or a positive"),
        Case(
            "grant-past-supply",
            ["principal", "create", "carol", "--grant", "60"],
            "above its bound of 150",
            env={"KERNEL_MAX_SUPPLY": "150", "KERNEL_MAX_AMOUNT": "100"},
        ),
        Case("price-1e23", ["submit", str(price_package(root, "1e23")), "--as", "alice"], "tool.kernel.price"),
        Case(
            "price-above-max",
            ["submit", str(price_package(root, str(2 * 10**12))), "--as", "alice"],
            "above the largest amount",
        ),
        Case("transfer-1e25", ["transfer", "bob", str(10**25), "--as", "alice"], "above the largest amount"),
        Case("transfer-overdrawn", ["transfer", "bob", "500", "--as", "alice"], "alice has 100 scrip and needs 500"),
        Case("transfer-self", ["transfer", "alice", "5", "--as", "alice"], "cannot transfer to itself"),
        Case("transfer-unknown-payer", ["transfer", "bob", "5", "--as", "nobody"], "no principal named 'nobody'"),
        Case("transfer-memo", ["transfer", "alice", "1", "--as", "alice", "--memo", "a\nb"], "memo"),
        Case("escrow-amount-1e25", [*open_escrow[:5], str(10**25), *open_escrow[6:]], "above the largest amount"),
        # storage: paid before the write, bounded per principal
        Case(
            "storage-unpaid",
            ["submit", str(root / "fresh"), "--as", "bob"],
            "bob has 0 scrip and storing",
            env={"KERNEL_STORAGE_FREE_BYTES": "0"},
        ),
        Case(
            "storage-over-bound",
            ["submit", str(root / "fresh"), "--as", "bob"],
            "KERNEL_MAX_STORED_BYTES_PER_PRINCIPAL",
            env={"KERNEL_MAX_STORED_BYTES_PER_PRINCIPAL": "1024"},
        ),
        # durations: bounded at input
        Case("deadline-huge", [*open_escrow, "--deadline", "99999999999999d"], "longer than the longest allowed"),
        Case("window-3000000d", [*open_escrow, "--dispute-window", "3000000d"], "longer than the longest allowed"),
        Case("deadline-digits", [*open_escrow, "--deadline", "1" * 5000 + "d"], "longer than the longest allowed"),
        Case("deadline-unicode-digit", [*open_escrow, "--deadline", "\u0663d"], "is not a duration"),
        # listings
        Case("runs-limit-1e20", ["runs", "--limit", str(10**20)], "not in the range", code=2),
        Case("events-limit-1e20", ["audit", "events", "--limit", str(10**20)], "not in the range", code=2),
        # inputs: read at most the cap, never a device or FIFO, never too deep
        Case("input-deep", [*invoke, "--input-file", str(deep)], "nests deeper than"),
        Case("input-deep-arg", [*invoke, "--input", "[" * 3000 + "]" * 3000], "nests deeper than"),
        Case("input-dev-zero", [*invoke, "--input-file", "/dev/zero"], "not a regular file"),
        Case("input-fifo", [*invoke, "--input-file", str(fifo)], "not a regular file"),
        Case("input-too-big", [*invoke, "--input-file", str(big)], "larger than"),
        Case("input-stdin-too-big", [*invoke, "--input-file", "-"], "larger than", stdin=b"1" * (3 << 20)),
        Case("input-folder", [*invoke, "--input-file", str(root)], "is a directory", code=2),
        # files the user names
        Case("export-nowhere", ["audit", "export", "-o", "/nonexistent/x"], "cannot write /nonexistent/x"),
        # settings
        Case(
            "setting-bad-json",
            ["balance", "alice"],
            "KERNEL_DEFAULT_LIMITS is not valid JSON",
            env={"KERNEL_DEFAULT_LIMITS": "{bad"},
        ),  # fmt: skip
        Case("setting-not-int", ["balance", "alice"], "KERNEL_MAX_AMOUNT", env={"KERNEL_MAX_AMOUNT": "abc"}),
        Case("setting-out-of-range", ["balance", "alice"], "KERNEL_WORKSPACE_MB", env={"KERNEL_WORKSPACE_MB": "-1"}),
        Case(
            "settings-inconsistent",
            ["balance", "alice"],
            "do not fit together: max_amount (1000000000000) must not be above max_supply (150)",
            env={"KERNEL_MAX_SUPPLY": "150"},
        ),
        Case("setting-home-tilde", ["balance", "alice"], "cannot expand '~'", env={"KERNEL_HOME": "~nobody-x/k"}),
        Case("not-utf8", ["balance", "al\udcffice"], "not valid UTF-8"),
        Case("newline-in-message", ["transfer", "bob", "5", "--as", "alice\nx"], "no principal named 'alice\\nx'"),
        Case("escrow-state", ["escrow", "list", "--state", "bogus"], "is not one of", code=2),
        Case(
            "setting-huge-limit",
            ["balance", "alice"],
            "KERNEL_MAX_LIMITS",
            env={"KERNEL_MAX_LIMITS": '{"cpu_seconds": 1e30, "memory_mb": 1, "wall_seconds": 1}'},
        ),
    ]


CASE_IDS = [c.id for c in cases(Path("unused"), "0" * 64, "0" * 64)]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_input_is_one_sentence_and_stores_nothing(world: tuple[Path, str, str], case_id: str) -> None:
    home, code_id, tests_id = world
    case = next(c for c in cases(home.parent, code_id, tests_id) if c.id == case_id)
    before = snapshot(home)
    started = time.monotonic()
    result = kernel(home, case.args, case.env, case.stdin)
    assert time.monotonic() - started < 30  # a FIFO or /dev/zero must not hang the command
    assert_one_sentence(result, case.message, case.code)
    assert snapshot(home) == before


def test_kernel_home_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert_one_sentence(kernel(tmp_path / "f", ["balance", "alice"]), "is a file, not a folder", 1)
    assert (tmp_path / "f").read_text() == "x"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty: it is not a kernel database"),
        (os.urandom(4096), "is not a readable kernel database"),
        (None, "is missing the table verdicts"),
    ],
    ids=["zero-length", "garbage", "missing-table"],
)
def test_a_damaged_database_is_refused_never_replaced(
    world: tuple[Path, str, str], tmp_path: Path, content: bytes | None, message: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "kernel.db"
    if content is None:
        src = sqlite3.connect(world[0] / "kernel.db")
        dst = sqlite3.connect(db)
        src.backup(dst)
        src.close()
        dst.execute("DROP TABLE verdicts")
        dst.commit()
        dst.close()
    else:
        db.write_bytes(content)
    before = db.read_bytes()
    for args in (["ledger", "check"], ["principal", "create", "zed"], ["sweep"]):
        assert_one_sentence(kernel(home, args), message, 1)
    assert db.read_bytes() == before
    assert sorted(p.name for p in home.iterdir()) == ["kernel.db"]


@contextlib.contextmanager
def read_only_copy(home: Path, where: Path) -> Iterator[Path]:
    """The home, read-only: a read-only bind mount as root (root ignores modes), else mode 0500."""
    if os.geteuid() == 0:
        where.mkdir()
        subprocess.run(["mount", "--bind", str(home), str(where)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], check=True)
            yield where
        finally:
            subprocess.run(["umount", str(where)], check=True)
    else:
        home.chmod(0o500)
        try:
            yield home
        finally:
            home.chmod(0o700)


def test_a_read_only_home_reads_and_refuses_writes_with_a_sentence(
    world: tuple[Path, str, str], tmp_path: Path
) -> None:
    home, code_id, _ = world
    before = snapshot(home)
    with read_only_copy(home, tmp_path / "ro") as ro:
        assert kernel(ro, ["balance", "alice"]).stdout.strip() == "alice: 100 scrip"
        for args in (["principal", "list"], ["runs"], ["artifacts"], ["audit", "events"], ["escrow", "list"],
                     ["ledger", "check"], ["artifact", code_id[:12]]):  # fmt: skip
            result = kernel(ro, args)
            assert result.returncode == 0, (args, result.stderr)
        for args in (["principal", "create", "zed"], ["invoke", code_id, "--as", "alice"], ["sweep"],
                     ["transfer", "bob", "1", "--as", "alice"]):  # fmt: skip
            assert_one_sentence(kernel(ro, args), "is read-only, and this command writes", 1)
    assert snapshot(home) == before


def test_export_into_a_closed_pipe_says_so(world: tuple[Path, str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    k = Kernel(Settings(home=home, audit_common_corpus=[]), sandbox=FakeSandbox(), image="fake:1")
    for _ in range(4000):
        k.audit.record("r" * 16, "alice", "kernel", "copy_in", detail="x" * 200)
    k.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")} | {"KERNEL_HOME": str(home)}
    proc = subprocess.Popen([*KERNEL, "audit", "export"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(10)) == 10
    proc.stdout.close()  # `| head -c 10`
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 1
    assert stderr.startswith("Error: standard output was closed") and stderr.count("\n") == 1, stderr
    assert proc.returncode != -signal.SIGPIPE


def test_a_folder_that_is_not_a_home_is_never_taken_over(tmp_path: Path) -> None:
    other = tmp_path / "someone-elses"
    other.mkdir(mode=0o755)
    (other / "notes.txt").write_text("mine")
    other.chmod(0o755)
    for args in (["balance", "alice"], ["principal", "create", "zed"]):
        assert_one_sentence(kernel(other, args), "is not a kernel home", 1)
    assert (other.stat().st_mode & 0o777) == 0o755 and sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert kernel(empty, ["principal", "create", "zed"]).returncode == 0  # an empty folder becomes a home
    assert (empty.stat().st_mode & 0o777) == 0o700


def test_a_dangling_database_link_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "kernel.db").symlink_to(tmp_path / "gone.db")
    assert_one_sentence(kernel(home, ["principal", "create", "zed"]), "which does not exist", 1)
    assert not (tmp_path / "gone.db").exists()


def test_a_read_only_home_with_unmerged_changes_is_refused_not_shown_stale(
    world: tuple[Path, str, str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    src = sqlite3.connect(world[0] / "kernel.db")
    dst = sqlite3.connect(home / "kernel.db")
    src.backup(dst)
    src.close()
    dst.execute("PRAGMA journal_mode=WAL")
    dst.close()
    # A kernel killed after a commit leaves its changes in the WAL, not yet in kernel.db.
    crash = (
        "import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_autocheckpoint=0');"
        " c.execute(\"INSERT INTO principals VALUES ('ben', 'now')\"); c.commit(); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", crash, str(home / "kernel.db")], check=True)
    (home / "kernel.db-shm").unlink()
    assert (home / "kernel.db-wal").stat().st_size > 0
    with read_only_copy(home, tmp_path / "ro") as ro:
        assert_one_sentence(kernel(ro, ["principal", "list"]), "latest changes are still in kernel.db-wal", 1)


def test_names_and_outputs_are_printed_as_text_never_as_markup(tmp_path: Path) -> None:
    home = tmp_path / "home"
    k = Kernel(Settings(home=home, audit_common_corpus=[]), sandbox=FakeSandbox(), image="fake:1")
    k.create_principal("alice")
    pkg = package(tmp_path / "pkg", 'name = "[/bold]"\nversion = "[red]1"', 'kind = "code"\nentrypoint = "art:main"')
    art = k.submit(pkg, "alice").artifact.id
    k._sandbox = FakeSandbox(lambda spec: (SandboxOutcome(exit_code=0), {"ok": True, "value": "[/] [bold]"}))
    run = k.invoke(art, "alice", None).id
    k.close()
    listed = kernel(home, ["artifacts"])
    assert listed.returncode == 0 and "[/bold]" in listed.stdout and "[red]1" in listed.stdout, listed.stderr
    shown = kernel(home, ["show", run])
    assert shown.returncode == 0 and '"[/] [bold]"' in shown.stdout, shown.stderr


def test_python_dash_m_has_every_command(tmp_path: Path) -> None:
    for args in (["audit", "alerts", "--help"], ["audit", "scan", "--help"], ["escrow", "list", "--help"]):
        result = kernel(None, args)
        assert result.returncode == 0 and "Example:" in result.stdout, (args, result.stderr)


def test_an_empty_home_setting_is_refused_not_the_current_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")} | {"KERNEL_HOME": ""}
    r = subprocess.run([*KERNEL, "principal", "create", "zed"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "KERNEL_HOME: Value error, must not be empty" in r.stderr, r.stderr
    r = subprocess.run([*KERNEL, "--home", "", "balance", "zed"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2 and "must not be empty" in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing made in the current folder


def test_a_fresh_filesystem_is_an_empty_folder(tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    (volume / "lost+found").mkdir(parents=True)
    (volume / ".gitkeep").write_text("")
    assert kernel(volume, ["principal", "create", "zed"]).returncode == 0
