"""Submitting artifacts: manifest validation, entrypoint checks, content addressing."""

import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from kernel import store
from kernel.api import Kernel
from kernel.errors import InvalidInput, ManifestError, NotFound, PackageError
from tests.conftest import PackageFactory

GOOD = "def main(v):\n    return v\n"
HEAD = '[project]\nname="a"\nversion="1"\n[tool.kernel]\nkind="code"\n'


def stored_nothing(k: Kernel) -> bool:
    blobs = list(k.settings.blob_dir.rglob("*.tar")) if k.settings.blob_dir.exists() else []
    return not k.artifacts() and not blobs


@pytest.mark.parametrize(
    "files, message",
    [
        ({"pyproject.toml": None}, "no pyproject.toml"),
        ({"pyproject.toml": "[project\nname="}, "not valid TOML"),
        ({"pyproject.toml": b'[project]\nname="\xff\xfe"\n'}, "not UTF-8"),
        ({"pyproject.toml": '[project]\nname="a"\nversion="1"\n'}, r"no \[tool.kernel\]"),
        (
            {"pyproject.toml": '[project]\nversion="1"\n[tool.kernel]\nkind="code"\nentrypoint="art:main"\n'},
            "project.name",
        ),
        ({"pyproject.toml": '[project]\nname="a"\nversion="1"\n[tool.kernel]\nkind="binary"\n'}, "tool.kernel.kind"),
        ({"pyproject.toml": '[project]\nname="a"\nversion="1"\n[tool.kernel]\nkind="code"\n'}, "needs an entrypoint"),
        (
            {"pyproject.toml": '[project]\nname="a"\nversion="1"\n[tool.kernel]\nkind="code"\nentrypoint="art"\n'},
            "module:function",
        ),
        (
            {"pyproject.toml": HEAD + 'entrypoint="art:main"\nprice=-1\n'},
            "tool.kernel.price",
        ),
        (
            {"pyproject.toml": HEAD + 'entrypoint="art:main"\nsudo=true\n'},
            "Extra inputs",
        ),
        ({"pyproject.toml": '[project]\nname="a"\nversion="1"\n[tool.kernel]\nkind="tests"\n'}, "needs a target"),
    ],
)
def test_bad_manifests_are_refused_and_nothing_stored(
    fake_kernel: Kernel, make_pkg: PackageFactory, files: dict, message: str
) -> None:
    pkg = make_pkg(GOOD)
    for name, data in files.items():
        if data is None:
            (pkg / name).unlink()
        elif isinstance(data, bytes):
            (pkg / name).write_bytes(data)
        else:
            (pkg / name).write_text(data)
    with pytest.raises(ManifestError, match=message):
        fake_kernel.submit(pkg, "alice")
    assert stored_nothing(fake_kernel)


@pytest.mark.parametrize(
    "code, kw, message",
    [
        (None, {}, "no module 'art'"),
        ("def other(v):\n    pass\n", {}, "defines no 'main'"),
        ("def main(v)\n    pass\n", {}, "syntax error at line 1"),
        (GOOD, {"limits": {"memory_mb": 10**6}}, "above the kernel's maximum"),
        (GOOD, {"extra": 'depends = ["abcdef123456"]'}, "no artifact with id"),
    ],
)
def test_bad_code_is_refused_and_nothing_stored(
    fake_kernel: Kernel, make_pkg: PackageFactory, code: str | None, kw: dict, message: str
) -> None:
    with pytest.raises((PackageError, NotFound)) as info:
        fake_kernel.submit(make_pkg(code, **kw), "alice")
    assert message in str(info.value)
    assert stored_nothing(fake_kernel)


