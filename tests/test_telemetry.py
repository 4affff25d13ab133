"""Telemetry of a scripted world whose history is known tick by tick: the snapshots, the views,
the CLI and the HTTP endpoints (trusted in-process backend, the kernel's real ledger and proxy)."""

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from kernel.cli import main
from kernel.db import now
from kernel.errors import KernelError
from kernel.service import tokens
from kernel.service.app import create_app
from kernel.telemetry import metrics, snapshot, views
from kernel.world import agents
from kernel.world.clock import World
from tests.conftest import PackageFactory
from tests.test_world import make_world, policy

# ann builds alone, then uses bob's lib and pays cal; cal builds on bob's lib, then on its own
# work; dan uses bob's lib twice. A step costs 1 scrip.
SCRIPT = """
import kernel_client as kc


def pkg(name, depends):
    deps = ", ".join('"%s"' % d for d in depends)
    return {"pyproject.toml": '[project]\\nname = "%s"\\nversion = "1"\\n[tool.kernel]\\nkind = "code"\\n'
            'entrypoint = "m:f"\\ndepends = [%s]\\n' % (name, deps), "m.py": "def f(v):\\n    return v\\n"}


def step(obs):
    me, t, lib, mem = obs["agent"], obs["tick"], obs["params"]["lib"], obs["memory"] or {}
    if me == "ann" and t == 0:
        mem["a"] = kc.submit(pkg("ann-a", []))
    if me == "ann" and t == 1:
        kc.invoke(lib, 1)
        kc.transfer("cal", 5)
    if me == "cal" and t == 1:
        mem["c1"] = kc.submit(pkg("cal-1", [lib]))
    if me == "cal" and t == 2:
        mem["c2"] = kc.submit(pkg("cal-2", [mem["c1"]]))
    if me == "dan" and t in (1, 2):
        kc.invoke(lib, 2)
    return {"reasoning": "scripted", "memory": mem}
"""


def scripted(home: Path, make_pkg: PackageFactory, ticks: int = 3, **settings: Any) -> tuple[World, dict[str, str]]:
    w = make_world(home, **{"telemetry_window": 2, "audit_every_ticks": 0, **settings})
    w.k.create_principal("alice", grant=500)
    w.k.create_principal("bob", grant=50)
    lib = w.k.submit(make_pkg("def main(v):\n    return v\n", price=2, name="lib"), "bob", public=True).artifact.id
    cfg = w.k.submit(make_pkg(files={"pol.py": SCRIPT}, name="script", entrypoint="pol:step"), "alice").artifact.id
    for name in ("ann", "cal", "dan"):
        agents.spawn(w.db, w.settings, cfg, name, grant=100, params={"lib": lib})
    w.start(1)
    w.run(ticks)
    return w, {"lib": lib, "config": cfg}


@pytest.fixture
def world(tmp_path: Path, make_pkg: PackageFactory) -> Iterator[tuple[World, dict[str, str]]]:
    w, ids = scripted(tmp_path / "home", make_pkg)
    yield w, ids
    assert w.k.ledger_check().ok
    w.k.close()


def per_tick(w: World) -> dict[int, dict[str, Any]]:
    data = views.series(w.db)
    return {t: {n: v[i] for n, v in data["metrics"].items()} for i, t in enumerate(data["ticks"])}


