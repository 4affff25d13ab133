"""Reading artifact packages from folders and archives, safely, into a normal form.

A package is read into a mapping of relative POSIX path -> bytes. Whatever the source
(folder, .tar.gz/.tgz/.tar, .zip), the same files give the same mapping: caches and VCS
folders are left out, modes and times are dropped, and the normal form is a tar with
sorted members, fixed mtime, owner and mode, so the digest names the content alone.

Every limit is enforced while reading, never after: members are counted as they come and
bytes are counted as they are decompressed, so a compression bomb stops at the cap.
"""

import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from kernel.errors import PackageError

IGNORED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
IGNORED_SUFFIXES = (".pyc", ".pyo")
CHUNK = 64 * 1024


def ignored(path: str) -> bool:
    parts = path.split("/")
    return any(p in IGNORED_DIRS for p in parts[:-1]) or parts[-1] in IGNORED_DIRS or path.endswith(IGNORED_SUFFIXES)


def clean_path(name: str) -> str:
    """A member name as a safe relative POSIX path, or PackageError."""
    if "\x00" in name:
        raise PackageError(f"member name {name!r} contains a NUL byte; rename it.")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise PackageError(f"member '{name}' has an absolute path; archive paths must be relative.")
    parts = [p for p in PurePosixPath(posix).parts if p not in ("", ".")]
    if ".." in parts:
        raise PackageError(f"member '{name}' contains '..'; archive paths must stay inside the package.")
    return "/".join(parts)


class Collector:
    """Accumulates files while enforcing the file-count and byte caps."""

    def __init__(self, max_files: int, max_bytes: int):
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.files: dict[str, bytes] = {}
        self.total = 0

    def charge(self, path: str, size: int) -> None:
        """Count ``size`` bytes toward the cap; PackageError once the package passes it."""
        self.total += size
        if self.total > self.max_bytes:
            raise PackageError(
                f"the package unpacks to more than {self.max_bytes} bytes (stopped at '{path}');"
                " make it smaller or raise KERNEL_MAX_PACKAGE_BYTES."
            )

    def read(self, path: str, stream: IO[bytes]) -> bytes:
        """Read a member, stopping as soon as the package would pass the byte cap."""
        chunks = []
        while chunk := stream.read(CHUNK):
            self.charge(path, len(chunk))
            chunks.append(chunk)
        return b"".join(chunks)

    def add(self, path: str, data: bytes) -> None:
        if not path or ignored(path):
            return
        if path in self.files:
            raise PackageError(f"member '{path}' appears twice in the archive; keep one.")
        if len(self.files) >= self.max_files:
            raise PackageError(
                f"the package has more than {self.max_files} files; remove some or raise KERNEL_MAX_PACKAGE_FILES."
            )
        self.files[path] = data

    def add_stream(self, path: str, stream: IO[bytes], size: int = 0) -> None:
        if not ignored(path):
            self.add(path, self.read(path, stream))
        else:
            self.charge(path, size)  # skipped, but an archive still unpacks it to get past it


def link_target(member: str, target: str) -> str:
    """Resolve a symlink target relative to its member; PackageError if it leaves the package."""
    if target.startswith("/"):
        raise PackageError(f"'{member}' is a link to the absolute path '{target}'; links must stay inside the package.")
    joined = PurePosixPath(member).parent / target
    parts: list[str] = []
    for part in joined.parts:
        if part == "..":
            if not parts:
                raise PackageError(f"'{member}' links to '{target}', outside the package.")
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def resolve_links(col: "Collector", links: dict[str, str]) -> None:
    """Store each internal link as a copy of the regular file it names: each copy counts toward the
    package's file and byte caps like any file (a thousand links to one large file is a large package)."""
    files = col.files
    for member, target in links.items():
        seen = {member}
        while target in links:
            if target in seen:
                raise PackageError(f"'{member}' is part of a symlink loop; remove it.")
            seen.add(target)
            target = links[target]
        if target not in files:
            raise PackageError(f"'{member}' links to '{target}', which is not a file in the package.")
        col.charge(member, len(files[target]))
        col.add(member, files[target])


