"""Reading packages from folders, tars and zips: limits, unsafe members, normal form."""

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from kernel.errors import PackageError
from kernel.package import normal_tar, read_package

MANIFEST = b'[project]\nname="x"\nversion="1"\n[tool.kernel]\nkind="code"\nentrypoint="art:main"\n'
ART = b"def main(v):\n    return v\n"


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def read(path: Path, max_files: int = 100, max_bytes: int = 1 << 20) -> dict[str, bytes]:
    return read_package(path, max_files, max_bytes)


BASE = [("pyproject.toml", MANIFEST), ("art.py", ART)]


@pytest.mark.parametrize(
    "member, message",
    [
        (("../evil.py", b"x"), "contains '..'"),
        (("a/../../evil.py", b"x"), "contains '..'"),
        (("/etc/passwd", b"x"), "absolute path"),
        (special("link", tarfile.SYMTYPE, "/etc/passwd"), "absolute path"),
        (special("link", tarfile.SYMTYPE, "../../outside"), "outside the package"),
        (special("hard", tarfile.LNKTYPE, "../outside"), "contains '..'"),
        (special("hard", tarfile.LNKTYPE, "/etc/shadow"), "absolute path"),
        (special("dev", tarfile.CHRTYPE), "device, FIFO"),
        (special("blk", tarfile.BLKTYPE), "device, FIFO"),
        (special("fifo", tarfile.FIFOTYPE), "device, FIFO"),
    ],
)
def test_unsafe_tar_members_are_refused(tmp_path: Path, member: object, message: str) -> None:
    archive = make_tar(tmp_path / "p.tar.gz", [*BASE, member])  # type: ignore[list-item]
    with pytest.raises(PackageError, match=message):
        read(archive)


def test_internal_links_become_copies(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "p.tar.gz",
        [*BASE, special("alias.py", tarfile.SYMTYPE, "art.py"), special("hard.py", tarfile.LNKTYPE, "art.py")],
    )
    files = read(archive)
    assert files["alias.py"] == files["hard.py"] == ART


def test_link_to_missing_member_is_refused(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "p.tar.gz", [*BASE, special("alias.py", tarfile.SYMTYPE, "nothing.py")])
    with pytest.raises(PackageError, match="not a file in the package"):
        read(archive)


def test_file_count_cap(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "p.tar.gz", [*BASE, *[(f"f{i}.txt", b"x") for i in range(10)]])
    with pytest.raises(PackageError, match="more than 5 files"):
        read(archive, max_files=5)


def test_byte_cap(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "p.tar.gz", [*BASE, ("big.bin", os.urandom(3000))])
    with pytest.raises(PackageError, match="more than 2000 bytes"):
        read(archive, max_bytes=2000)


def test_gzip_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    # 200 MB of zeros compress to ~200 KB; reading must stop at the 1 MB cap.
    archive = tmp_path / "bomb.tar.gz"
    with gzip.open(archive, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("pyproject.toml")
        info.size = len(MANIFEST)
        tar.addfile(info, io.BytesIO(MANIFEST))
        info = tarfile.TarInfo("zeros.bin")
        info.size = 200 * 2**20
        tar.addfile(info, io.BufferedReader(io.BytesIO(bytes(info.size))))  # type: ignore[arg-type]
    assert archive.stat().st_size < 2**20
    with pytest.raises(PackageError, match="more than 1048576 bytes"):
        read(archive)


def test_zip_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pyproject.toml", MANIFEST)
        zf.writestr("zeros.bin", bytes(50 * 2**20))
    with pytest.raises(PackageError, match="more than 1048576 bytes"):
        read(archive)


@pytest.mark.parametrize("name, message", [("../evil.py", "contains '..'"), ("/abs.py", "absolute path")])
def test_unsafe_zip_members_are_refused(tmp_path: Path, name: str, message: str) -> None:
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pyproject.toml", MANIFEST)
        zf.writestr(name, b"x")
    with pytest.raises(PackageError, match=message):
        read(archive)


def test_zip_symlink_outside_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pyproject.toml", MANIFEST)
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "../../etc/passwd")
    with pytest.raises(PackageError, match="outside the package"):
        read(archive)


def test_folder_symlink_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "pyproject.toml").write_bytes(MANIFEST)
    (root / "leak").symlink_to("/etc/passwd")
    with pytest.raises(PackageError, match="absolute path"):
        read(root)


def test_folder_fifo_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "pyproject.toml").write_bytes(MANIFEST)
    os.mkfifo(root / "pipe")
    with pytest.raises(PackageError, match="device, FIFO or socket"):
        read(root)


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(PackageError, match="neither a folder"):
        read(junk)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="does not exist"):
        read(tmp_path / "nope")


def test_caches_are_left_out_and_top_folder_stripped(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "p.tar.gz",
        [("p-1.0/pyproject.toml", MANIFEST), ("p-1.0/art.py", ART), ("p-1.0/__pycache__/art.cpython-311.pyc", b"\0")],
    )
    assert sorted(read(archive)) == ["art.py", "pyproject.toml"]


def test_normal_form_ignores_order_and_metadata(tmp_path: Path) -> None:
    a = make_tar(tmp_path / "a.tar", [("pyproject.toml", MANIFEST), ("art.py", ART)], mode="w")
    b = make_tar(tmp_path / "b.tar.gz", [("art.py", ART), ("pyproject.toml", MANIFEST)])
    assert normal_tar(read(a)) == normal_tar(read(b))


def _tar(members: list[tuple[str, bytes | str]], mode: str = "w:gz") -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):  # a symlink to ``data``
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_links_count_toward_the_caps_like_files(tmp_path: Path) -> None:
    from kernel.errors import PackageError
    from kernel.package import read_package

    big = b"x" * 40_000
    members: list[tuple[str, bytes | str]] = [("pyproject.toml", b"[project]\n"), ("big.bin", big)]
    members += [(f"l{i}.bin", "big.bin") for i in range(50)]
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(_tar(members))
    with pytest.raises(PackageError, match="more than 1000000 bytes"):
        read_package(archive, max_files=1000, max_bytes=1_000_000)  # 51 copies of 40 kB: 2 MB
    with pytest.raises(PackageError, match="more than 30 files"):
        read_package(archive, max_files=30, max_bytes=10**9)  # 52 entries pass the entry cap (60), not the files


def test_skipped_members_still_count_toward_the_byte_cap(tmp_path: Path) -> None:
    from kernel.errors import PackageError
    from kernel.package import read_package

    archive = tmp_path / "skip.tar.gz"
    archive.write_bytes(_tar([("pyproject.toml", b"[project]\n"), (".git/pack", b"\0" * 3_000_000)]))
    with pytest.raises(PackageError, match="more than 1000000 bytes"):
        read_package(archive, max_files=100, max_bytes=1_000_000)