def test_entrypoint_in_subpackage_and_src_layout(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    pkg = make_pkg(None, files={"src/tool/cli.py": "from json import dumps as run\n"}, entrypoint="tool.cli:run")
    assert fake_kernel.submit(pkg, "alice").created


def test_unknown_owner(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    with pytest.raises(NotFound, match="no principal named 'carol'"):
        fake_kernel.submit(make_pkg(GOOD), "carol")


def test_same_content_same_id_from_folder_tar_and_zip(
    fake_kernel: Kernel, make_pkg: PackageFactory, tmp_path: Path
) -> None:
    pkg = make_pkg(GOOD, files={"data/words.txt": "a b c\n"})
    first = fake_kernel.submit(pkg, "alice")
    assert first.created
    tgz = tmp_path / "p.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(pkg, arcname="art-1.0")
    zpath = tmp_path / "p.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(pkg.rglob("*"), reverse=True):
            if f.is_file():
                zf.write(f, f.relative_to(pkg).as_posix())
    for source in (pkg, tgz, zpath):
        again = fake_kernel.submit(source, "alice")
        assert again.artifact.id == first.artifact.id
        assert not again.created
    assert len(fake_kernel.artifacts()) == 1


def test_changed_content_changes_the_id(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    a = fake_kernel.submit(make_pkg(GOOD), "alice").artifact
    b = fake_kernel.submit(make_pkg(GOOD + "# changed\n"), "alice").artifact
    assert a.id != b.id


def test_same_content_from_another_principal_keeps_its_first_owner(
    fake_kernel: Kernel, make_pkg: PackageFactory
) -> None:
    a = fake_kernel.submit(make_pkg(GOOD), "alice")
    b = fake_kernel.submit(make_pkg(GOOD), "bob")
    assert b.artifact.id == a.artifact.id and b.artifact.owner == "alice" and not b.created


def test_id_prefixes(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    art = fake_kernel.submit(make_pkg(GOOD), "alice").artifact
    assert fake_kernel.artifact(art.id[:6]).id == art.id
    assert fake_kernel.artifact("sha256:" + art.id.upper()).id == art.id
    with pytest.raises(InvalidInput, match="at least 6 hex digits"):
        fake_kernel.artifact("abc")
    with pytest.raises(NotFound):
        fake_kernel.artifact("0" * 64)


def test_failed_commit_removes_the_new_blob(
    fake_kernel: Kernel, make_pkg: PackageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(store, "now", boom)
    with pytest.raises(RuntimeError):
        fake_kernel.submit(make_pkg(GOOD), "alice")
    assert stored_nothing(fake_kernel)


def test_unpacked_copy_is_read_only(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    art = fake_kernel.submit(make_pkg(GOOD), "alice").artifact
    tree = store.unpacked(fake_kernel.settings, art.id)
    assert (tree / "art.py").read_text() == GOOD
    assert (tree / "art.py").stat().st_mode & 0o222 == 0
    assert store.unpacked(fake_kernel.settings, art.id) == tree
    shutil.rmtree(tree)


# -- storage is metered, paid and bounded ---------------------------------------------------


def dead_token() -> str:
    from kernel import process

    ns = process.token().rsplit(":", 1)[1]
    return f"4194000:1:{ns}"  # above any pid this machine hands out


@pytest.fixture
def paid_storage(fake_kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> Kernel:
    monkeypatch.setattr(fake_kernel.settings, "storage_free_bytes", 0)
    monkeypatch.setattr(fake_kernel.settings, "storage_price_per_mib", 1)
    return fake_kernel


def test_storage_is_paid_by_the_byte_held_before_the_write(
    paid_storage: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = paid_storage
    real_write = store.write_blob
    seen: list[int] = []

    def watched(settings, artifact_id, data):  # type: ignore[no-untyped-def]
        seen.append(k.db.one("SELECT SUM(balance) AS b FROM accounts WHERE id LIKE 'hold:store:%'")["b"])
        return real_write(settings, artifact_id, data)

    monkeypatch.setattr(store, "write_blob", watched)
    supply = k.ledger_check().supply
    art = store.store_data(k.db, k.settings, "bob", "blob", {"a.bin": b"x" * (3 << 20)}, False).artifact
    due = -(-art.stored_bytes // (1 << 20))
    assert art.stored_bytes > 3 << 20 and due == 4
    assert seen == [due]  # held before a byte was written
    assert k.balance("bob") == 10 - due and k.ledger_check().supply == supply - due
    rows = k.db.rows("SELECT debit, credit, amount, kind FROM ledger WHERE kind IN ('hold', 'storage')")
    assert rows[-1]["credit"] == "mint" and rows[-1]["amount"] == due
    # the same content again is free: nothing new is stored
    again = store.store_data(k.db, k.settings, "bob", "blob", {"a.bin": b"x" * (3 << 20)}, False)
    assert not again.created and k.balance("bob") == 10 - due


def test_storage_a_principal_cannot_pay_for_is_not_written(paid_storage: Kernel) -> None:
    from kernel.errors import InsufficientFunds

    k = paid_storage
    with pytest.raises(InsufficientFunds, match="storing .* bytes costs 12"):
        store.store_data(k.db, k.settings, "bob", "big", {"a.bin": os.urandom(11 << 20)}, False)
    assert stored_nothing(k) and k.balance("bob") == 10 and k.ledger_check().ok


def test_free_bytes_then_the_price(fake_kernel: Kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_kernel.settings, "storage_free_bytes", 1 << 20)
    first = store.store_data(fake_kernel.db, fake_kernel.settings, "bob", "a", {"a": b"1" * 1000}, False)
    assert fake_kernel.balance("bob") == 10 and first.artifact.stored_bytes < 1 << 20
    store.store_data(fake_kernel.db, fake_kernel.settings, "bob", "b", {"b": b"2" * (1 << 20)}, False)
    assert fake_kernel.balance("bob") == 9  # the part above the free MiB started one paid MiB


def test_stored_bytes_are_bounded_per_principal_and_per_run(
    fake_kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = fake_kernel
    monkeypatch.setattr(k.settings, "max_stored_bytes_per_principal", 64 * 1024)
    store.store_data(k.db, k.settings, "bob", "a", {"a": b"a" * 40_000}, False)
    with pytest.raises(PackageError, match="KERNEL_MAX_STORED_BYTES_PER_PRINCIPAL"):
        store.store_data(k.db, k.settings, "bob", "b", {"b": b"b" * 40_000}, False)
    with pytest.raises(PackageError, match="KERNEL_MAX_STORED_BYTES_PER_RUN"):
        store.store_data(k.db, k.settings, "alice", "c", {"c": b"c" * 40_000}, False, run_room=10_000)
    assert [a.name for a in k.artifacts()] == ["a"] and k.ledger_check().ok


def test_a_storage_hold_of_a_dead_kernel_is_refunded_by_the_sweep(fake_kernel: Kernel) -> None:
    from kernel import ledger

    with fake_kernel.db.transaction() as conn:
        ledger.open_hold(conn, f"store:{dead_token()}:abcd", "bob", 7)
    assert fake_kernel.balance("bob") == 3 and not fake_kernel.ledger_check().ok
    assert fake_kernel.sweep()["storage_holds"] == [f"store:{dead_token()}:abcd"]
    assert fake_kernel.balance("bob") == 10 and fake_kernel.ledger_check().ok


def test_data_names_are_printable(fake_kernel: Kernel) -> None:
    for name in ("a\nb", "tab\there", "", "x" * 101):
        with pytest.raises(InvalidInput, match="name of 1-100 characters"):
            store.store_data(fake_kernel.db, fake_kernel.settings, "bob", name, {"a": b"1"}, False)


def test_sweep_removes_temp_files_of_dead_kernels_only(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    from kernel import process

    s = fake_kernel.settings
    (s.blob_dir / "ab").mkdir(parents=True)
    dead_blob = s.blob_dir / "ab" / f".incoming-{dead_token()}-x1"
    live_blob = s.blob_dir / "ab" / f".incoming-{process.token()}-x2"
    legacy_blob = s.blob_dir / "ab" / ".incoming-q3"  # written before temp names carried their owner
    for p in (dead_blob, live_blob, legacy_blob):
        p.write_bytes(b"partial")
    s.package_dir.mkdir(parents=True, exist_ok=True)
    dead_tree = s.package_dir / f".unpack-{dead_token()}-y1"
    (dead_tree / "sub").mkdir(parents=True)
    (dead_tree / "sub" / "f.py").write_text("x")
    for d in (dead_tree / "sub", dead_tree):
        d.chmod(0o555)  # unpacked trees are read-only
    removed = fake_kernel.sweep()["temp_files"]
    assert sorted(removed) == sorted(str(p.relative_to(s.home)) for p in (dead_blob, legacy_blob, dead_tree))
    assert live_blob.exists() and not dead_blob.exists() and not dead_tree.exists()


def test_price_above_the_largest_amount_is_refused(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    with pytest.raises(ManifestError, match="above the largest amount"):
        fake_kernel.submit(make_pkg(GOOD, price=2 * 10**12), "alice")
    with pytest.raises(ManifestError, match="tool.kernel.price"):
        fake_kernel.submit(make_pkg(GOOD, price=10**23), "alice")
    assert stored_nothing(fake_kernel)


@pytest.mark.parametrize("field", ["name", "version"])
def test_manifest_names_have_no_control_characters(fake_kernel: Kernel, make_pkg: PackageFactory, field: str) -> None:
    name, version = ("a\\n", "1") if field == "name" else ("a", "1\\n")  # TOML escapes: a real newline
    toml = f'[project]\nname="{name}"\nversion="{version}"\n'
    with pytest.raises(ManifestError, match="control characters"):
        fake_kernel.submit(make_pkg(files={"pyproject.toml": toml + '[tool.kernel]\nkind="data"\n'}), "alice")


def test_a_run_cannot_pass_its_storage_bound_with_parallel_connections(
    fake_kernel: Kernel, make_pkg: PackageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64
    import threading

    from kernel.calls import CallHandler, RunContext
    from kernel.proxy import Refusal
    from kernel.runs import Services

    monkeypatch.setattr(fake_kernel.settings, "max_stored_bytes_per_run", 1 << 20)
    art = fake_kernel.submit(make_pkg(GOOD), "alice").artifact
    ctx = RunContext(run_id="r" * 16, principal="alice", artifact=art, root_run_id="r" * 16, depth=1)
    handler = CallHandler(Services(fake_kernel.db, fake_kernel.settings, None, "fake:1", fake_kernel.audit), ctx)  # type: ignore[arg-type]
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def write(i: int) -> None:
        start.wait()
        try:
            handler.write(f"part{i}", {"a.bin": base64.b64encode(os.urandom(900 * 1024)).decode()}, False)
            outcomes.append("stored")
        except Refusal as exc:
            outcomes.append(exc.code)
        except PackageError:
            outcomes.append("refused")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "refused", "refused", "stored"]
    assert handler.stored <= 1 << 20 and len([a for a in fake_kernel.artifacts() if a.kind == "data"]) == 1


def test_a_blob_whose_writer_died_before_its_row_is_swept(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    kept = fake_kernel.submit(make_pkg(GOOD), "alice").artifact
    orphan = store.blob_path(fake_kernel.settings, "ab" * 32)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"written, then the kernel was killed before the commit")
    assert fake_kernel.sweep()["temp_files"] == [str(orphan.relative_to(fake_kernel.settings.home))]
    assert not orphan.exists() and store.blob_path(fake_kernel.settings, kept.id).exists()


def test_a_writer_whose_blob_was_swept_writes_it_again(
    fake_kernel: Kernel, make_pkg: PackageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = store.write_blob
    calls: list[bool] = []

    def write_then_swept(settings, artifact_id, data):  # type: ignore[no-untyped-def]
        new = real_write(settings, artifact_id, data)
        if not calls:  # the first write: another kernel sweeps before the row commits
            assert store.sweep_orphans(fake_kernel.db, settings) != []
        calls.append(new)
        return new

    monkeypatch.setattr(store, "write_blob", write_then_swept)
    art = fake_kernel.submit(make_pkg(GOOD), "alice").artifact
    assert calls == [True, True]  # written, swept, written again inside the committing transaction
    assert store.read_files(fake_kernel.settings, art.id)["art.py"] == GOOD.encode()


def test_a_storage_hold_from_another_pid_namespace_lapses_after_its_lease(fake_kernel: Kernel) -> None:
    from kernel import ledger

    with fake_kernel.db.transaction() as conn:
        ledger.open_hold(conn, "store:7:12345:4026599999:abcd", "bob", 3)
    assert fake_kernel.sweep()["storage_holds"] == [] and fake_kernel.ledger_check().ok  # may still be writing
    with fake_kernel.db.transaction() as conn:
        conn.execute("UPDATE ledger SET at = '2000-01-01T00:00:00+00:00' WHERE credit LIKE 'hold:store:%'")
    assert fake_kernel.sweep()["storage_holds"] == ["store:7:12345:4026599999:abcd"]
    assert fake_kernel.balance("bob") == 10 and fake_kernel.ledger_check().ok


def test_a_database_left_half_built_by_a_dead_kernel_is_swept(fake_kernel: Kernel) -> None:
    home = fake_kernel.settings.home
    left = [home / f".kernel.db.new-{dead_token()}-0a0b{suffix}" for suffix in ("", "-wal", "-shm")]
    for p in left:
        p.write_bytes(b"half")
    assert sorted(fake_kernel.sweep()["temp_files"]) == sorted(p.name for p in left)
    assert not any(p.exists() for p in left)