def test_each_tick_has_a_snapshot_with_the_known_answers(world: tuple[World, dict[str, str]]) -> None:
    w, ids = world
    ticks = per_tick(w)
    assert sorted(ticks) == [0, 1, 2]
    t0, t1, t2 = ticks[0], ticks[1], ticks[2]
    # artifacts: the config, bob's lib and ann's first at tick 0; cal-1 (on bob's lib) at 1; cal-2 (on cal-1) at 2
    assert (t0["new_artifacts"], t1["new_artifacts"], t2["new_artifacts"]) == (3, 1, 1)
    assert (t0["compound_share"], t1["compound_share"], t2["compound_share"]) == (0.0, 1.0, 0.0)
    assert (t0["depth"], t1["depth"], t2["depth"]) == (1, 2, 3)  # lib <- cal-1 <- cal-2
    assert t2["depth_non_genesis"] == 3 and t2["artifacts"] == 5
    # trade at tick 1: ann's transfer of 5, two prices of 2 for bob's lib (ann's and dan's)
    assert (t1["transfer_value"], t1["price_value"], t1["escrow_value"]) == (5, 4, 0)
    assert (t1["transfers"], t1["trade_value"]) == (3, 9)
    assert (t2["transfers"], t2["price_value"]) == (1, 2)  # dan again
    balances = [w.k.balance(a) for a in ("ann", "cal", "dan")]
    assert t2["agent_supply"] == sum(balances)
    assert t2["velocity"] == pytest.approx(2 / sum(balances))
    assert t2["gini"] == pytest.approx(metrics.gini(balances))
    # output: bob's lib is first used by another principal at tick 1 (invoked and built on: counted once)
    assert (t0["output"], t1["output"], t2["output"]) == (0, 1, 0)
    assert t1["scrip_burned"] == 3  # three steps (small artifacts are stored free: KERNEL_STORAGE_FREE_BYTES)
    assert t1["efficiency"] == pytest.approx(100 * 1 / 3)
    # control: every step was the agents' own loop
    assert (t1["autonomy"], t1["control_entropy"]) == (1.0, 0.0)
    assert t1["runs"] == 3 + 2  # three steps, two invocations of lib
    # specialization over the window of 2 ticks at tick 1: ann built, used and paid (1 - log 3 / log K),
    # cal built (1), dan used (1)
    k = len(metrics.CATEGORIES)
    assert t1["specialization"] == pytest.approx((1 - math.log(3) / math.log(k) + 1 + 1) / 3)
    assert t0["alerts_total"] == 0


def test_a_snapshot_is_taken_once_and_reads_only_what_is_new(world: tuple[World, dict[str, str]]) -> None:
    w, _ = world
    before = w.db.rows("SELECT tick, metrics, ledger_to, artifacts_to FROM telemetry_ticks ORDER BY tick")
    again = snapshot.take(w.db, 2, 2)
    assert again["metrics"] == json.loads(before[-1]["metrics"])  # stored, not recomputed
    assert w.db.rows("SELECT tick, metrics, ledger_to, artifacts_to FROM telemetry_ticks ORDER BY tick") == before
    cursors = [(r["ledger_to"], r["artifacts_to"]) for r in before]
    assert cursors == sorted(cursors) and cursors[0] < cursors[-1]
    assert before[-1]["ledger_to"] == w.db.one("SELECT MAX(id) AS n FROM ledger")["n"]  # type: ignore[index]
    uses = w.db.one("SELECT uses, invokers, last_use, productive_tick, earned FROM telemetry_artifacts"
                    " WHERE name = 'lib'")  # fmt: skip
    assert uses == {"uses": 3, "invokers": 2, "last_use": 2, "productive_tick": 1, "earned": 6}


def test_a_gap_in_the_snapshots_is_covered_by_the_next(tmp_path: Path, make_pkg: PackageFactory) -> None:
    w, _ = scripted(tmp_path / "home", make_pkg)
    whole = per_tick(w)
    w.db.conn.execute("DELETE FROM telemetry_ticks")
    for table in ("telemetry_artifacts", "telemetry_invocations", "telemetry_actions", "telemetry_ties",
                  "telemetry_output"):  # fmt: skip
        w.db.conn.execute(f"DELETE FROM {table}")
    w.db.conn.commit()
    snapshot.take(w.db, 2, 2)  # one snapshot for three ticks (telemetry added to a running world)
    late = per_tick(w)[2]
    assert late["new_artifacts"] == 5 and late["depth"] == 3 and late["output"] == 1
    assert late["price_value"] == sum(t["price_value"] for t in whole.values())
    w.k.close()


def test_the_same_seed_gives_the_same_telemetry(tmp_path: Path, make_pkg: PackageFactory) -> None:
    runs = []
    for i in range(2):
        w, _ = scripted(tmp_path / f"home{i}", make_pkg)
        runs.append(views.series(w.db))
        w.k.close()
    assert runs[0] == runs[1]


