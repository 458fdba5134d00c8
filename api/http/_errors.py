"""Every error leaves through one handler, in the OpenAI error shape; and the error responses
the routes document in OpenAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.http._schema import ErrorResponse
from api.jobs import Job, error_body, error_reply
from genseal.errors import GensealError, RateLimitError

__all__ = ["ERRORS", "IMAGE_RESPONSES", "NOT_FOUND", "install_error_handlers"]

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}

# Seconds a client should wait after a 503 (a database or broker outage, no worker yet).
_RETRY_AFTER_UNAVAILABLE = 5

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad input or blocked by content policy."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
    413: {"model": ErrorResponse, "description": "Upload over the size or pixel limit."},
    429: {"model": ErrorResponse, "description": "Over the rate limit (see Retry-After)."},
    500: {"model": ErrorResponse, "description": "Internal error; nothing was released."},
    503: {
        "model": ErrorResponse,
        "description": "The database is unavailable (`store_unavailable`), or the job broker is, "
        "or no worker serves the model (`queue_unavailable`); nothing was written. Retry after "
        "`Retry-After` seconds.",
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {**ERRORS, 404: {"model": ErrorResponse}}
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    202: {
        "model": Job,
        "description": "With `Prefer: respond-async`: the queued job (poll `Location`). "
        "Without: held for human review (an images response with no images), or, on genseal "
        "workers, the job when it did not finish within the synchronous wait.",
    },
    409: {"model": ErrorResponse, "description": "Idempotency-Key reused for another request."},
}


def install_error_handlers(app: FastAPI) -> None:
    """genseal's errors with their status and headers, validation errors as 400, anything
    else as a 500 that says nothing was released."""

    @app.exception_handler(GensealError)
    def _genseal_error(_: Request, exc: GensealError) -> JSONResponse:
        reply = error_reply(exc)
        headers = {}
        if isinstance(exc, RateLimitError):
            headers = {"Retry-After": str(exc.retry_after), "X-RateLimit-Limit": exc.limit}
        if exc.http_status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        if exc.http_status == 503:
            headers = {"Retry-After": str(_RETRY_AFTER_UNAVAILABLE)}
        return JSONResponse(reply.body, reply.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        return JSONResponse(
            error_body(message, "invalid_request", "invalid_request_error"), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The framework's own refusals (no such route, a method not allowed, a body that is
        # not multipart) in the same shape as every other error.
        code = _HTTP_CODES.get(exc.status_code, "invalid_request")
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return JSONResponse(
            error_body(str(exc.detail), code, kind),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    def _internal(_: Request, exc: Exception) -> JSONResponse:
        reply = error_reply(exc)
        return JSONResponse(reply.body, reply.status)
