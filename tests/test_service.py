"""The HTTP API without an engine: tokens, rights, limits, errors (a fake sandbox runs nothing)."""

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel.api import Kernel
from kernel.client import pack
from kernel.sandbox.fake import FakeSandbox, returns
from kernel.service import tokens
from kernel.service.app import create_app
from kernel.settings import Settings
from tests.conftest import PackageFactory


@dataclass
class Api:
    kernel: Kernel
    http: TestClient
    alice: str
    bob: str
    admin: str
    art: str

    def call(self, method: str, path: str, token: str | None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, path, headers=headers, **kw)


def make_api(settings: Settings, make_pkg: PackageFactory) -> tuple[Kernel, TestClient, dict[str, str], str]:
    k = Kernel(settings, sandbox=FakeSandbox(returns({"echo": 1})), image="fake:1")
    k.create_principal("alice", grant=100)
    k.create_principal("bob", grant=100)
    made = {
        "alice": tokens.create(k.db, "alice")["token"],
        "bob": tokens.create(k.db, "bob")["token"],
        "admin": tokens.create(k.db, None, admin=True)["token"],
    }
    art = k.submit(make_pkg("def main(v):\n    return v\n", price=2), owner="alice").artifact.id
    return k, TestClient(create_app(k), raise_server_exceptions=False), made, art


@pytest.fixture
def api(tmp_path: Any, make_pkg: PackageFactory) -> Iterator[Api]:
    settings = Settings(home=tmp_path / "home", audit_common_corpus=[], api_burst=1000, api_rate_per_minute=60000)
    k, http, made, art = make_api(settings, make_pkg)
    yield Api(k, http, made["alice"], made["bob"], made["admin"], art)
    assert k.ledger_check().ok
    k.close()


def error(response: Any) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    return response.status_code, body["error"]["code"]


# (method, path, json body, what alice's own token gets, what bob's token gets): the rights per endpoint;
# ANY: refused for another reason than rights (the fake sandbox cannot collect a suite, say)
ANY = 0
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, int, int]] = [
    ("GET", "/v1/whoami", None, 200, 200),
    ("GET", "/v1/principals", None, 200, 200),
    ("POST", "/v1/principals", {"name": "carol", "grant": 1}, 403, 403),
    ("GET", "/v1/principals/alice/balance", None, 200, 403),
    ("POST", "/v1/transfers", {"to": "bob", "amount": 1, "principal": "alice"}, 200, 403),
    ("GET", "/v1/ledger/check", None, 200, 200),
    ("GET", "/v1/artifacts", None, 200, 200),
    ("GET", "/v1/artifacts/{art}", None, 200, 200),
    ("GET", "/v1/graph", None, 200, 200),
    ("POST", "/v1/invoke", {"artifact": "{art}", "input": 3, "principal": "alice"}, 200, 403),
    ("GET", "/v1/runs?principal=alice", None, 200, 403),
    ("GET", "/v1/audit/events?principal=alice", None, 200, 403),
    ("POST", "/v1/audit/scan", None, 403, 403),
    ("GET", "/v1/audit/flows", None, 403, 403),
    ("GET", "/v1/audit/alerts", None, 403, 403),
    ("GET", "/v1/escrows", None, 200, 200),
    ("POST", "/v1/escrows", {"amount": 5, "tests": "{art}", "principal": "alice"}, ANY, 403),
    ("POST", "/v1/escrows/00000000/deliver", {"artifact": "{art}", "principal": "alice"}, ANY, 403),
    ("POST", "/v1/escrows/00000000/dispute", {"reason": "late", "principal": "alice"}, ANY, 403),
    ("GET", "/v1/runs/00000000", None, ANY, ANY),
    ("GET", "/v1/tokens", None, 403, 403),
    ("POST", "/v1/tokens", {"principal": "bob"}, 403, 403),
    ("GET", "/v1/pool", None, 403, 403),
    ("GET", "/v1/world", None, 200, 200),
    ("GET", "/v1/world/steps", None, ANY, ANY),
    ("POST", "/v1/world/run", {"ticks": 1}, 403, 403),
    ("GET", "/v1/agents", None, 200, 200),
    ("GET", "/v1/agents/nobody", None, ANY, ANY),
    ("POST", "/v1/agents/nobody/command", {"principal": "alice", "input": 1}, ANY, 403),
    ("POST", "/v1/agents/alice/buy-config", {"principal": "alice"}, ANY, 403),
    ("GET", "/v1/telemetry", None, 403, 403),
    ("GET", "/v1/telemetry/series?since=3", None, 403, 403),
    ("GET", "/v1/telemetry/graph", None, 403, 403),
    ("GET", "/v1/telemetry/lindy?window=5", None, 403, 403),
    ("GET", "/v1/telemetry/firms", None, 403, 403),
    ("GET", "/v1/telemetry/specialization", None, 403, 403),
    ("GET", "/v1/telemetry/top?limit=3", None, 403, 403),
    ("GET", "/v1/telemetry/recent", None, 403, 403),
    ("GET", "/v1/telemetry/dashboard", None, 403, 403),
]