def test_views_of_the_scripted_world(world: tuple[World, dict[str, str]]) -> None:
    w, ids = world
    g = views.graph(w.db)
    names = {n["id"]: n["name"] for n in g["nodes"]}
    assert {(names[e["source"]], names[e["target"]]) for e in g["edges"]} == {("cal-1", "lib"), ("cal-2", "cal-1")}
    assert g["depth"] == 3 and not any(n["genesis"] for n in g["nodes"])
    lindy = views.lindy(w.db, window=2)
    # at tick 2, unused for 2 ticks: the config and ann-a died; lib, cal-1, cal-2 live (censored)
    assert lindy["survival"]["artifacts"] == 5 and lindy["survival"]["deaths"] == 2
    assert [c["name"] for c in lindy["candidates"]] == ["lib"]  # old, alive, used by ann and dan
    assert lindy["candidates"][0]["invokers"] == 2  # within the window (ticks 1-2): ann and dan
    assert sum(map(sum, lindy["heatmap"]["counts"])) == 5
    top = views.top(w.db, 2)
    assert top["artifacts"][0]["name"] == "lib" and top["artifacts"][0]["earned"] == 6
    assert [a["name"] for a in top["agents"]] == sorted(("ann", "cal", "dan"), key=lambda a: (-w.k.balance(a), a))[:2]
    recent = views.recent(w.db, 3)
    assert len(recent["runs"]) == 3 and recent["alerts"] == []
    firms = views.firms(w.db)
    members = sorted(m for f in firms["firms"] for m in f["members"])
    assert members == ["ann", "bob", "cal", "dan"]  # tied by prices paid and a transfer
    assert sum(f["output_share"] for f in firms["firms"]) == pytest.approx(1.0)


def test_genesis_is_removed_from_the_non_genesis_depth(tmp_path: Path, make_pkg: PackageFactory) -> None:
    w = make_world(tmp_path / "home", telemetry_window=2, audit_every_ticks=0)
    w.k.create_principal("bob", grant=50)
    lib = w.k.submit(make_pkg("def main(v):\n    return v\n", name="lib"), "bob").artifact.id
    w.db.conn.execute("INSERT INTO genesis (artifact_id, tick, reason, at) VALUES (?, 0, 'test', 'now')", (lib,))
    w.db.conn.commit()
    depends = f'depends = ["{lib}"]'
    on = w.k.submit(make_pkg("def main(v):\n    return v\n", name="on", extra=depends), "bob").artifact.id
    snapshot.take(w.db, 0, 2)
    g = views.graph(w.db)
    assert g["depth"] == 2 and g["depth_non_genesis"] == 1
    assert [n["genesis"] for n in g["nodes"] if n["id"] in (lib, on)] == [True, False]
    w.k.close()


