"""Building the one sandbox image every artifact runs in, from ``sandbox_images/``.

Two layers. The base holds Debian's python3 and python3-pytest: pulled from a registry
where the engine can pull one, else made with ``debootstrap`` (minbase) and ``docker
import``, so it builds on a machine with no registry. The finishing layer adds the
runner and ``kernel_client`` (see ``sandbox_images/Dockerfile``). Both are tagged by a
digest of their recipe, so an unchanged recipe is never rebuilt.
"""

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
from pydantic import BaseModel

from kernel.errors import ImageError
from kernel.settings import Settings
from sandbox_images import RECIPE_DIR

SUITE = "bookworm"
REPOSITORY = "kernel-sandbox"
BASE_REPOSITORY = "kernel-sandbox-base"
DEBOOTSTRAP_LINES = 590  # lines debootstrap prints for this recipe; drives the progress bar

Progress = Callable[[str, str, float | None], None]  # (phase, message, fraction done or None)


class ImageInfo(BaseModel):
    tag: str
    id: str
    size: int
    source: str  # where the base came from: "debootstrap", "registry", "cached base"; "cached" if nothing was built
    built: bool


def _digest(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in sorted(paths):
        h.update(str(p.relative_to(RECIPE_DIR)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def recipe_files() -> list[Path]:
    return [
        p for p in RECIPE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"
    ]


def base_tag() -> str:
    files = [RECIPE_DIR / "build-rootfs.sh", RECIPE_DIR / "registry-base.Dockerfile"]
    return f"{BASE_REPOSITORY}:{_digest(files, SUITE)}"


def image_tag() -> str:
    return f"{REPOSITORY}:{_digest(recipe_files(), base_tag())}"


def find(client: docker.DockerClient, tag: str) -> ImageInfo | None:
    try:
        img = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return ImageInfo(tag=tag, id=img.id, size=int(img.attrs.get("Size", 0)), source="cached", built=False)


def require(client: docker.DockerClient) -> ImageInfo:
    """The current image, or ImageError saying how to build it."""
    info = find(client, image_tag())
    if info is None:
        raise ImageError(f"the sandbox image {image_tag()} is not built: run `kernel image build` (or `make image`).")
    return info


def build(client: docker.DockerClient, settings: Settings, progress: Progress, force: bool = False) -> ImageInfo:
    """Build the image unless an image of the same recipe exists (or ``force``)."""
    tag = image_tag()
    if not force and (info := find(client, tag)):
        progress("done", f"{tag} is up to date", 1.0)
        return info
    source = _ensure_base(client, settings, progress, force)
    progress("finish", "adding the runner and kernel_client", None)
    try:
        for event in client.api.build(
            path=str(RECIPE_DIR),
            dockerfile="Dockerfile",
            tag=tag,
            buildargs={"BASE": base_tag()},
            pull=False,
            rm=True,
            forcerm=True,
            network_mode="none",
            labels={"io.artifact-kernel.recipe": tag},
            decode=True,
        ):
            if "error" in event:
                raise ImageError(f"building {tag} failed: {event['error'].strip()}")
            if msg := event.get("stream", "").strip():
                progress("finish", msg, None)
    except docker.errors.DockerException as exc:
        raise ImageError(f"building {tag} failed: {exc}") from exc
    info = find(client, tag)
    assert info is not None
    progress("done", f"built {tag}", 1.0)
    return info.model_copy(update={"source": source, "built": True})


def _ensure_base(client: docker.DockerClient, settings: Settings, progress: Progress, force: bool) -> str:
    tag = base_tag()
    if not force and find(client, tag):
        return "cached base"
    if settings.image_source in ("auto", "registry"):
        try:
            return _base_from_registry(client, settings, tag, progress)
        except (docker.errors.DockerException, ImageError) as exc:
            if settings.image_source == "registry":
                raise ImageError(f"could not build the base from {settings.registry_base}: {exc}") from exc
            progress("base", f"no registry base ({str(exc).splitlines()[0][:80]}); using debootstrap", None)
    return _base_from_debootstrap(client, settings, tag, progress)


def _base_from_registry(client: docker.DockerClient, settings: Settings, tag: str, progress: Progress) -> str:
    progress("base", f"pulling {settings.registry_base}", None)
    client.images.pull(settings.registry_base)
    for event in client.api.build(
        path=str(RECIPE_DIR),
        dockerfile="registry-base.Dockerfile",
        tag=tag,
        pull=False,
        rm=True,
        forcerm=True,
        network_mode="host",  # apt-get inside the build; artifacts never get a network
        decode=True,
    ):
        if "error" in event:
            raise ImageError(event["error"].strip())
        if msg := event.get("stream", "").strip():
            progress("base", msg, None)
    return "registry"


def _base_from_debootstrap(client: docker.DockerClient, settings: Settings, tag: str, progress: Progress) -> str:
    if os.geteuid() != 0:
        raise ImageError("building the base image with debootstrap needs root: run `kernel image build` as root.")
    if shutil.which("debootstrap") is None:
        progress("base", "installing debootstrap from Debian's packages", None)
        apt = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "debootstrap"], capture_output=True, text=True, check=False
        )
        if apt.returncode != 0 or shutil.which("debootstrap") is None:
            raise ImageError("debootstrap is missing and apt-get could not install it: install debootstrap.")
    work = settings.cache_dir / "rootfs-build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tar = work / "rootfs.tar"
    try:
        _run_debootstrap(work, tar, progress)
        progress("import", f"importing the root filesystem as {tag}", None)
        repo, _, version = tag.partition(":")
        client.api.import_image_from_file(str(tar), repository=repo, tag=version, changes=['CMD ["python3"]'])
    except docker.errors.DockerException as exc:
        raise ImageError(f"docker import of the root filesystem failed: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return "debootstrap"


def _run_debootstrap(work: Path, tar: Path, progress: Progress) -> None:
    script = RECIPE_DIR / "build-rootfs.sh"
    proc = subprocess.Popen(
        ["bash", str(script), SUITE, str(work), str(tar)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.startswith("I: "):
            done = sum(1 for x in lines if x.startswith("I: "))
            progress("base", line[3:].strip(), min(done / DEBOOTSTRAP_LINES, 0.99))
    if proc.wait() != 0:
        tail = " | ".join(x for x in lines[-3:] if x)
        raise ImageError(f"debootstrap failed ({tail}); check the machine's apt sources and try again.")
