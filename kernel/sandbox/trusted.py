"""A backend for large simulated worlds of TRUSTED code: the package's entrypoint runs in the
kernel's own process, on the run's real proxy socket, with the real ``kernel_client``.

It is not a sandbox: there is no isolation at all. It exists so that benchmarks and unit
tests can drive worlds of the shipped policies (and the artifacts those policies write)
through the kernel's real path (holds, proxy, audit events, settlement) thousands of times
faster than containers. Nothing a user sets selects it; never give it untrusted code.

Each run's calls go through the socket its slot was given: ``kernel_client`` keeps one
connection per thread, and a nested run is served on another thread. Packages are loaded
from their staged files; an entry module may import only the standard library (the
shipped policies and the artifacts they write are single modules).
"""

import hashlib
import importlib.util
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from kernel.sandbox.base import Sandbox, SandboxOutcome, SandboxSpec, Slot, Stop

CLIENT = Path(__file__).resolve().parents[2] / "sandbox_images" / "runtime" / "kernel_client.py"
_load_lock = threading.Lock()


def kernel_client() -> ModuleType:
    """The sandbox's ``kernel_client``, loaded once into this process as ``kernel_client``."""
    with _load_lock:
        module = sys.modules.get("kernel_client")
        if module is None:
            spec = importlib.util.spec_from_file_location("kernel_client", CLIENT)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules["kernel_client"] = module
        return module


class TrustedPython(Sandbox):
    def __init__(self) -> None:
        self._modules: dict[str, ModuleType] = {}  # by the sha256 of the module's source

    def _entry(self, pkg: Path, entrypoint: str) -> Callable[[Any], Any]:
        module_name, _, function = entrypoint.partition(":")
        relative = module_name.replace(".", "/") + ".py"
        source = (pkg / relative).read_bytes()
        key = hashlib.sha256(source).hexdigest()
        with _load_lock:
            module = self._modules.get(key)
            if module is None:
                module = ModuleType(f"trusted_{key[:16]}")
                module.__file__ = f"/kernel/pkg/{relative}"  # where a container has it: tracebacks replay too
                exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - trusted code only
                self._modules[key] = module
        fn: Callable[[Any], Any] = getattr(module, function)
        return fn

    def run(self, spec: SandboxSpec, slot: Slot, stop: Stop | None = None) -> SandboxOutcome:
        mounts = {m.target: m.source for m in spec.mounts}
        call = json.loads((mounts["/kernel/in"] / "call.json").read_text())
        value = json.loads((mounts["/kernel/in"] / "input.json").read_text())
        client = kernel_client()
        client._drop()
        # Through /proc/self/fd, as kernel.sockets does: a home's deep path may pass AF_UNIX's 108 bytes.
        sock_dir = os.open(mounts["/kernel/sock"], os.O_PATH | os.O_DIRECTORY)
        client._local.path = f"/proc/self/fd/{sock_dir}/kernel.sock"
        try:
            result: dict[str, Any] = {
                "ok": True,
                "value": self._entry(mounts["/kernel/pkg"], call["entrypoint"])(value),
            }
        except Exception as exc:  # noqa: BLE001 - the artifact's failure is its result, as in a container
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                      "traceback": "".join(traceback.format_exception(exc))[-8000:]}  # fmt: skip
        finally:
            client._drop()
            client._local.path = None
            os.close(sock_dir)
        (mounts["/kernel/out"] / "result.json").write_text(json.dumps(result))
        return SandboxOutcome(exit_code=0, cpu_seconds=0.0)

    def sweep(self, owner_alive: Callable[[str], bool], labels: dict[str, str]) -> list[str]:
        return []

    def runtime(self, requested: str) -> str:
        return "trusted"
