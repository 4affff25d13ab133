"""A backend for simulations and fast tests: each run is a Python callable in the kernel's
own process, talking to the run's real proxy socket and writing into its real workspace.

It never executes artifact code: the callable is chosen by the artifact's entrypoint from
a table the caller provides. Everything around it is the kernel's real path (holds,
proxy, audit events, workspace watching and walking, fingerprints), which is what the
black-market benchmark needs to produce a faithful audit log quickly.
"""

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernel.sandbox.base import Sandbox, SandboxOutcome, SandboxSpec, Slot, Stop
from kernel.sockets import connect_unix


class CallFailed(Exception):
    """The kernel refused a call (``code`` says which kind of refusal)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class Env:
    """What a behaviour sees: kernel_client's calls and its workspace."""

    def __init__(self, sock_path: Path, work: Path):
        self.work = work
        self._sock = connect_unix(str(sock_path))  # a deep home's path may pass AF_UNIX's 108 bytes
        self._io = self._sock.makefile("rwb")

    def close(self) -> None:
        self._io.close()
        self._sock.close()

    def _call(self, op: str, **args: Any) -> Any:
        self._io.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
        self._io.flush()
        answer = json.loads(self._io.readline() or b'{"ok": false, "code": "closed", "error": "hung up"}')
        if not answer.get("ok"):
            raise CallFailed(answer.get("code", "error"), answer.get("error", ""))
        return answer.get("value")

    def invoke(self, artifact_id: str, value: Any = None) -> Any:
        return self._call("invoke", artifact_id=artifact_id, input=value)

    def read_artifact(self, artifact_id: str, path: str | None = None) -> Any:
        value = self._call("read_artifact", artifact_id=artifact_id, path=path)
        if path is not None:
            return base64.b64decode(value)
        return {name: base64.b64decode(data) for name, data in value.items()}

    def write_artifact(self, name: str, files: dict[str, bytes], public: bool = False) -> str:
        encoded = {p: base64.b64encode(d).decode() for p, d in files.items()}
        return str(self._call("write_artifact", name=name, files=encoded, public=public))

    def transfer(self, to: str, amount: int, memo: str = "") -> int:
        return int(self._call("transfer", to=to, amount=amount, memo=memo))

    def balance(self) -> int:
        return int(self._call("balance"))

    def write_file(self, path: str, data: bytes) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


Behaviour = Callable[[Env, Any], Any]


class InProcessSandbox(Sandbox):
    def __init__(self, behaviours: dict[str, Behaviour]):
        self.behaviours = behaviours

    def run(self, spec: SandboxSpec, slot: Slot, stop: Stop | None = None) -> SandboxOutcome:
        mounts = {m.target: m.source for m in spec.mounts}
        call = json.loads((mounts["/kernel/in"] / "call.json").read_text())
        value = json.loads((mounts["/kernel/in"] / "input.json").read_text())
        behaviour = self.behaviours.get(call["entrypoint"])
        if behaviour is None:
            result: dict[str, Any] = {"ok": False, "error": f"no behaviour for {call['entrypoint']}"}
        else:
            env = Env(mounts["/kernel/sock"] / "kernel.sock", mounts["/work"])
            try:
                result = {"ok": True, "value": behaviour(env, value)}
            except CallFailed as exc:
                result = {"ok": False, "error": str(exc)}
            finally:
                env.close()
        (mounts["/kernel/out"] / "result.json").write_text(json.dumps(result))
        return SandboxOutcome(exit_code=0, cpu_seconds=0.001)

    def sweep(self, owner_alive: Callable[[str], bool], labels: dict[str, str]) -> list[str]:
        return []

    def runtime(self, requested: str) -> str:
        return "inprocess"
