"""The dashboard's page in a real browser, over stub endpoints that answer the telemetry contract.

A frontend unit test: the data is made up here (hostile names included), the page and its
scripts are the real ones served by ``kernel.web.install``. The stream emits a new tick when
the test says so, after the page has loaded, to see the page update without a reload.
"""

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from playwright.sync_api import Browser, Page

from kernel import web
from tests.browser import browser_fixture, open_page, serve

pytestmark = pytest.mark.browser

browser = browser_fixture()

TOKEN = "x"
HOSTILE = "<img src=x onerror=alert(1)>"
METRICS = ["velocity", "gini", "efficiency", HOSTILE]
CHARTS = ["chart-graph", "chart-lindy", "chart-survival", "chart-velocity", "chart-gini", "chart-efficiency"]
TABLES = ["table-candidates", "table-firms", "table-artifacts", "table-agents", "table-runs", "table-alerts"]
NEED_TOKEN = "This dashboard needs an operator's token: run kernel dashboard and open the URL it prints."


class World:
    """The stubs' state: a tick the test moves, and what the page asked for."""

    def __init__(self, combined: bool = True) -> None:
        self.combined = combined  # the daemon answers /v1/telemetry/dashboard (else: one request per panel)
        self.tick = 5
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.unauthorized: list[str] = []
        self.drop = threading.Event()  # set: the stream ends (as when the daemon restarts)
        self.streams = 0
        self.failures = 0  # the next requests for the dashboard answered 503

    def advance(self) -> int:
        with self.lock:
            self.tick += 1
            return self.tick

    def now(self) -> int:
        with self.lock:
            return self.tick

    def series(self, since: int | None) -> dict[str, Any]:
        ticks = [t for t in range(1, self.now() + 1) if since is None or t > since]
        metrics: dict[str, list[float | None]] = {
            "velocity": [t * 1.5 for t in ticks],
            "gini": [0.1 + t / 100 for t in ticks],
            "efficiency": [None if t < 3 else 0.5 for t in ticks],
            HOSTILE: [float(t) for t in ticks],
        }
        labels = {name: f"{name}: what it means, in one line" for name in metrics}
        labels[HOSTILE] = HOSTILE
        return {"ticks": ticks, "metrics": metrics, "labels": labels}

    def graph(self) -> dict[str, Any]:
        nodes = [
            {"id": "g1", "name": "add", "owner": "mint", "kind": "code", "genesis": True, "depth": 0, "uses": 9,
             "born_tick": 0},
            {"id": "a1", "name": HOSTILE, "owner": HOSTILE, "kind": "code", "genesis": False, "depth": 1,
             "uses": 3, "born_tick": 2},
            {"id": "a2", "name": "sum3", "owner": "bob", "kind": "code", "genesis": False, "depth": 2, "uses": 1,
             "born_tick": None},
        ]  # fmt: skip
        edges = [{"source": "a1", "target": "g1"}, {"source": "a2", "target": "a1"}]
        return {"nodes": nodes, "edges": edges, "depth": 2, "depth_non_genesis": 1}

    def ledger(self) -> dict[str, Any]:
        ok = self.now() <= 5  # the ledger "breaks" when the test advances: the badge must follow
        problems = [] if ok else [HOSTILE]
        return {"ok": ok, "supply": 1000, "principals_total": 1000, "holds_total": 0, "problems": problems,
                "notes": []}  # fmt: skip


LINDY = {
    "heatmap": {"age_edges": [0, 2, 4, 8], "reuse_edges": [0, 1, 5], "counts": [[3, 1, 0], [0, 2, 1]]},
    "survival": {"ticks": [0, 1, 2, 4], "survival": [1.0, 0.9, 0.8, 0.6], "low": [1.0, 0.7, 0.6, 0.4],
                 "high": [1.0, 1.0, 0.95, 0.8], "artifacts": 10, "deaths": 4},
    "candidates": [{"id": "a1" * 32, "name": HOSTILE, "owner": "alice", "age": 4, "invokers": 3, "uses": 7}],
    "window": 50,
}  # fmt: skip
FIRMS = {"modularity": 0.42, "firms": [{"id": 1, "members": ["alice", HOSTILE], "manager": HOSTILE,
                                        "output_share": 0.75}]}  # fmt: skip
TOP = {
    "artifacts": [{"id": "a1", "name": HOSTILE, "owner": "alice", "uses": 7, "invokers": 3, "earned": 40}],
    "agents": [{"name": HOSTILE, "balance": 120, "output": 3, "specialization": 0.5}],
}
RECENT = {
    "runs": [{"id": "r1", "artifact": "a1", "principal": HOSTILE, "trigger": "agent", "tick": 5, "status": "ok",
              "cost": 2}],
    "alerts": [{"id": 1, "kind": "unpaid_flow", "from": HOSTILE, "to": "bob", "score": 0.9, "summary": HOSTILE,
                "tick": 4}],
}  # fmt: skip


