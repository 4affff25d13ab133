"""Runs one trivial job per request with a peer sandbox library; driven by benchmarks/peers.py.

Runs inside ``.venv-peers`` (``make bench-peers`` makes it), never in the project's venv: the
peers' pins (urllib3 1.26 for epicbox) must not leak into the kernel's environment.

Protocol, one JSON document per line. On start the worker prints
``{"ready": true, "versions": {...}}``. Then for each request on stdin,
``{"peer": "epicbox" | "llm-sandbox", "image": "kernel-sandbox:TAG", "runtime": "runc" | "runsc",
"label": "key=value"}`` (label optional), it runs the job once and answers
``{"ok": bool, "seconds": float, "output": str, "error": str | null, "unsupported": bool}``.
``seconds`` is measured here, around the peer's own call only, so neither this interpreter's
start-up nor the pipe is counted. EOF on stdin ends the worker.

The job is ``python3 -c "print(1+1)"`` in a fresh container of the local image, as the image's
own user, with no network, which is what the driver's ``docker run --rm`` row does too.

No pulls. epicbox creates its container with ``containers.create``, which in the docker SDK never
pulls (only ``containers.run`` does); llm-sandbox gets a docker client whose ``images.pull``
refuses, and finds the image locally, so it neither pulls nor, with ``keep_template``, removes it.
Both are checked up front: a missing image is an error here, never a download.
"""

import functools
import importlib.metadata
import json
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TextIO
from unittest import mock

import docker
import docker.errors
from docker.models.containers import ContainerCollection
from docker.models.images import ImageCollection

JOB_ARGV = ["python3", "-c", "print(1+1)"]
JOB_SHELL = "python3 -c 'print(1+1)'"  # the same job, for peers that take a shell string
EXPECTED = "2"
EPICBOX_PROFILE = "bench-peers"
PEERS = ("epicbox", "llm-sandbox")


class PullRefused(RuntimeError):
    """A peer asked to pull an image; this benchmark only uses the local one."""


class NoPullImages(ImageCollection):
    def pull(self, repository: str, tag: str | None = None, all_tags: bool = False, **kwargs: Any) -> Any:
        raise PullRefused(f"refusing to pull {repository}: only the local image may be used")


class NoPullClient(docker.DockerClient):
    """A docker client whose image pulls fail instead of reaching a registry."""

    @property
    def images(self) -> NoPullImages:
        return NoPullImages(client=self)


@functools.cache
def client() -> NoPullClient:
    return NoPullClient.from_env(timeout=60)


@functools.cache
def image_user(image: str) -> str:
    """The image's own USER (so every contender runs the job as the same user); fails if not local."""
    try:
        attrs = client().images.get(image).attrs
    except docker.errors.ImageNotFound as exc:
        raise PullRefused(f"image {image} is not on this engine; build it (`make image`), it is never pulled") from exc
    return str(attrs.get("Config", {}).get("User") or "root")


@functools.cache
def engine_info() -> dict[str, Any]:
    return dict(client().info())


def default_runtime() -> str:
    return str(engine_info().get("DefaultRuntime", "runc"))


def remove(container_id: str) -> None:
    with suppress(docker.errors.NotFound):
        client().api.remove_container(container_id, force=True, v=True)


# --- epicbox -----------------------------------------------------------------------------------


@functools.cache
def epicbox_setup(image: str) -> None:
    import epicbox

    epicbox.configure(profiles=[epicbox.Profile(EPICBOX_PROFILE, image, user=image_user(image), network_disabled=True)])


def run_epicbox(image: str, runtime: str, label: str | None) -> dict[str, Any]:
    """epicbox.run (create, attach, start, wait, inspect, destroy) of the job.

    epicbox 1.1.0 has no option for the OCI runtime: for a runtime other than the engine's default,
    ``runtime=`` is added to its one ``containers.create`` call, as is the run's label (metadata
    only); nothing else is changed. The same wrapper records the container id, so the container is
    removed here even if epicbox fails.
    """
    import epicbox

    epicbox_setup(image)
    created: list[str] = []
    original = ContainerCollection.create
    inject: dict[str, Any] = {} if runtime == default_runtime() else {"runtime": runtime}
    if label:
        key, _, value = label.partition("=")
        inject["labels"] = {key: value}

    def create(self: ContainerCollection, image: str, command: Any = None, **kwargs: Any) -> Any:
        container = original(self, image, command, **{**kwargs, **inject})
        created.append(container.id)
        return container

    try:
        with mock.patch.object(ContainerCollection, "create", create):
            start = time.perf_counter()
            result = epicbox.run(EPICBOX_PROFILE, JOB_SHELL)
            seconds = time.perf_counter() - start
    finally:
        for container_id in created:
            remove(container_id)
    output = (result["stdout"] or b"").decode(errors="replace").strip()
    stderr = (result["stderr"] or b"").decode(errors="replace").strip()
    ok = result["exit_code"] == 0 and output == EXPECTED and not result["timeout"]
    error = None if ok else f"exit {result['exit_code']}, timeout {result['timeout']}, stderr: {stderr[-300:]}"
    return {"ok": ok, "seconds": seconds, "output": output, "error": error}


