"""The telemetry's HTTP endpoints: one JSON view per dashboard panel, and a live stream of ticks.

Every endpoint is an operator's (admin token): the economy's figures name every agent's
balance. The stream is server-sent events: ``event: tick`` with ``{"tick": N}`` whenever a
new per-tick snapshot is stored (and once on connecting), ``: ping`` comments between.
"""

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from kernel.api import Kernel
from kernel.service.errors import ApiError
from kernel.telemetry import views

POLL_SECONDS = 0.5
PING_SECONDS = 15.0
STREAM_SECONDS = 600.0  # a stream ends after this long; the page reconnects
STREAMS_PER_TOKEN = 4  # streams one token may hold open at once (dashboard tabs)


def install(app: FastAPI, kernel: Kernel, who: Any, streamer: Any, admin: Callable[[Any], None]) -> None:
    """Add the telemetry endpoints; ``who`` is the app's identity dependency type, ``streamer`` the
    one of long-lived streams (not counted among a token's requests in flight)."""
    db, s = kernel.db, kernel.settings
    streams: dict[str, int] = {}
    streams_lock = threading.Lock()
    cache: dict[tuple[Any, ...], Any] = {}

    def per_tick(view: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        """A view read from the snapshots, computed once per tick however many pages ask for it."""
        key = (view.__name__, views.last_tick(db), *args)
        with streams_lock:
            if key in cache:
                return dict(cache[key])
        value = view(db, *args)
        with streams_lock:
            if len(cache) > 32:
                cache.clear()
            cache[key] = value
        return value

    window_q = Annotated[int | None, Query(ge=1, le=10**6, description="ticks (default: KERNEL_TELEMETRY_WINDOW)")]
    limit_q = Annotated[int, Query(ge=1, le=views.MAX_LIMIT)]

    @app.get("/v1/telemetry", tags=["telemetry"])
    def telemetry_now(w: who, window: window_q = None) -> dict[str, Any]:
        admin(w)
        return views.current(db, window, s.telemetry_window)

    @app.get("/v1/telemetry/series", tags=["telemetry"])
    def telemetry_series(
        w: who,
        since: Annotated[int | None, Query(ge=-1, le=2**62, description="only ticks after this one")] = None,
    ) -> dict[str, Any]:
        admin(w)
        return views.series(db, since)

    @app.get("/v1/telemetry/graph", tags=["telemetry"])
    def telemetry_graph(w: who) -> dict[str, Any]:
        admin(w)
        return per_tick(views.graph)

    @app.get("/v1/telemetry/lindy", tags=["telemetry"])
    def telemetry_lindy(w: who, window: window_q = None) -> dict[str, Any]:
        admin(w)
        return per_tick(views.lindy, window, s.telemetry_window)

    @app.get("/v1/telemetry/firms", tags=["telemetry"])
    def telemetry_firms(w: who) -> dict[str, Any]:
        admin(w)
        return per_tick(views.firms)

    @app.get("/v1/telemetry/specialization", tags=["telemetry"])
    def telemetry_specialization(w: who, window: window_q = None) -> dict[str, Any]:
        admin(w)
        return views.specialization(db, window, s.telemetry_window)

    @app.get("/v1/telemetry/top", tags=["telemetry"])
    def telemetry_top(w: who, limit: limit_q = 10) -> dict[str, Any]:
        admin(w)
        return views.top(db, limit, None, s.telemetry_window)

    @app.get("/v1/telemetry/recent", tags=["telemetry"])
    def telemetry_recent(w: who, limit: limit_q = 20) -> dict[str, Any]:
        admin(w)
        return views.recent(db, limit)

    @app.get("/v1/telemetry/dashboard", tags=["telemetry"])
    def telemetry_dashboard(
        w: who,
        since: Annotated[int | None, Query(ge=-1, le=2**62, description="series: only ticks after this one")] = None,
        window: window_q = None,
    ) -> dict[str, Any]:
        """Every panel of the dashboard in one answer (what the page fetches on each new tick)."""
        admin(w)
        return {
            "tick": views.last_tick(db),
            "series": views.series(db, since),
            "graph": per_tick(views.graph),
            "lindy": per_tick(views.lindy, window, s.telemetry_window),
            "firms": per_tick(views.firms),
            "specialization": views.specialization(db, window, s.telemetry_window),
            "top": views.top(db, 10, window, s.telemetry_window),
            "recent": views.recent(db),
            "ledger": kernel.ledger_check().model_dump(mode="json"),
        }

    @app.get("/v1/telemetry/stream", tags=["telemetry"])
    def telemetry_stream(request: Request, w: streamer) -> StreamingResponse:
        admin(w)
        key = w.token_id
        with streams_lock:
            if streams.get(key, 0) >= STREAMS_PER_TOKEN:
                raise ApiError(429, "rate_limited", f"this token has {STREAMS_PER_TOKEN} streams open already;"
                               " close one (another dashboard tab) first.")  # fmt: skip
        stopping: Callable[[], bool] = getattr(request.app.state, "stopping", lambda: False)
        lasting = float(getattr(request.app.state, "stream_seconds", STREAM_SECONDS))

        async def events() -> AsyncIterator[str]:
            with streams_lock:
                streams[key] = streams.get(key, 0) + 1
            try:
                async for event in ticks():
                    yield event
            finally:
                with streams_lock:
                    streams[key] -= 1
                    if not streams[key]:
                        del streams[key]

        async def ticks() -> AsyncIterator[str]:
            last: int | None = None
            sent = False
            pinged = started = time.monotonic()
            while not stopping() and time.monotonic() - started < lasting:
                if await request.is_disconnected():
                    return
                tick = await anyio.to_thread.run_sync(views.last_tick, db)
                if tick != last or not sent:
                    last, sent, pinged = tick, True, time.monotonic()
                    yield f"event: tick\ndata: {json.dumps({'tick': tick})}\n\n"
                elif time.monotonic() - pinged > PING_SECONDS:
                    pinged = time.monotonic()
                    yield ": ping\n\n"
                await asyncio.sleep(POLL_SECONDS)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