def stub_app(world: World) -> FastAPI:
    """``kernel.web`` plus stubs of the telemetry endpoints, behind a token check like the daemon's."""
    app = FastAPI()
    web.install(app)

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Any:
        path = request.url.path
        world.requests.append(str(request.url.path) + ("?" + request.url.query if request.url.query else ""))
        if path.startswith("/v1/") and request.headers.get("authorization") != f"Bearer {TOKEN}":
            world.unauthorized.append(path)
            return JSONResponse({"error": {"code": "unauthorized", "message": "no"}}, status_code=401)
        return await call_next(request)

    @app.get("/v1/telemetry/series")
    def series(since: int | None = None) -> dict[str, Any]:
        return world.series(since)

    @app.get("/v1/telemetry/graph")
    def graph() -> dict[str, Any]:
        return world.graph()

    @app.get("/v1/telemetry/lindy")
    def lindy() -> dict[str, Any]:
        return LINDY

    @app.get("/v1/telemetry/firms")
    def firms() -> dict[str, Any]:
        return FIRMS

    @app.get("/v1/telemetry/top")
    def top(limit: int = 10) -> dict[str, Any]:
        return TOP

    @app.get("/v1/telemetry/recent")
    def recent(limit: int = 20) -> dict[str, Any]:
        return RECENT

    @app.get("/v1/ledger/check")
    def ledger() -> dict[str, Any]:
        return world.ledger()

    if world.combined:

        @app.get("/v1/telemetry/dashboard")
        def dashboard(since: int | None = None) -> Any:
            if world.failures:
                world.failures -= 1
                return JSONResponse({"error": {"code": "database_busy", "message": "retry"}}, status_code=503)
            return {"tick": world.now(), "series": world.series(since), "graph": world.graph(), "lindy": LINDY,
                    "firms": FIRMS, "top": TOP, "recent": RECENT, "ledger": world.ledger()}  # fmt: skip

    @app.get("/v1/telemetry/stream")
    async def stream() -> StreamingResponse:
        world.streams += 1

        async def events() -> AsyncIterator[str]:
            sent = world.now()
            yield f"event: tick\ndata: {json.dumps({'tick': sent})}\n\n"
            while not world.drop.is_set():
                await asyncio.sleep(0.05)
                if world.now() != sent:
                    sent = world.now()
                    # split across writes, CRLF line ends: the page's parser must reassemble the frame
                    yield ": ping\r\n\r\nevent: tick\r\n"
                    yield f"data: {json.dumps({'tick': sent})}\r"
                    yield "\n\r\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    return World(combined=getattr(request, "param", True))


@pytest.fixture
def base(world: World) -> Iterator[str]:
    with serve(stub_app(world)) as url:
        yield url


def points(page: Page, chart: str) -> int:
    return int(page.get_attribute(f"#{chart}", "data-points") or 0)


def wait_drawn(page: Page) -> None:
    selectors = [f"#{c}:not([data-points='0'])" for c in CHARTS] + [f"#{t}:not([data-rows='0'])" for t in TABLES]
    for selector in selectors:
        page.wait_for_selector(selector, state="attached", timeout=10_000)
    page.wait_for_selector("#live[data-state='live']", timeout=10_000)


@pytest.mark.parametrize("world", [True, False], indirect=True, ids=["one-request", "per-panel"])
def test_every_view_draws_and_updates_live(browser: Browser, base: str, world: World) -> None:
    with open_page(browser) as (page, console):
        page.goto(f"{base}/#token={TOKEN}")
        wait_drawn(page)
        assert "token" not in page.url
        for chart in CHARTS:
            assert points(page, chart) > 0, chart
        assert points(page, "chart-velocity") == 5
        assert page.text_content("#tick") == "5"
        assert page.get_attribute("#ledger", "data-state") == "ok"
        assert page.get_attribute("#chart-graph", "data-edges") == "2"
        assert points(page, "chart-graph") == 3

        page.evaluate("() => { window.__marker = 'kept'; window.__chart = document.getElementById('chart-velocity'); }")
        new = world.advance()
        page.wait_for_function(f"() => document.getElementById('tick').textContent === '{new}'", timeout=10_000)
        page.wait_for_function("() => document.getElementById('chart-velocity').dataset.points === '6'")
        page.wait_for_selector("#ledger[data-state='problems']", timeout=10_000)
        assert page.evaluate("() => window.__marker") == "kept"
        assert page.evaluate("() => window.__chart === document.getElementById('chart-velocity')")
        assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
        assert page.evaluate("() => document.getElementById('chart-velocity').data[0].x.length") == 6
        if world.combined:  # one request a refresh
            assert "/v1/telemetry/dashboard?since=5" in world.requests
            assert not [r for r in world.requests if r.startswith(("/v1/telemetry/series", "/v1/telemetry/graph"))]
        else:  # the daemon has no /v1/telemetry/dashboard: one request per panel
            assert "/v1/telemetry/series?since=5" in world.requests
            assert world.requests.count("/v1/telemetry/dashboard") == 1
        assert page.text_content("#ledger") == "ledger: 1 problem"
        assert page.text_content("#ledger-problems li") == HOSTILE
        assert not world.unauthorized
        console.assert_clean(*([] if world.combined else ["404 (Not Found)"]))