@pytest.mark.parametrize("method, path, body, as_alice, as_bob", ENDPOINTS)
def test_every_endpoint_with_each_kind_of_token(
    api: Api, method: str, path: str, body: dict[str, Any] | None, as_alice: int, as_bob: int
) -> None:
    path = path.replace("{art}", api.art)
    if body:
        body = {k: (v.replace("{art}", api.art) if isinstance(v, str) else v) for k, v in body.items()}
    assert error(api.call(method, path, None, json=body)) == (401, "unauthorized")
    assert error(api.call(method, path, "kt_nothere_x", json=body)) == (401, "unauthorized")
    for token, expected in ((api.alice, as_alice), (api.bob, as_bob)):
        response = api.call(method, path, token, json=body)
        if expected == 403:
            assert error(response) == (403, "forbidden")
        elif expected == ANY:
            assert response.status_code not in (401, 403, 500), response.text
        else:
            assert response.status_code in (200, 201), response.text
    response = api.call(method, path, api.admin, json=body)
    if ANY in (as_alice, as_bob):
        assert response.status_code not in (401, 403, 500), response.text
    else:
        assert response.status_code in (200, 201), response.text


def test_a_token_acts_as_its_principal(api: Api) -> None:
    run = api.call("POST", "/v1/invoke", api.bob, json={"artifact": api.art, "input": 5}).json()
    assert run["principal"] == "bob" and run["status"] == "ok" and run["cost"] == 2
    assert api.kernel.balance("bob") == 98 and api.kernel.balance("alice") == 102
    mine = api.call("GET", "/v1/runs", api.bob).json()
    assert [r["id"] for r in mine] == [run["id"]]
    assert error(api.call("GET", f"/v1/runs/{run['id']}", api.alice)) == (403, "forbidden")
    assert api.call("GET", f"/v1/runs/{run['id']}", api.admin).json()["principal"] == "bob"
    # an admin acts for whoever it names, and must name one
    assert error(api.call("POST", "/v1/invoke", api.admin, json={"artifact": api.art})) == (400, "invalid_input")


def test_a_revoked_token_is_refused(api: Api) -> None:
    made = api.call("POST", "/v1/tokens", api.admin, json={"principal": "bob", "label": "ci"}).json()
    assert api.call("GET", "/v1/whoami", made["token"]).json()["principal"] == "bob"
    stored = api.kernel.db.one("SELECT secret_sha256 FROM api_tokens WHERE id = ?", (made["id"],))
    assert stored is not None and made["token"] not in str(stored)  # only the digest is kept
    assert api.call("DELETE", f"/v1/tokens/{made['id']}", api.admin).json()["revoked"]
    assert error(api.call("GET", "/v1/whoami", made["token"])) == (401, "unauthorized")
    assert error(api.call("DELETE", "/v1/tokens/000000000000", api.admin)) == (404, "not_found")


def test_upload_a_package(api: Api, make_pkg: PackageFactory) -> None:
    data = pack(make_pkg("def main(v):\n    return [v]\n", name="listy"))
    headers = {"Authorization": f"Bearer {api.bob}", "Content-Type": "application/gzip"}
    made = api.http.post("/v1/artifacts", content=data, headers=headers)
    assert made.status_code == 201, made.text
    art = made.json()["artifact"]
    assert art["owner"] == "bob" and art["name"] == "listy"
    again = api.http.post("/v1/artifacts", content=data, headers=headers)
    assert again.status_code == 200 and again.json()["created"] is False


