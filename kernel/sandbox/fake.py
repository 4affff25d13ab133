"""An in-memory backend for fast unit tests: runs nothing, plays back a scripted outcome.

The script is a function of the spec that returns the outcome and, optionally, the
result document the runner would have written. It never executes artifact code.
"""

import json
from collections.abc import Callable
from typing import Any

from kernel.sandbox.base import Sandbox, SandboxOutcome, SandboxSpec, Slot, Stop

Script = Callable[[SandboxSpec], tuple[SandboxOutcome, dict[str, Any] | None]]


def returns(value: Any) -> Script:
    """A script whose runs all succeed and return ``value``."""
    return lambda spec: (
        SandboxOutcome(exit_code=0, cpu_seconds=0.01, peak_memory_bytes=1 << 20),
        {"ok": True, "value": value},
    )


class FakeSandbox(Sandbox):
    def __init__(self, script: Script | None = None, runtimes: tuple[str, ...] = ("runc",)):
        self.script = script or returns(None)
        self.specs: list[SandboxSpec] = []
        self._runtimes = runtimes

    def run(self, spec: SandboxSpec, slot: Slot, stop: Stop | None = None) -> SandboxOutcome:
        self.specs.append(spec)
        outcome, result = self.script(spec)
        out = next((m.source for m in spec.mounts if m.target == "/kernel/out"), None)
        if result is not None and out is not None:
            (out / "result.json").write_text(json.dumps(result))
        return outcome

    def sweep(self, owner_alive: Callable[[str], bool], labels: dict[str, str]) -> list[str]:
        return []

    def runtime(self, requested: str) -> str:
        return requested if requested != "auto" else self._runtimes[-1]