def test_a_dropped_stream_reconnects_and_catches_up(browser: Browser, base: str, world: World) -> None:
    with open_page(browser) as (page, console):
        page.goto(f"{base}/#token={TOKEN}")
        wait_drawn(page)
        page.evaluate("() => { window.__marker = 'kept'; }")
        world.drop.set()
        page.wait_for_selector("#live[data-state='reconnecting']", timeout=10_000)
        world.advance()
        world.advance()
        world.drop.clear()
        page.wait_for_selector("#live[data-state='live']", timeout=10_000)
        page.wait_for_function("() => document.getElementById('tick').textContent === '7'", timeout=10_000)
        page.wait_for_function("() => document.getElementById('chart-velocity').dataset.points === '7'")
        assert world.streams >= 2
        assert page.evaluate("() => window.__marker") == "kept"
        console.assert_clean()


def test_a_failed_refresh_is_shown_and_retried(browser: Browser, base: str, world: World) -> None:
    world.failures = 1
    with open_page(browser) as (page, console):
        page.goto(f"{base}/#token={TOKEN}")
        page.wait_for_selector("#error", state="visible", timeout=10_000)
        assert "HTTP 503" in (page.text_content("#error") or "")
        wait_drawn(page)  # the next refresh (the stream's first tick, or the retry) draws everything
        page.wait_for_selector("#error", state="hidden")
        console.assert_clean("503 (Service Unavailable)")


def test_a_new_world_redraws_the_series(browser: Browser, base: str, world: World) -> None:
    with open_page(browser) as (page, console):
        page.goto(f"{base}/#token={TOKEN}")
        wait_drawn(page)
        with world.lock:
            world.tick = 2  # the tick went back: another world, whose series start again
        world.drop.set()  # the stream sends the tick on connect: make it reconnect
        page.wait_for_selector("#live[data-state='reconnecting']", timeout=10_000)
        world.drop.clear()
        page.wait_for_function("() => document.getElementById('tick').textContent === '2'", timeout=10_000)
        page.wait_for_function("() => document.getElementById('chart-velocity').dataset.points === '2'")
        assert page.evaluate("() => document.getElementById('chart-velocity').data[0].x") == [1, 2]
        assert len(page.query_selector_all("#series-grid figure")) == len(METRICS)
        console.assert_clean()


def test_hostile_names_render_as_text(browser: Browser, base: str) -> None:
    with open_page(browser) as (page, console):
        page.goto(f"{base}/#token={TOKEN}")
        wait_drawn(page)
        captions = page.eval_on_selector_all("#series-grid figcaption", "els => els.map(e => e.textContent)")
        assert captions == METRICS
        hostile_chart = page.get_attribute(f"figure:nth-child({len(METRICS)}) .chart", "id")
        assert hostile_chart is not None and hostile_chart.startswith("chart-") and "<" not in hostile_chart
        for table in ["table-candidates", "table-artifacts", "table-agents", "table-runs", "table-alerts"]:
            assert HOSTILE in (page.text_content(f"#{table} tbody") or ""), table
        assert HOSTILE in (page.text_content("#table-firms tbody") or "")
        # Plotly's hover label shows the name as text, not as markup
        page.evaluate("() => Plotly.Fx.hover('chart-graph', [{curveNumber: 2, pointNumber: 0}])")
        page.wait_for_selector("#chart-graph .hovertext", state="attached")
        assert HOSTILE in (page.text_content("#chart-graph .hovertext") or "")
        assert page.evaluate("() => document.querySelectorAll('img').length") == 0
        assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0
        console.assert_clean()


def test_without_a_token_the_page_says_how_to_get_one(browser: Browser, base: str, world: World) -> None:
    with open_page(browser) as (page, console):
        page.goto(f"{base}/")
        page.wait_for_selector("#message", state="visible")
        assert page.text_content("#message") == NEED_TOKEN
        assert page.is_hidden("#dashboard")
        assert not [r for r in world.requests if r.startswith("/v1/")]
        console.assert_clean()


def test_a_refused_token_shows_the_same_sentence(browser: Browser, base: str, world: World) -> None:
    with open_page(browser) as (page, _console):
        page.goto(f"{base}/#token=wrong")
        page.wait_for_selector("#message", state="visible")
        assert page.text_content("#message") == NEED_TOKEN
        assert page.evaluate("() => sessionStorage.length") == 0
        assert "wrong" not in page.url


def test_the_token_survives_a_reload_in_the_same_tab(browser: Browser, base: str) -> None:
    with open_page(browser) as (page, console):
        page.goto(f"{base}/#token={TOKEN}")
        wait_drawn(page)
        page.reload()
        wait_drawn(page)
        assert "token" not in page.url
        console.assert_clean()
