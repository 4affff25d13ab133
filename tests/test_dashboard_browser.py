"""The dashboard against a real world: the daemon's own app (real telemetry endpoints, token gate,
page and vendored Plotly) over a scripted world on the trusted backend, in Debian's chromium.
The world advances while the page is open; the page must follow without a reload."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from kernel.service import tokens
from kernel.service.app import create_app
from kernel.world.clock import World
from tests.browser import browser_fixture, open_page, serve
from tests.conftest import PackageFactory
from tests.test_telemetry import scripted

pytestmark = pytest.mark.browser

browser = browser_fixture()
PANELS = ["chart-graph", "chart-lindy", "chart-survival"]
TABLES = ["table-firms", "table-artifacts", "table-agents", "table-runs"]


@pytest.fixture
def world(tmp_path: Path, make_pkg: PackageFactory) -> Iterator[World]:
    w, _ = scripted(tmp_path / "home", make_pkg, ticks=3)
    yield w
    assert w.k.ledger_check().ok
    w.k.close()


def points(page: Page, element_id: str) -> int:
    return int(page.get_attribute(f"#{element_id}", "data-points") or 0)


def test_the_dashboard_draws_a_real_world_and_follows_it_live(browser: Browser, world: World) -> None:
    admin = tokens.create(world.db, None, admin=True)["token"]
    app = create_app(world.k)
    app.state.stream_seconds = 30
    with serve(app) as base, open_page(browser) as (page, console):
        page.goto(f"{base}/#token={admin}")
        page.wait_for_function("() => document.querySelector('#tick')?.dataset.tick === '2'", timeout=30_000)
        page.wait_for_selector("#live[data-state='live']", timeout=30_000)
        assert "#token" not in page.url  # the secret left the address bar
        page.evaluate("window.__stillHere = true")
        # every metric of the series has a chart, each drew the three ticks
        page.wait_for_function("() => document.querySelectorAll('[data-metric]').length >= 20", timeout=30_000)
        metric_charts = page.eval_on_selector_all("[data-metric]", "els => els.map(e => [e.dataset.metric, e.id])")
        names = {m for m, _ in metric_charts}
        assert {"velocity", "gini", "top10_share", "efficiency", "depth", "compound_share", "control_entropy",
                "specialization", "alerts_new"} <= names  # fmt: skip
        for _, element_id in metric_charts:
            assert points(page, element_id) == 3, element_id
        for element_id in PANELS:
            page.wait_for_function(f"() => Number(document.getElementById('{element_id}').dataset.points) > 0")
        assert int(page.get_attribute("#chart-graph", "data-edges") or 0) == 2  # cal-1 -> lib, cal-2 -> cal-1
        for table in TABLES:
            assert int(page.get_attribute(f"#{table}", "data-rows") or 0) > 0, table
        assert page.get_attribute("#ledger", "data-state") == "ok"

        world.run(2)  # ticks 3 and 4, while the page is open
        page.wait_for_function("() => document.querySelector('#tick')?.dataset.tick === '4'", timeout=30_000)
        page.wait_for_function("() => Number(document.getElementById('chart-velocity').dataset.points) === 5",
                               timeout=30_000)  # fmt: skip
        assert page.evaluate("window.__stillHere") is True  # updated in place, never reloaded
        assert points(page, "chart-gini") == 5
        console.assert_clean()


def test_the_page_is_public_and_its_data_is_not(browser: Browser, world: World) -> None:
    app = create_app(world.k)
    with serve(app) as base, open_page(browser) as (page, console):
        page.goto(f"{base}/#token=kt_wrong_token")
        page.wait_for_selector("#error:not(:empty), #message:not(:empty)", timeout=30_000)
        shown = (page.text_content("#error") or "") + (page.text_content("#message") or "")
        assert "operator's token" in shown
        statuses = page.evaluate(
            "Promise.all(['/v1/telemetry/series', '/static/plotly.min.js', '/'].map(p => fetch(p).then(r => r.status)))"
        )
        assert statuses == [401, 200, 200]
        console.assert_clean("401")  # the refused request the page reports