def cli(home: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--home", str(home), *args])


def test_cli_prints_exports_and_refuses_bad_input(world: tuple[World, dict[str, str]], tmp_path: Path) -> None:
    w, _ = world
    home = w.settings.home
    shown = cli(home, "telemetry")
    assert shown.exit_code == 0 and "velocity" in shown.output and "tick 2" in shown.output
    data = json.loads(cli(home, "telemetry", "--window", "3", "--json").output)
    assert data["tick"] == 2 and data["window"] == 3 and data["over_window"]["price_value"] == 6
    assert data["over_window"]["new_artifacts"] == 5
    rows = list(csv.DictReader(io.StringIO(cli(home, "telemetry", "export", "--format", "csv").output)))
    assert [r["tick"] for r in rows] == ["0", "1", "2"] and rows[1]["price_value"] == "4"
    assert rows[0]["velocity"] != "" and "gini" in rows[0]
    lines = cli(home, "telemetry", "export", "--format", "jsonl").output.splitlines()
    assert [json.loads(line)["depth"] for line in lines] == [1, 2, 3]
    assert cli(home, "telemetry", "export", "--output", "-").output.startswith("tick,")
    target = tmp_path / "out.csv"
    written = cli(home, "telemetry", "export", "--output", str(target))
    assert written.exit_code == 0 and target.read_text().startswith("tick,")
    assert json.loads(cli(home, "telemetry", "firms", "--json").output)["firms"]
    assert json.loads(cli(home, "telemetry", "lindy", "--window", "2", "--json").output)["candidates"]
    for bad, words in (
        (["telemetry", "--window", "0"], "--window must be a whole number of ticks"),
        (["telemetry", "export", "--format", "xml"], "'xml' is not one of"),
        (["telemetry", "export", "--output", str(tmp_path)], "is a directory"),
        (["telemetry", "lindy", "--window", "x"], "'x' is not a valid integer"),
    ):
        r = cli(home, *bad)
        assert r.exit_code != 0 and words in r.output and "Traceback" not in r.output, r.output
    for command in (["telemetry"], ["telemetry", "export"], ["dashboard"], ["browse"]):
        helped = cli(home, *command, "--help")
        assert helped.exit_code == 0 and "Example:" in helped.output


def test_an_empty_home_has_no_telemetry_yet(tmp_path: Path) -> None:
    r = cli(tmp_path / "home", "telemetry")
    assert r.exit_code == 0 and "no telemetry yet" in r.output
    assert json.loads(cli(tmp_path / "home", "telemetry", "--json").output)["tick"] is None
    assert cli(tmp_path / "home", "telemetry", "export", "--format", "jsonl").output == ""


def test_dashboard_prints_an_address_with_a_read_only_token(world: tuple[World, dict[str, str]]) -> None:
    w, _ = world
    first = json.loads(cli(w.settings.home, "dashboard", "--json").output)
    made = json.loads(cli(w.settings.home, "dashboard", "--json").output)
    assert made["url"].startswith(f"http://{w.settings.listen}/#token=kt_") and made["serving"] is False
    assert made["revoked"] == [first["token_id"]]  # one live address per label
    assert tokens.verify(w.db, first["url"].split("#token=", 1)[1]) is None
    who = tokens.verify(w.db, made["url"].split("#token=", 1)[1])
    assert who is not None and who.admin and who.scope == "telemetry"
    client = TestClient(create_app(w.k), raise_server_exceptions=False)
    auth = {"Authorization": "Bearer " + made["url"].split("#token=", 1)[1]}
    assert client.get("/v1/telemetry/dashboard", headers=auth).status_code == 200
    assert client.get("/v1/ledger/check", headers=auth).status_code == 200
    for method, path, body in (("POST", "/v1/transfers", {"to": "bob", "amount": 1, "principal": "alice"}),
                               ("POST", "/v1/tokens", {"admin": True}), ("GET", "/v1/principals", None),
                               ("GET", "/v1/audit/alerts", None), ("POST", "/v1/world/run", {"ticks": 1})):  # fmt: skip
        refused = client.request(method, path, headers=auth, json=body)
        assert refused.status_code == 403 and "only reads the dashboard" in refused.text, (path, refused.text)
    assert w.k.balance("alice") == 500
    with pytest.raises(KernelError, match="scope"):
        tokens.create(w.db, "alice", scope="telemetry")


def test_paying_oneself_is_not_trade(tmp_path: Path, make_pkg: PackageFactory) -> None:
    body = """\
if obs["tick"] == 0:
    mine = kc.submit({"pyproject.toml": '[project]\\nname = "mine"\\nversion = "1"\\n[tool.kernel]\\nkind = "code"\\n'
                      'entrypoint = "m:f"\\nprice = 7\\n', "m.py": "def f(v):\\n    return v\\n"})
    return {"reasoning": "built", "memory": {"mine": mine}}
kc.invoke(obs["memory"]["mine"], 1)
return {"reasoning": "used my own", "memory": obs["memory"]}"""
    w = make_world(tmp_path / "home", audit_every_ticks=0)
    w.k.create_principal("alice", grant=50)
    cfg = w.k.submit(policy(make_pkg, body), "alice").artifact.id
    agents.spawn(w.db, w.settings, cfg, "ann", grant=100)
    w.run(2)
    t1 = per_tick(w)[1]
    assert w.db.one("SELECT COUNT(*) AS n FROM ledger WHERE kind = 'price'") == {"n": 1}  # paid to itself
    assert (t1["transfers"], t1["trade_value"], t1["price_value"], t1["velocity"]) == (0, 0, 0, 0.0)
    assert t1["output"] == 0  # used by its owner only: not productive
    w.k.close()


def test_a_persons_runs_between_ticks_count_at_the_next_snapshot(
    world: tuple[World, dict[str, str]],
) -> None:
    w, ids = world
    for _ in range(3):
        assert w.k.invoke(ids["lib"], "alice", 1).status == "ok"
    w.run(1)
    t3 = per_tick(w)[3]
    assert t3["price_value"] == 6 and t3["runs"] == 3 + 3  # three steps, alice's three runs
    lib = w.db.one("SELECT uses, invokers, last_use FROM telemetry_artifacts WHERE artifact_id = ?", (ids["lib"],))
    assert lib == {"uses": 6, "invokers": 3, "last_use": 3}


def test_a_tick_whose_snapshot_failed_gets_it_on_the_next_run(
    tmp_path: Path, make_pkg: PackageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernel.world import clock

    w, _ = scripted(tmp_path / "home", make_pkg, ticks=1)
    real = snapshot.take

    def fails(db: Any, tick: int, window: int = 10) -> Any:
        if tick == 1:
            raise RuntimeError("disk full")
        return real(db, tick, window)

    monkeypatch.setattr(clock.snapshot, "take", fails)
    with pytest.raises(RuntimeError):
        w.run(1)  # tick 1 is done; its snapshot is not
    monkeypatch.setattr(clock.snapshot, "take", real)
    w.run(1)
    ticks = per_tick(w)
    assert sorted(ticks) == [0, 1, 2]
    assert (ticks[1]["transfer_value"], ticks[1]["price_value"], ticks[2]["price_value"]) == (5, 4, 2)
    w.k.close()


@pytest.fixture
def http(world: tuple[World, dict[str, str]]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    w, _ = world
    app = create_app(w.k)
    app.state.stream_seconds = 1.5
    admin = tokens.create(w.db, None, admin=True)["token"]
    alice = tokens.create(w.db, "alice")["token"]
    yield TestClient(app, raise_server_exceptions=False), {"admin": admin, "alice": alice}


def test_each_view_has_a_json_endpoint(http: tuple[TestClient, dict[str, str]]) -> None:
    client, tok = http
    auth = {"Authorization": f"Bearer {tok['admin']}"}
    series = client.get("/v1/telemetry/series?since=0", headers=auth).json()
    assert series["ticks"] == [1, 2] and set(series["labels"]) >= {"velocity", "gini", "control_entropy"}
    board = client.get("/v1/telemetry/dashboard", headers=auth).json()
    assert board["tick"] == 2 and board["ledger"]["ok"] and board["graph"]["depth"] == 3
    assert set(board) == {"tick", "series", "graph", "lindy", "firms", "specialization", "top", "recent", "ledger"}
    assert client.get("/v1/telemetry?window=2", headers=auth).json()["window"] == 2
    assert client.get("/v1/telemetry/top?limit=0", headers=auth).status_code == 422
    refused = client.get("/v1/telemetry/graph", headers={"Authorization": f"Bearer {tok['alice']}"})
    assert refused.status_code == 403


def test_the_stream_announces_ticks(http: tuple[TestClient, dict[str, str]]) -> None:
    client, tok = http
    auth = {"Authorization": f"Bearer {tok['admin']}"}
    with client.stream("GET", "/v1/telemetry/stream", headers=auth) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())  # the stream ends after app.state.stream_seconds
    assert body.startswith('event: tick\ndata: {"tick": 2}\n\n')
    refused = client.get("/v1/telemetry/stream", headers={"Authorization": f"Bearer {tok['alice']}"})
    assert refused.status_code == 403


def test_browse_serves_the_database_read_only_in_datasette(world: tuple[World, dict[str, str]]) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.parse
    import urllib.request

    w, _ = world
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KERNEL_NO_DAEMON": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernel.cli", "--home", str(w.settings.home), "browse", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/kernel"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/telemetry_ticks.json?_shape=array", timeout=5) as r:
                    rows = json.loads(r.read())
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, "Datasette did not start"
                time.sleep(0.3)
        assert [r["tick"] for r in rows] == [0, 1, 2]
        query = urllib.parse.urlencode({"sql": "SELECT COUNT(*) AS n FROM agents", "_shape": "array"})
        with urllib.request.urlopen(f"{base}.json?{query}", timeout=5) as r:
            assert json.loads(r.read()) == [{"n": 3}]
        for sql in ("DELETE FROM agents", "UPDATE accounts SET balance = 0"):
            query = urllib.parse.urlencode({"sql": sql, "_shape": "array"})
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(f"{base}.json?{query}", timeout=5)
        assert w.db.one("SELECT COUNT(*) AS n FROM agents") == {"n": 3} and w.k.ledger_check().ok
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


def test_browse_refuses_a_home_without_a_database(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = cli(tmp_path / "empty", "browse")
    assert r.exit_code == 1 and "there is no kernel database" in r.output


def test_alerts_are_counted_per_tick_and_the_world_scans_on_its_schedule(
    tmp_path: Path, make_pkg: PackageFactory
) -> None:
    w, _ = scripted(tmp_path / "home", make_pkg, ticks=2, audit_every_ticks=1)
    assert w.db.one("SELECT COUNT(*) AS n FROM audit_scans") == {"n": 2}  # one scan at the end of each tick
    # an alert the auditor raised (written as its scan writes one), seen by the next tick's snapshot
    w.db.conn.execute(
        "INSERT INTO audit_alerts (id, kind, alert, from_principal, to_principal, bytes, score, paid, value, summary,"
        " story, evidence, thresholds, first_scan, last_scan, created_at, updated_at) VALUES ('al1', 'unpaid_flow',"
        " 1, 'ann', 'cal', 900, 0.9, 0, 0, 'ann -> cal, unpaid', '', '[]', '{}', 2, 2, ?, ?)",
        (now(), now()),
    )
    w.db.conn.commit()
    w.run(1)
    ticks = per_tick(w)
    assert (ticks[1]["alerts_new"], ticks[2]["alerts_new"], ticks[2]["alerts_total"]) == (0, 1, 1)
    w.run(1)
    assert (per_tick(w)[3]["alerts_new"], per_tick(w)[3]["alerts_total"]) == (0, 1)
    alert = views.recent(w.db)["alerts"][0]
    assert (alert["from"], alert["to"], alert["kind"], alert["tick"]) == ("ann", "cal", "unpaid_flow", 2)
    # one alert resolved and another raised in the same tick: one new, one standing
    w.db.conn.execute("UPDATE audit_alerts SET alert = 0 WHERE id = 'al1'")
    w.db.conn.execute(
        "INSERT INTO audit_alerts (id, kind, alert, from_principal, to_principal, bytes, score, paid, value, summary,"
        " story, evidence, thresholds, first_scan, last_scan, created_at, updated_at) VALUES ('al2', 'relay',"
        " 1, 'dan', 'ann', 900, 0.9, 0, 0, 'dan -> ann', '', '[]', '{}', 3, 3, ?, ?)",
        (now(), now()),
    )
    w.db.conn.commit()
    w.run(1)
    assert (per_tick(w)[4]["alerts_new"], per_tick(w)[4]["alerts_total"]) == (1, 1)
    w.k.close()


def test_streams_are_capped_per_token_and_do_not_hold_its_request_slots(
    world: tuple[World, dict[str, str]],
) -> None:
    import http.client
    import urllib.parse

    from kernel.service.telemetry import STREAMS_PER_TOKEN
    from tests.browser import serve

    w, _ = world
    app = create_app(w.k)
    app.state.stream_seconds = 60
    admin = tokens.create(w.db, None, admin=True)["token"]
    auth = {"Authorization": f"Bearer {admin}"}

    def open_stream(base: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        where = urllib.parse.urlsplit(base)
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        conn.request("GET", "/v1/telemetry/stream", headers=auth)
        return conn, conn.getresponse()

    with serve(app) as base:
        held = [open_stream(base) for _ in range(STREAMS_PER_TOKEN)]
        for _, response in held:
            assert response.status == 200 and response.readline() == b"event: tick\n"
        conn, refused = open_stream(base)
        assert refused.status == 429 and b"streams open already" in refused.read()
        conn.close()
        for _ in range(10):  # the open streams leave the token's requests in flight free
            plain = http.client.HTTPConnection(urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port)
            plain.request("GET", "/v1/telemetry", headers=auth)
            assert plain.getresponse().status == 200
            plain.close()
        for conn, _ in held:
            conn.close()
        for _ in range(50):  # a closed stream is noticed within a poll or two
            conn, again = open_stream(base)
            if again.status == 200:
                break
            conn.close()
            __import__("time").sleep(0.2)
        assert again.status == 200
        conn.close()


def test_a_snapshot_reads_runs_by_tick_never_all_of_an_agents_history(world: tuple[World, dict[str, str]]) -> None:
    w, _ = world
    for sql, params in ((snapshot.ACTIONS, (1, 2)),
                        ("SELECT r.rowid FROM runs r WHERE r.tick > ? AND r.tick <= ?", (1, 2)),
                        ("SELECT r.rowid FROM runs r WHERE r.rowid > ? AND r.tick IS NULL", (1,))):  # fmt: skip
        plan = " / ".join(r["detail"] for r in w.db.rows(f"EXPLAIN QUERY PLAN {sql}", params))
        runs = next(step for step in plan.split(" / ") if step.startswith(("SEARCH r ", "SCAN r")))
        assert "runs_tick" in runs or "INTEGER PRIMARY KEY" in runs, plan
