"""Request limits of the HTTP API: body size (as bytes arrive) and a token bucket per caller."""

import threading
import time
from typing import Any

from kernel.service.errors import ApiError, body
from kernel.service.tokens import allows
from kernel.web import PUBLIC_PATHS

Scope = dict[str, Any]


class BodyLimit:
    """ASGI middleware: a body over its limit is refused with 413, by its Content-Length or, when
    it has none (chunked), as soon as more than that has arrived. Uploads (``upload_paths``) may
    send ``upload_bytes``; every other request, JSON, ``json_bytes``."""

    def __init__(self, app: Any, json_bytes: int, upload_bytes: int, upload_paths: frozenset[str]):
        self.app, self.json_bytes, self.upload_bytes, self.upload_paths = app, json_bytes, upload_bytes, upload_paths

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_bytes if scope.get("path") in self.upload_paths else self.json_bytes
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Any, send: Any, max_bytes: int) -> None:
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await _too_large(send, max_bytes)
            return
        seen = 0
        over = started = False

        async def limited() -> Any:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    over = True  # whatever the app makes of the cut body, the answer is 413
                    raise _Overflow
            return message

        async def tracking(message: Any) -> None:
            nonlocal started
            if over:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _too_large(send, max_bytes)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except _Overflow:
            if not started:
                await _too_large(send, max_bytes)


class _Overflow(Exception):
    pass


async def _too_large(send: Any, max_bytes: int) -> None:
    message = f"the request body is larger than {max_bytes} bytes (uploads: KERNEL_API_MAX_BODY_BYTES)."
    await send_error(send, 413, "too_large", message)


async def send_error(send: Any, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    """Answer a JSON error from ASGI middleware (before any route, and before the body is read)."""
    import json

    payload = json.dumps(body(code, message)).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    sized = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*sized, *extra]})
    await send({"type": "http.response.body", "body": payload})


class TokenGate:
    """ASGI middleware: a request over TCP without a valid token is answered 401 before its body is
    read (so that nobody unauthenticated can make the daemon parse a large body); failures are rate
    limited per client address. The identity found is left in ``scope["state"]["identity"]``."""

    # the dashboard's page and scripts hold no data: its data comes from the telemetry API, with a token
    PUBLIC = frozenset({"/v1/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}) | PUBLIC_PATHS

    def __init__(self, app: Any, verify: Any, failures: "RateLimiter"):
        self.app, self.verify, self.failures = app, verify, failures

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        server = scope.get("server")
        local = server is not None and server[1] is None  # the daemon's Unix socket: the home's owner
        if scope["type"] != "http" or local or scope.get("path") in self.PUBLIC:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        scheme, _, presented = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        who = None
        if scheme.lower() == "bearer" and presented.strip():
            from starlette.concurrency import run_in_threadpool

            who = await run_in_threadpool(self.verify, presented.strip())
        if who is None:
            client = (scope.get("client") or ("?", 0))[0]
            try:
                self.failures.take(f"host:{client}")
            except ApiError as limited:
                await send_error(send, 429, limited.code, str(limited), limited.headers)
                return
            message = (
                "send `Authorization: Bearer <token>`; make one with `kernel token create`."
                if not presented.strip()
                else "this token is unknown or revoked; ask an operator for a new one."
            )
            await send_error(send, 401, "unauthorized", message)
            return
        if not allows(who, scope.get("method", "GET"), scope.get("path", "")):
            await send_error(send, 403, "forbidden", "this token only reads the dashboard's telemetry.")
            return
        scope.setdefault("state", {})["identity"] = who
        await self.app(scope, receive, send)


class Concurrency:
    """At most ``limit`` requests in flight per key (one principal's token cannot take every thread)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.busy: dict[str, int] = {}
        self.lock = threading.Lock()

    def enter(self, key: str) -> None:
        with self.lock:
            if self.busy.get(key, 0) >= self.limit:
                raise ApiError(
                    429, "rate_limited", f"this token has {self.limit} requests in flight already; wait for one to end."
                )
            self.busy[key] = self.busy.get(key, 0) + 1

    def leave(self, key: str) -> None:
        with self.lock:
            self.busy[key] -= 1
            if not self.busy[key]:
                del self.busy[key]


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_minute``."""

    MAX_KEYS = 10_000  # beyond it, buckets that have refilled (forgotten: the same as new) are dropped

    def __init__(self, per_minute: int, burst: int, who: str = "this token"):
        self.rate, self.burst, self.who = per_minute / 60.0, burst, who
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def _forget_full(self, now: float) -> None:
        full = [k for k, (tokens, last) in self.buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for key in full:
            del self.buckets[key]

    def take(self, key: str) -> None:
        now = time.monotonic()
        with self.lock:
            if len(self.buckets) >= self.MAX_KEYS:
                self._forget_full(now)
            tokens, last = self.buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = (1.0 - tokens) / self.rate
                self.buckets[key] = (tokens, now)
                raise ApiError(
                    429,
                    "rate_limited",
                    f"{self.who} made more than {self.burst} requests at once; retry in {wait:.1f} s.",
                    {"Retry-After": str(max(1, round(wait)))},
                )
            self.buckets[key] = (tokens - 1.0, now)