def from_tar(path: Path, col: Collector) -> None:
    links: dict[str, str] = {}
    entries = 0
    try:
        with tarfile.open(path, "r:*") as tar:
            for info in tar_members(tar):
                entries += 1
                if entries > 2 * col.max_files:
                    raise PackageError(f"the archive has more than {2 * col.max_files} entries.")
                name = clean_path(info.name)
                if info.isdir():
                    continue
                if info.issym():
                    links[name] = link_target(name, info.linkname)
                elif info.islnk():
                    links[name] = link_target("", clean_path(info.linkname))
                elif info.isreg():
                    stream = tar.extractfile(info)
                    assert stream is not None
                    col.add_stream(name, stream, info.size)
                else:
                    raise PackageError(
                        f"member '{info.name}' is a device, FIFO or other special file; packages hold only files."
                    )
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise PackageError(f"'{path.name}' is not a readable tar archive ({exc}).") from exc
    resolve_links(col, {k: v for k, v in links.items() if not ignored(k)})


def tar_members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Members one at a time, without tarfile keeping the whole index first."""
    while (info := tar.next()) is not None:
        yield info


def from_zip(path: Path, col: Collector) -> None:
    links: dict[str, str] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > 2 * col.max_files:
                raise PackageError(f"the archive has more than {2 * col.max_files} entries.")
            for info in infos:
                name = clean_path(info.filename)
                mode = info.external_attr >> 16
                if info.is_dir():
                    continue
                if stat.S_ISLNK(mode):
                    with zf.open(info) as fh:
                        links[name] = link_target(name, fh.read(4096).decode("utf-8", "replace"))
                elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no type recorded
                    raise PackageError(
                        f"member '{info.filename}' is a device, FIFO or other special file; packages hold only files."
                    )
                else:
                    with zf.open(info) as fh:
                        col.add_stream(name, fh)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as exc:
        raise PackageError(f"'{path.name}' is not a readable zip archive ({exc}).") from exc
    resolve_links(col, {k: v for k, v in links.items() if not ignored(k)})


def from_dir(root: Path, col: Collector) -> None:
    links: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        for d in list(dirnames):
            full = Path(dirpath, d)
            if full.is_symlink():
                raise PackageError(f"'{full.relative_to(root)}' is a symlinked folder; copy it in instead.")
        for fname in sorted(filenames):
            full = Path(dirpath, fname)
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                links[rel] = link_target(rel, os.readlink(full))
            elif stat.S_ISREG(st.st_mode):
                if not ignored(rel):
                    with open(full, "rb") as fh:
                        col.add_stream(rel, fh)
            else:
                raise PackageError(f"'{rel}' is a device, FIFO or socket; packages hold only files.")
    resolve_links(col, {k: v for k, v in links.items() if not ignored(k)})


def strip_top_folder(files: dict[str, bytes]) -> dict[str, bytes]:
    """``name-1.0/pyproject.toml`` archives: drop the single top folder."""
    if "pyproject.toml" in files or not files:
        return files
    tops = {p.split("/", 1)[0] for p in files}
    if len(tops) == 1 and all("/" in p for p in files):
        top = tops.pop()
        if f"{top}/pyproject.toml" in files:
            return {p[len(top) + 1 :]: data for p, data in files.items()}
    return files


def from_files(given: dict[str, bytes], max_files: int, max_bytes: int) -> dict[str, bytes]:
    """A package handed over as path -> bytes (a run's submit): the same path rules and caps as a folder."""
    col = Collector(max_files, max_bytes)
    for name, data in given.items():
        col.charge(name, len(data))
        col.add(clean_path(name), data)
    files = strip_top_folder(col.files)
    if not files:
        raise PackageError("the package holds no files.")
    return files


def read_package(path: Path, max_files: int, max_bytes: int) -> dict[str, bytes]:
    """Read a folder, tar or zip into path -> bytes, or raise PackageError."""
    col = Collector(max_files, max_bytes)
    if path.is_dir():
        from_dir(path, col)
    elif not path.exists():
        raise PackageError(f"'{path}' does not exist; give a folder, .tar.gz or .zip.")
    elif zipfile.is_zipfile(path):
        from_zip(path, col)
    elif tarfile.is_tarfile(path):
        from_tar(path, col)
    else:
        raise PackageError(f"'{path}' is neither a folder, a tar archive nor a zip archive.")
    files = strip_top_folder(col.files)
    if not files:
        raise PackageError(f"'{path}' holds no files.")
    return files


def normal_tar(files: dict[str, bytes]) -> bytes:
    """The canonical byte form of a package: sorted members, fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def untar(blob: Path, dest: Path) -> None:
    """Unpack a normal-form blob written by this kernel (trusted, but checked anyway)."""
    with tarfile.open(blob) as tar:
        tar.extractall(dest, filter="data")