def hostile_tar(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", link: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.size, info.linkname = kind, len(data) if kind == tarfile.REGTYPE else 0, link
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a tar at all",
        hostile_tar("../../etc/evil.py"),
        hostile_tar("/abs.py"),
        hostile_tar("link.py", tarfile.SYMTYPE, link="/etc/passwd"),
        hostile_tar("dev", tarfile.CHRTYPE),
        hostile_tar("pyproject.toml", data=b"[project]\nname = 1\n"),
    ],
)
def test_a_bad_upload_is_one_sentence_and_stores_nothing(api: Api, data: bytes) -> None:
    before = len(api.kernel.artifacts())
    response = api.http.post("/v1/artifacts", content=data, headers={"Authorization": f"Bearer {api.bob}"})
    status, code = error(response)
    assert status == 400 and code in ("invalid_package", "invalid_input"), response.text
    assert len(api.kernel.artifacts()) == before
    assert not list(api.kernel.settings.cache_dir.glob("upload-*"))


def test_bodies_over_the_limit_are_refused(tmp_path: Any, make_pkg: PackageFactory) -> None:
    settings = Settings(home=tmp_path / "home", audit_common_corpus=[], api_max_body_bytes=2048, max_input_bytes=1024)
    k, http, made, art = make_api(settings, make_pkg)
    try:
        headers = {"Authorization": f"Bearer {made['alice']}"}
        big = {"artifact": art, "input": "x" * 100_000}  # JSON requests: about twice the largest input
        assert error(http.post("/v1/invoke", json=big, headers=headers)) == (413, "too_large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"artifact": "' + art.encode() + b'", "input": "'
            for _ in range(100):
                yield b"y" * 1000
            yield b'"}'

        response = http.post("/v1/invoke", content=chunks(), headers={**headers, "Content-Type": "application/json"})
        assert error(response) == (413, "too_large")
        upload = http.post("/v1/artifacts", content=b"z" * 5000, headers=headers)  # uploads: their own limit
        assert error(upload) == (413, "too_large")
        assert k.runs() == [] and len(k.artifacts()) == 1
        # no token: refused before the body is read, whatever its size
        assert error(http.post("/v1/invoke", content=b"[" * 3000)) == (401, "unauthorized")
    finally:
        k.close()


def test_one_token_cannot_take_every_thread(api: Api) -> None:
    from kernel.service.limits import Concurrency

    gate = Concurrency(2)
    gate.enter("t")
    gate.enter("t")
    with pytest.raises(Exception, match="2 requests in flight"):
        gate.enter("t")
    gate.enter("other")  # another token is not held up
    gate.leave("t")
    gate.enter("t")


def test_failed_tokens_are_rate_limited_per_client(tmp_path: Any, make_pkg: PackageFactory) -> None:
    settings = Settings(home=tmp_path / "home", audit_common_corpus=[], api_burst=3, api_rate_per_minute=1)
    k, http, made, _ = make_api(settings, make_pkg)
    try:
        codes = [http.get("/v1/whoami", headers={"Authorization": f"Bearer kt_{i:012x}_guess"}).status_code
                 for i in range(5)]  # fmt: skip
        assert codes == [401, 401, 401, 429, 429]
    finally:
        k.close()


def test_each_token_is_rate_limited(tmp_path: Any, make_pkg: PackageFactory) -> None:
    settings = Settings(home=tmp_path / "home", audit_common_corpus=[], api_burst=3, api_rate_per_minute=1)
    k, http, made, _ = make_api(settings, make_pkg)
    try:
        alice = {"Authorization": f"Bearer {made['alice']}"}
        codes = [http.get("/v1/whoami", headers=alice).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        limited = http.get("/v1/whoami", headers=alice)
        assert error(limited) == (429, "rate_limited") and int(limited.headers["retry-after"]) >= 1
        bob = {"Authorization": f"Bearer {made['bob']}"}
        assert http.get("/v1/whoami", headers=bob).status_code == 200  # another token's bucket
    finally:
        k.close()


@pytest.mark.parametrize(
    "method, path, body, status, code",
    [
        ("GET", "/v1/nowhere", None, 404, "not_found"),
        ("PUT", "/v1/invoke", None, 405, "method_not_allowed"),
        ("POST", "/v1/invoke", {"artifact": "ffffffff"}, 404, "not_found"),
        ("POST", "/v1/invoke", {"artifact": "zz"}, 400, "invalid_input"),
        ("POST", "/v1/invoke", {"artifact": "x", "extra": 1}, 422, "invalid_request"),
        ("POST", "/v1/invoke", {"artifact": ""}, 422, "invalid_request"),
        ("POST", "/v1/transfers", {"to": "bob", "amount": 10**6}, 409, "insufficient_funds"),
        ("POST", "/v1/transfers", {"to": "nobody", "amount": 1}, 404, "not_found"),
        ("POST", "/v1/transfers", {"to": "bob", "amount": -1}, 422, "invalid_request"),
        ("GET", "/v1/runs?limit=0", None, 422, "invalid_request"),
        ("GET", "/v1/escrows/ffffffff", None, 404, "not_found"),
        ("POST", "/v1/escrows", {"amount": 1, "tests": "{art}"}, 400, "invalid_input"),
    ],
)
def test_errors_are_json_with_a_stable_code(
    api: Api, method: str, path: str, body: dict[str, Any] | None, status: int, code: str
) -> None:
    if body:
        body = {k: (v.replace("{art}", api.art) if isinstance(v, str) else v) for k, v in body.items()}
    assert error(api.call(method, path, api.alice, json=body)) == (status, code)


def test_the_openapi_schema_is_served(api: Api) -> None:
    schema = api.http.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/v1/invoke", "/v1/artifacts", "/v1/escrows", "/v1/audit/events", "/v1/ledger/check"} <= paths
    assert "/v1/cli" not in paths  # the local bridge is not part of the public API
    assert api.http.get("/docs").status_code == 200


def test_the_thin_cli_reads_commands_as_click_does() -> None:
    from kernel.thin import local_only, reads_stdin

    assert local_only(["serve"]) and local_only(["--home", "/h", "audit", "export"])
    assert local_only(["audit", "--", "export"])  # `--` does not hide a local-only command
    assert not local_only(["audit", "events"]) and not local_only(["invoke", "export"])
    assert reads_stdin(["invoke", "x", "--input-file", "-"]) and reads_stdin(["invoke", "x", "--input-file=-"])
    assert not reads_stdin(["invoke", "x", "--input", "1"])


def test_the_bridge_refuses_what_it_cannot_run() -> None:
    from kernel.service.bridge import CliCall, run_cli
    from kernel.service.errors import ApiError

    for call in (CliCall(argv=["audit", "--", "export"], cwd="/"), CliCall(argv=["balance", "a"], cwd="/", stdin="a")):
        with pytest.raises(ApiError) as refused:
            run_cli(None, call)  # type: ignore[arg-type]  # refused before the kernel is used
        assert refused.value.status == 422


def test_rate_limits_forget_full_buckets() -> None:
    import time

    from kernel.service.limits import RateLimiter

    limiter = RateLimiter(per_minute=60_000, burst=2, who="this address")
    limiter.MAX_KEYS = 5
    for i in range(50):  # spoofed addresses, one request each: the table stays small
        limiter.take(f"host:{i}")
        time.sleep(0.005)  # each bucket refills (1000 a second) and is forgotten
    assert len(limiter.buckets) <= 6
    limiter = RateLimiter(per_minute=1, burst=2, who="this address")
    limiter.take("host:x")
    limiter.take("host:x")
    with pytest.raises(Exception, match="this address made more than 2"):
        limiter.take("host:x")


def test_agents_over_the_api(api: Api) -> None:
    from kernel.world import agents

    agents.spawn(api.kernel.db, api.kernel.settings, api.art, "wren", owner="alice", grant=30)
    agents.set_price(api.kernel.db, api.kernel.settings, "wren", "alice", 20)
    assert error(api.call("POST", "/v1/agents/wren/command", api.bob, json={"input": 1})) == (403, "forbidden")
    step = api.call("POST", "/v1/agents/wren/command", api.alice, json={"input": {"go": 1}}).json()
    assert step["trigger"] == "command" and step["agent"] == "wren"
    assert api.call("GET", f"/v1/runs/{step['run_id']}", api.admin).json()["trigger"] == "command"
    wren = tokens.create(api.kernel.db, "wren")["token"]
    assert error(api.call("POST", "/v1/agents/wren/buy-config", api.alice, json={})) == (403, "forbidden")
    bought = api.call("POST", "/v1/agents/wren/buy-config", wren, json={}).json()
    assert bought["free"] and bought["config_owner"] == "wren" and api.kernel.balance("alice") == 100 - 10 - 30 + 20 + 2
    assert api.call("GET", "/v1/agents", api.bob).json() == []  # its memory and params are not bob's to read
    assert [a["name"] for a in api.call("GET", "/v1/agents", wren).json()] == ["wren"]
    assert error(api.call("GET", "/v1/agents/wren", api.bob)) == (403, "forbidden")
    assert error(api.call("GET", "/v1/world/steps?agent=wren", api.alice)) == (403, "forbidden")  # sold it
    assert api.call("GET", "/v1/world/steps?agent=wren", wren).json()[0]["trigger"] == "command"
    assert api.call("GET", "/v1/world", api.bob).json()["agents"] == 1
