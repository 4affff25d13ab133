"""The dashboard's page: ``GET /`` and its own scripts and styles under ``/static/``.

Nothing served here holds data, so none of it needs a token: the page reads everything from the
telemetry API with the operator's token, which it takes from the URL fragment (never sent to the
server). Plotly is vendored from the ``plotly`` package (its ``package_data/plotly.min.js``), never
fetched from a CDN. Only the files named in ``ASSETS`` are served: a name is a key, never a path.
"""

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import Response

from kernel.service.errors import respond

REVALIDATE = "no-cache"  # small, and changes with the kernel: ask each time (a 304 when unchanged)
A_DAY = "public, max-age=86400"  # Plotly: 4.8 MB that changes only with the plotly package

# The page runs its own scripts only: no inline script, no eval, no other origin. Styles must allow
# 'unsafe-inline': Plotly adds <style> elements (its global rules, and MapLibre's CSS as it loads) and
# sets style attributes through d3 (colorbars); a strict style-src blocks them, each a console error.
# Heatmaps are drawn as data: images.
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@dataclass(frozen=True)
class Asset:
    """One file served: which package holds it, where in it, and how it is sent."""

    package: str
    path: str
    media_type: str
    cache_control: str


PAGE = Asset("kernel.web", "static/index.html", "text/html; charset=utf-8", REVALIDATE)
ASSETS = {
    "dashboard.js": Asset("kernel.web", "static/dashboard.js", "text/javascript; charset=utf-8", REVALIDATE),
    "dashboard.css": Asset("kernel.web", "static/dashboard.css", "text/css; charset=utf-8", REVALIDATE),
    "favicon.svg": Asset("kernel.web", "static/favicon.svg", "image/svg+xml", REVALIDATE),
    "plotly.min.js": Asset("plotly", "package_data/plotly.min.js", "text/javascript; charset=utf-8", A_DAY),
}
STATIC_PREFIX = "/static/"
# Every path this module serves, exactly: the token gate lets them through (none holds data).
PUBLIC_PATHS = frozenset({"/", *(STATIC_PREFIX + name for name in ASSETS)})


@dataclass(frozen=True)
class Loaded:
    body: bytes
    gzipped: bytes
    etag: str


@cache
def load(asset: Asset) -> Loaded:
    """An asset's bytes, gzipped once, and its ETag (read on first use, then kept)."""
    body = resources.files(asset.package).joinpath(asset.path).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Loaded(body, gzip.compress(body, compresslevel=6, mtime=0), etag)


def accepts_gzip(header: str) -> bool:
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def serve(request: Request, asset: Asset, extra: dict[str, str] | None = None) -> Response:
    """The asset, gzipped when the client takes it, or 304 when the client's copy is current."""
    loaded = load(asset)
    headers = {
        "Cache-Control": asset.cache_control,
        "ETag": loaded.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        **(extra or {}),
    }
    if loaded.etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        return Response(loaded.gzipped, media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(loaded.body, media_type=asset.media_type, headers=headers)


PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def install(app: FastAPI) -> None:
    """Add ``GET /`` (the dashboard) and ``GET /static/{name}`` (its files) to ``app``."""

    @app.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        return serve(request, PAGE, PAGE_HEADERS)

    @app.get(STATIC_PREFIX + "{name}", include_in_schema=False)
    def static(request: Request, name: str) -> Response:
        asset = ASSETS.get(name)
        if asset is None:
            known = ", ".join(sorted(ASSETS))
            return respond(404, "not_found", f"no static file is called {name[:80]!r}; there are: {known}.")
        return serve(request, asset)
