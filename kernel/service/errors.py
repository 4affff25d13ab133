"""Every error the HTTP API returns: a JSON body with a stable ``code`` and one sentence.

``{"error": {"code": "not_found", "message": "no artifact matches 'ab12'; ..."}}``. The
codes are part of the API: clients branch on them, never on the wording.
"""

import logging
import sqlite3

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from judiciary.errors import Busy, EscrowStateError, JudiciaryError, SuiteError
from kernel.errors import (
    Ambiguous,
    EngineUnavailable,
    HomeError,
    ImageError,
    InsufficientFunds,
    InvalidInput,
    KernelError,
    LedgerError,
    ManifestError,
    NotFound,
    PackageError,
    ReadOnlyHome,
    SandboxError,
)
from kernel.world.errors import NoModel, NotMember, NotOwner, WorldError

log = logging.getLogger("kernel.service")

# most specific first: the first class an error is an instance of gives its status and code
KERNEL_ERRORS: list[tuple[type[Exception], int, str]] = [
    (NotFound, 404, "not_found"),
    (NotOwner, 403, "forbidden"),
    (NotMember, 403, "forbidden"),
    (NoModel, 503, "no_model"),
    (WorldError, 409, "world_refused"),
    (Ambiguous, 409, "ambiguous"),
    (ManifestError, 400, "invalid_package"),
    (PackageError, 400, "invalid_package"),
    (InvalidInput, 400, "invalid_input"),
    (InsufficientFunds, 409, "insufficient_funds"),
    (LedgerError, 409, "ledger_refused"),
    (EngineUnavailable, 503, "engine_unavailable"),
    (ImageError, 503, "image_missing"),
    (SandboxError, 502, "sandbox_failed"),
    (ReadOnlyHome, 409, "read_only"),
    (HomeError, 503, "home_unusable"),
    (EscrowStateError, 409, "escrow_state"),
    (SuiteError, 400, "invalid_suite"),
    (Busy, 409, "busy"),
    (JudiciaryError, 400, "refused"),
    (KernelError, 400, "refused"),
]

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ApiError(Exception):
    """An error raised by the API layer itself (authentication, rights, limits)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


def body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def respond(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body(code, message), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into one JSON error."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return respond(exc.status, exc.code, str(exc), exc.headers)

    @app.exception_handler(KernelError)
    async def _kernel(request: Request, exc: KernelError) -> JSONResponse:
        status, code = next((s, c) for cls, s, c in KERNEL_ERRORS if isinstance(exc, cls))
        return respond(status, code, printable(str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the request"
        return respond(422, "invalid_request", printable(f"{where}: {first.get('msg', 'invalid')}; see /docs."))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        if exc.status_code == 404:
            message = f"no such endpoint: {request.url.path}; see /docs."
        return respond(exc.status_code, code, printable(message), getattr(exc, "headers", None))

    @app.exception_handler(sqlite3.Error)
    async def _database(request: Request, exc: sqlite3.Error) -> JSONResponse:
        log.error("database error on %s: %s", request.url.path, exc)
        return respond(503, "database_busy", "the kernel's database failed this request; retry.")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return respond(500, "internal", f"the kernel failed on this request ({type(exc).__name__}); it was logged.")


def printable(message: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
