"""A Python client of the daemon's HTTP API, for agents on other machines.

Its methods have the names of ``kernel.api.Kernel``'s; they return the API's JSON
(dicts and lists) rather than models, so the client needs nothing but the standard
library. A method acting for a principal acts for the token's own when none is named::

    from kernel.client import Client

    k = Client("http://127.0.0.1:8765", token="kt_...")
    art = k.submit("examples/wordcount")["artifact"]
    run = k.invoke(art["id"], value={"text": "to be or not to be"})
    print(run["status"], run["output"])

An error answer raises ``ClientError`` with the API's stable ``code`` and its sentence.
A client holds one connection: use one per thread.
"""

import http.client
import io
import json
import tarfile
import urllib.parse
from pathlib import Path
from typing import Any

from kernel.sockets import connect_unix


class ClientError(Exception):
    """The daemon refused a request: ``code`` is stable (see the API's docs), the message a sentence."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("kernel", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = connect_unix(self.path, self.timeout)


class Client:
    """``url``: ``http://host:port`` of `kernel serve`, or ``unix:/path/to/home/daemon.sock``."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 900.0):
        self.url, self.token, self.timeout = url, token, timeout
        self._conn: http.client.HTTPConnection | None = None

    # -- transport ----------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.url.startswith("unix:"):
                self._conn = _UnixConnection(self.url[len("unix:") :], self.timeout)
            else:
                parts = urllib.parse.urlsplit(self.url)
                if parts.scheme == "https":
                    self._conn = http.client.HTTPSConnection(parts.netloc, timeout=self.timeout)
                else:
                    self._conn = http.client.HTTPConnection(parts.netloc, timeout=self.timeout)
        return self._conn

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                raw: bytes | None = None, content_type: str = "application/json") -> Any:  # fmt: skip
        """One API call; returns the decoded JSON answer or raises ``ClientError``."""
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        target = path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, target, body=data, headers=headers)
            except (ConnectionError, BrokenPipeError):
                # the server had closed this kept-alive connection: it never read the request
                self.close()
                if attempt == 2:
                    raise
                continue
            try:
                response = conn.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected):
                self.close()
                if attempt == 2 or method not in ("GET", "HEAD"):
                    raise  # a write may have been carried out: never send it twice
        answer = json.loads(payload) if payload else None
        if response.status >= 400:
            error = (answer or {}).get("error", {}) if isinstance(answer, dict) else {}
            raise ClientError(response.status, error.get("code", "error"), error.get("message", str(answer)))
        return answer

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- principals and scrip -----------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/whoami"))

    def create_principal(self, name: str, grant: int = 0) -> int:
        return int(self.request("POST", "/v1/principals", {"name": name, "grant": grant})["balance"])

    def transfer(self, payer: str | None, to: str, amount: int, memo: str = "") -> int:
        body = {"to": to, "amount": amount, "memo": memo, "principal": payer}
        return int(self.request("POST", "/v1/transfers", body)["balance"])

    def balance(self, name: str) -> int:
        return int(self.request("GET", f"/v1/principals/{_seg(name)}/balance")["balance"])

    def principals(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/principals"))

    def ledger_check(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/ledger/check"))

    # -- artifacts ----------------------------------------------------------------------------
    def submit(self, path: Path | str, owner: str | None = None, public: bool = False) -> dict[str, Any]:
        """Upload the package folder ``path`` (as a gzipped tar) and store it."""
        return dict(self.request("POST", "/v1/artifacts", params={"principal": owner, "public": public},
                                 raw=pack(Path(path)), content_type="application/gzip"))  # fmt: skip

    def artifact(self, ref: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/artifacts/{_seg(ref)}"))

    def artifacts(self, owner: str | None = None) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/artifacts", params={"owner": owner}))

    def graph(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/graph"))

    # -- runs -------------------------------------------------------------------------------------
    def invoke(self, artifact: str, principal: str | None = None, value: Any = None) -> dict[str, Any]:
        body = {"artifact": artifact, "input": value, "principal": principal}
        return dict(self.request("POST", "/v1/invoke", body))

    def run(self, ref: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/runs/{_seg(ref)}"))

    def runs(self, limit: int = 50, principal: str | None = None) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/runs", params={"limit": limit, "principal": principal}))

    # -- audit ---------------------------------------------------------------------------------------
    def events(self, run_id: str | None = None, principal: str | None = None, limit: int = 1000) -> list[Any]:
        return list(self.request("GET", "/v1/audit/events", params={"run": run_id, "principal": principal,
                                                                      "limit": limit}))  # fmt: skip

    def audit_scan(self, rescore: bool = False) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/audit/scan", params={"rescore": rescore}))

    def audit_flows(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/audit/flows"))

    def audit_alerts(self, kind: str | None = None, principal: str | None = None,
                     everything: bool = False) -> list[dict[str, Any]]:  # fmt: skip
        params = {"kind": kind, "principal": principal, "everything": everything}
        return list(self.request("GET", "/v1/audit/alerts", params=params))

    # -- escrows (the judiciary) --------------------------------------------------------------------
    def escrows(self, state: str | None = None) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/escrows", params={"state": state}))

    def escrow(self, ref: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/escrows/{_seg(ref)}"))

    def open_escrow(self, amount: int, tests: str, deadline: str | None = None, dispute_window: str = "0s",
                    buyer: str | None = None) -> dict[str, Any]:  # fmt: skip
        body = {"amount": amount, "tests": tests, "deadline": deadline, "dispute_window": dispute_window,
                "principal": buyer}  # fmt: skip
        return dict(self.request("POST", "/v1/escrows", body))

    def deliver(self, ref: str, artifact: str, worker: str | None = None) -> dict[str, Any]:
        return dict(
            self.request("POST", f"/v1/escrows/{_seg(ref)}/deliver", {"artifact": artifact, "principal": worker})
        )

    def judge(self, ref: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/v1/escrows/{_seg(ref)}/judge"))

    def dispute(self, ref: str, reason: str, principal: str | None = None) -> dict[str, Any]:
        return dict(
            self.request("POST", f"/v1/escrows/{_seg(ref)}/dispute", {"reason": reason, "principal": principal})
        )

    # -- operators ---------------------------------------------------------------------------------
    def create_token(self, principal: str | None = None, admin: bool = False, label: str = "") -> dict[str, Any]:
        return dict(self.request("POST", "/v1/tokens", {"principal": principal, "admin": admin, "label": label}))

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/v1/tokens/{_seg(token_id)}"))

    def tokens(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/v1/tokens"))

    def pool_status(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/pool"))


def pack(folder: Path) -> bytes:
    """A package folder as a gzipped tar: regular files and folders only, names relative to it."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; give the package's folder.")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if any(part in IGNORED_DIRS for part in parts) or path.name.endswith((".pyc", ".pyo")):
                continue
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise ValueError(f"{path} is not a plain file or folder; a package holds files only.")
            tar.add(path, arcname="/".join(parts), recursive=False)
    return buf.getvalue()


IGNORED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".pytest_cache", ".mypy_cache", ".ruff_cache"}  # as the kernel


def _param(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")
