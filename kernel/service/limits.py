"""Request limits of the HTTP API: body size (as bytes arrive) and a token bucket per caller."""

import threading
import time
from typing import Any

from kernel.service.errors import ApiError, body

Scope = dict[str, Any]


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` is refused with 413, by its Content-Length
    or, when it has none (chunked), as soon as more than that has arrived."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        over = started = False

        async def limited() -> Any:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True  # whatever the app makes of the cut body, the answer is 413
                    raise _Overflow
            return message

        async def tracking(message: Any) -> None:
            nonlocal started
            if over:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _too_large(send, self.max_bytes)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except _Overflow:
            if not started:
                await _too_large(send, self.max_bytes)


class _Overflow(Exception):
    pass


async def _too_large(send: Any, max_bytes: int) -> None:
    import json

    payload = json.dumps(
        body("too_large", f"the request body is larger than {max_bytes} bytes (KERNEL_API_MAX_BODY_BYTES).")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_minute``."""

    def __init__(self, per_minute: int, burst: int):
        self.rate, self.burst = per_minute / 60.0, burst
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str) -> None:
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                wait = (1.0 - tokens) / self.rate
                self.buckets[key] = (tokens, now)
                raise ApiError(
                    429,
                    "rate_limited",
                    f"this token made more than {self.burst} requests at once; retry in {wait:.1f} s.",
                    {"Retry-After": str(max(1, round(wait)))},
                )
            self.buckets[key] = (tokens - 1.0, now)