# --- llm-sandbox -------------------------------------------------------------------------------


def run_llm_sandbox(image: str, runtime: str, label: str | None) -> dict[str, Any]:
    """One llm-sandbox session (create, start, exec the job, stop, remove) on its docker backend.

    Options: ``skip_environment_setup`` (no venv, no ``pip install --upgrade pip`` in the
    container), ``keep_template`` (never remove the image), the NoPullClient; runtime, network,
    user and a keep-alive command go through ``runtime_configs`` into ``containers.create``. The
    session runs the job with ``execute_command``: its ``run(code)`` calls ``python``, which
    Debian's python3 image does not have. ``stop_signal=SIGKILL``: the keep-alive ``sleep`` is
    PID 1 and ignores SIGTERM, so ``close()`` would otherwise wait out Docker's 10 s stop timeout.
    """
    from llm_sandbox import SandboxBackend, SandboxSession

    image_user(image)  # the image must be local
    configs: dict[str, Any] = {
        "runtime": runtime,
        "network_mode": "none",
        "user": image_user(image),
        "command": ["sleep", "infinity"],
        "stop_signal": "SIGKILL",
    }
    if label:
        key, _, value = label.partition("=")
        configs["labels"] = {key: value}
    start = time.perf_counter()
    session = SandboxSession(
        backend=SandboxBackend.DOCKER,
        client=client(),
        image=image,
        lang="python",
        keep_template=True,
        skip_environment_setup=True,
        runtime_configs=configs,
    )
    try:
        session.open()
        result = session.execute_command(JOB_SHELL)
        session.close()
        seconds = time.perf_counter() - start
    finally:
        container = getattr(session, "container", None)
        if container is not None:  # close() did not run or failed: remove it by id
            remove(container.id)
    output = (result.stdout or "").strip()
    ok = result.exit_code == 0 and output == EXPECTED
    error = None if ok else f"exit {result.exit_code}, stderr: {(result.stderr or '')[-300:]}"
    return {"ok": ok, "seconds": seconds, "output": output, "error": error}


RUNNERS: dict[str, Callable[[str, str, str | None], dict[str, Any]]] = {
    "epicbox": run_epicbox,
    "llm-sandbox": run_llm_sandbox,
}


def handle(request: dict[str, Any]) -> dict[str, Any]:
    peer, image, runtime = request.get("peer"), request.get("image"), request.get("runtime")
    if peer not in RUNNERS or not isinstance(image, str) or not isinstance(runtime, str):
        return failure(f"bad request {request!r}: want peer in {PEERS}, image and runtime")
    if runtime not in engine_info().get("Runtimes", {}):
        return failure(f"the engine has no runtime {runtime!r}", unsupported=True)
    try:
        answer = RUNNERS[peer](image, runtime, request.get("label"))
    except Exception as exc:  # every failure becomes one answer line
        return failure(f"{type(exc).__name__}: {exc}")
    return {**answer, "unsupported": False}


def failure(error: str, unsupported: bool = False) -> dict[str, Any]:
    return {"ok": False, "seconds": 0.0, "output": "", "error": error, "unsupported": unsupported}


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in ("epicbox", "llm-sandbox", "docker", "urllib3")}


def serve(requests: TextIO, answers: TextIO) -> None:
    def say(doc: dict[str, Any]) -> None:
        answers.write(json.dumps(doc) + "\n")
        answers.flush()

    say({"ready": True, "versions": versions(), "python": sys.version.split()[0]})
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            say(failure(f"not JSON: {exc}"))
            continue
        say(handle(request) if isinstance(request, dict) else failure("a request is a JSON object"))


def main() -> None:
    answers = sys.stdout
    sys.stdout = sys.stderr  # whatever a peer prints must not corrupt the answer stream
    serve(sys.stdin, answers)


if __name__ == "__main__":
    main()
