"""Submitting artifacts: manifest validation, entrypoint checks, content addressing."""

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
