"""kernel.web: the dashboard's page and files, their types and headers, and nothing else."""

import gzip
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kernel import web
from kernel.service import errors


@pytest.fixture(scope="module")
def http() -> TestClient:
    app = FastAPI()
    errors.install(app)  # as the daemon does: a path no route matches is a JSON 404 too
    web.install(app)
    return TestClient(app)


def test_the_page_is_html_with_a_strict_policy(http: TestClient) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert 'src="/static/plotly.min.js"' in response.text
    assert "<script>" not in response.text  # no inline script: the policy would refuse it


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
        ("plotly.min.js", "text/javascript; charset=utf-8"),
    ],
)
def test_static_files_have_their_types(http: TestClient, name: str, media_type: str) -> None:
    response = http.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["etag"]
    assert response.content


def test_plotly_comes_from_the_plotly_package() -> None:
    from importlib import resources

    vendored = resources.files("plotly").joinpath("package_data/plotly.min.js").read_bytes()
    assert web.load(web.ASSETS["plotly.min.js"]).body == vendored
    assert b"plotly.js" in vendored[:200]


def test_plotly_is_sent_gzipped_and_cached_for_a_day(http: TestClient) -> None:
    response = http.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert response.headers["vary"] == "Accept-Encoding"
    raw = http.get("/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert gzip.decompress(web.load(web.ASSETS["plotly.min.js"]).gzipped) == raw.content


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [("gzip", True), ("br, gzip;q=0.5", True), ("*", True), ("gzip;q=0", False), ("identity", False), ("", False)],
)
def test_gzip_follows_accept_encoding(header: str, gzipped: bool) -> None:
    assert web.accepts_gzip(header) is gzipped


def test_an_unchanged_file_is_not_sent_again(http: TestClient) -> None:
    first = http.get("/static/dashboard.js")
    again = http.get("/static/dashboard.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    changed = http.get("/static/dashboard.js", headers={"If-None-Match": '"stale"'})
    assert changed.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/nothing.js",
        "/static/index.html",
        "/static/__init__.py",
        "/static/..%2f__init__.py",
        "/static/%2e%2e%2f%2e%2e%2fdb.py",
        "/static/static%2fdashboard.js",
        "/static/package_data",
    ],
)
def test_unknown_static_names_are_a_json_404(http: TestClient, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_public_paths_are_exactly_what_is_served(http: TestClient) -> None:
    for path in web.PUBLIC_PATHS:
        assert http.get(path).status_code == 200, path
    assert all(p == "/" or p.startswith(web.STATIC_PREFIX) for p in web.PUBLIC_PATHS)
    assert {p.removeprefix(web.STATIC_PREFIX) for p in web.PUBLIC_PATHS} - {"/"} == set(web.ASSETS)


def test_every_own_file_is_shipped_as_package_data() -> None:
    static = Path(web.__file__).parent / "static"
    own = {a.path.removeprefix("static/") for a in [web.PAGE, *web.ASSETS.values()] if a.package == "kernel.web"}
    assert own == {p.name for p in static.iterdir()}


def test_the_routes_stay_out_of_the_api_schema(http: TestClient) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not [p for p in paths if p.startswith("/static")]


def test_the_page_uses_no_html_sinks_for_data() -> None:
    script = (Path(web.__file__).parent / "static" / "dashboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
