"""Hand-built audit logs for detector tests: rows written straight into a kernel's tables,
exactly as runs would leave them (runs, audit events, fingerprints of gone content, ledger)."""

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

from kernel import ledger, process, store
from kernel.api import Kernel
from kernel.audit.provenance import INPUT_PATH, OUTPUT_PATH, fingerprinter_for, save_prints, sha256_and_print
from kernel.db import now


def module(seed: int, functions: int = 12) -> bytes:
    """A unique Python module of about 100 bytes per function."""
    body = ["def main(v):\n    return v\n"]
    for i in range(functions):
        k, factor = seed * 7919 % 1013 + i, seed ^ (i * 2654435761)
        body.append(f"def step_{seed}_{i}(x, k={k}):\n    return (x * {factor}) % k\n")
    return "\n\n".join(body).encode()


class Log:
    def __init__(self, kernel: Kernel, root: Path):
        self.k, self.root = kernel, root
        self.fp = fingerprinter_for(kernel.settings)
        self.n = 0

    def principal(self, name: str, grant: int = 1000) -> str:
        self.k.create_principal(name, grant=grant)
        return name

    def package(self, owner: str, files: dict[str, bytes], price: int = 0, public: bool = True) -> str:
        """A code artifact submitted by ``owner`` (its entrypoint is main:main)."""
        self.n += 1
        folder = self.root / f"pkg{self.n}"
        folder.mkdir(parents=True)
        (folder / "pyproject.toml").write_text(
            f'[project]\nname = "p{self.n}"\nversion = "1"\n[tool.kernel]\nkind = "code"\n'
            f'entrypoint = "main:main"\nprice = {price}\n'
        )
        (folder / "main.py").write_text("def main(v):\n    return v\n")
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        return self.k.submit(folder, owner, public=public).artifact.id

    def run(self, principal: str, artifact_id: str, output: Any = None, incomplete: bool = False) -> str:
        """A finished run of ``artifact_id`` for ``principal``; its price, if any, is paid to the owner."""
        run_id = secrets.token_hex(8)
        art = store.get(self.k.db, artifact_id)
        with self.k.db.transaction() as conn:
            conn.execute(
                "INSERT INTO runs (id, artifact_id, principal, state, status, output, owner_process, started_at,"
                " finished_at, root_run_id, audit_incomplete, cost)"
                " VALUES (?, ?, ?, 'done', 'ok', ?, ?, ?, ?, ?, ?, ?)",
                (run_id, artifact_id, principal, json.dumps(output), process.token(), now(), now(), run_id,
                 int(incomplete), art.price),
            )  # fmt: skip
            if art.price and art.owner != principal:
                ledger.open_hold(conn, f"run:{run_id}", principal, art.price, run_id=run_id)
                ledger.settle_hold(conn, f"run:{run_id}", art.owner, kind="price", run_id=run_id)
        self.event(run_id, principal, "kernel", "copy_in", content=json.dumps(None).encode(), path=INPUT_PATH)
        if output is not None:
            document = json.dumps({"ok": True, "value": output}).encode()
            self.event(run_id, principal, "kernel", "copy_out", content=document, path=OUTPUT_PATH)
        return run_id

    def event(self, run_id: str, principal: str, source: str, op: str, *, content: bytes | None = None,
              artifact_id: str | None = None, path: str | None = None, ok: bool = True) -> int:  # fmt: skip
        digest = None
        if content is not None:
            digest, blob = sha256_and_print(self.fp, [content], len(content))
            if op in ("written", "copy_in"):  # gone after the run: the kernel fingerprints it then
                save_prints(self.k.db, [(digest, blob)])
        with self.k.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO audit_events (at, run_id, principal, source, op, artifact_id, path, bytes, digest, ok)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now(), run_id, principal, source, op, artifact_id, path, len(content or b""), digest, int(ok)),
            )
            return int(cur.lastrowid or 0)

    def read(self, run_id: str, principal: str, artifact_id: str, path: str) -> int:
        data = store.read_files(self.k.settings, artifact_id)[path]
        return self.event(run_id, principal, "proxy", "read_artifact", content=data, artifact_id=artifact_id, path=path)

    def write_data(self, run_id: str, principal: str, name: str, files: dict[str, bytes], public: bool = True) -> str:
        art = store.store_data(self.k.db, self.k.settings, principal, name, files, public).artifact
        for path, data in files.items():
            self.event(run_id, principal, "proxy", "write_artifact", content=data, artifact_id=art.id, path=path)
        return art.id

    def workspace(self, run_id: str, principal: str, path: str, data: bytes) -> int:
        return self.event(run_id, principal, "file", "written", content=data, path=path)

    def transfer(self, payer: str, payee: str, amount: int) -> None:
        with self.k.db.transaction() as conn:
            ledger.move(conn, ledger.principal_account(payer), ledger.principal_account(payee), amount,
                        kind="transfer")  # fmt: skip


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
