"""Fixtures: cheap factories for homes, packages and kernels (fake or real Docker)."""

import contextlib
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import docker.errors
import pytest
from docker import DockerClient

from kernel.api import Kernel
from kernel.sandbox.fake import FakeSandbox
from kernel.settings import Settings

PackageFactory = Callable[..., Path]


def manifest(
    name: str = "art",
    *,
    kind: str = "code",
    entrypoint: str | None = "art:main",
    price: int = 0,
    limits: dict[str, int] | None = None,
    extra: str = "",
) -> str:
    lines = [f'[project]\nname = "{name}"\nversion = "1.0"\n', "[tool.kernel]", f'kind = "{kind}"']
    if entrypoint:
        lines.append(f'entrypoint = "{entrypoint}"')
    lines.append(f"price = {price}")
    lines.append(extra)
    if limits:
        lines.append("[tool.kernel.limits]")
        lines += [f"{k} = {v}" for k, v in limits.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No common corpus: fingerprinting the standard library takes seconds (tested on its own).
    return Settings(home=tmp_path / "home", audit_common_corpus=[])


@pytest.fixture
def make_pkg(tmp_path: Path) -> PackageFactory:
    """make_pkg(code, **manifest_args) or make_pkg(files={...}): a package folder."""
    counter = iter(range(10_000))

    def factory(code: str | None = None, files: dict[str, str | bytes] | None = None, **kw: object) -> Path:
        root = tmp_path / f"pkg{next(counter)}"
        root.mkdir()
        contents: dict[str, str | bytes] = {"pyproject.toml": manifest(**kw)}  # type: ignore[arg-type]
        if code is not None:
            contents["art.py"] = textwrap.dedent(code)
        contents.update(files or {})
        for rel, data in contents.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                path.write_bytes(data)
            else:
                path.write_text(data)
        return root

    return factory


@pytest.fixture
def fake_kernel(settings: Settings) -> Iterator[Kernel]:
    k = Kernel(settings, sandbox=FakeSandbox(), image="fake:1")
    k.create_principal("alice", grant=100)
    k.create_principal("bob", grant=10)
    yield k
    assert k.ledger_check().ok, k.ledger_check().problems
    k.close()


# -- real Docker ------------------------------------------------------------------------

RUNTIMES = [r for r in os.environ.get("KERNEL_TEST_RUNTIMES", "runc,runsc").split(",") if r]


@pytest.fixture(scope="session")
def docker_client() -> Iterator[DockerClient]:
    """A client of the real engine. No engine is a failure, never a skip."""
    from kernel.errors import KernelError
    from kernel.sandbox.docker import connect

    try:
        client = connect()
    except KernelError as exc:
        pytest.fail(f"Docker tests need an engine: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_image(docker_client: DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sandbox image, built if missing (cached by recipe digest)."""
    from kernel.errors import KernelError
    from kernel.sandbox import image

    try:
        return image.build(docker_client, Settings(home=tmp_path_factory.mktemp("build")), lambda *a: None).tag
    except KernelError as exc:
        pytest.fail(f"Docker tests need the sandbox image: {exc}")


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, docker_client: DockerClient, docker_image: str) -> str:
    have = docker_client.info().get("Runtimes", {})
    if request.param not in have:
        pytest.fail(
            f"runtime {request.param} is not registered with Docker; run `make engine` or set KERNEL_TEST_RUNTIMES"
        )
    return str(request.param)


@pytest.fixture(params=["on-demand", "pooled"])
def docker_kernel(request: pytest.FixtureRequest, tmp_path: Path, runtime: str, docker_image: str) -> Iterator[Kernel]:
    """A kernel on the real engine, once making each container on demand, once from a warm pool
    (as the daemon runs): every guarantee must hold both ways."""
    k = Kernel(Settings(home=tmp_path / "home", runtime=runtime, pool=request.param == "pooled"))
    k.create_principal("alice", grant=1000)
    k.create_principal("bob", grant=100)
    yield k
    report = k.ledger_check()
    assert report.ok, report.problems
    k.close()  # a pool's waiting containers and folders go with it
    assert not list((k.settings.run_dir).glob("*")), "a run directory outlived its run"
    assert_no_containers(k.settings.home_id)


def assert_no_containers(home_id: str) -> None:
    """No container of this home outlived its run (other homes' runs, in parallel, are not ours to judge)."""
    from kernel.sandbox.base import HOME_LABEL, PROJECT_LABEL
    from kernel.sandbox.docker import PROJECT, connect

    client = connect()
    try:
        wanted = [f"{PROJECT_LABEL}={PROJECT}", f"{HOME_LABEL}={home_id}"]
        left = client.api.containers(all=True, filters={"label": wanted})  # no inspect: safe beside sweepers
        for c in left:
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(c["Id"], force=True)
    finally:
        client.close()
    assert not left, f"containers outlived their runs: {[c['Names'] for c in left]}"
