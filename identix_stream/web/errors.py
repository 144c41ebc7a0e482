"""One error shape for the whole HTTP API: ``{"error": {"code", "message"}}`` with a 4xx/5xx status."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from quart import Quart, Response, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

from identix_stream.errors import IdentixError, RateLimited

log = logging.getLogger(__name__)

# Werkzeug's names for statuses, turned into stable machine-readable codes.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_response(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """The JSON error every route answers with (never an HTML traceback)."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def identix_error_response(exc: IdentixError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    if exc.status == 503:
        headers = {**(headers or {}), "Retry-After": "5"}
    return error_response(exc.code, exc.message, exc.status, headers)


# An error can be decided before the client has finished sending its body (an upload over the cap,
# a video refused on its first bytes). Closing a socket with unread bytes makes the kernel send a
# reset, which can destroy the error response before the client reads it; so the rest of the body
# is read and dropped first, within these bounds (past them the connection is closed anyway).
DRAIN_MAX_BYTES = 32 * 1024 * 1024
DRAIN_MAX_SECONDS = 10.0


async def drain_request_body(max_bytes: int = DRAIN_MAX_BYTES, max_seconds: float = DRAIN_MAX_SECONDS) -> bool:
    """Read and discard what is left of the request body; False if the bounds cut it short."""
    if not has_request_context():
        return True
    drained = 0
    try:
        async with asyncio.timeout(max_seconds):
            async for chunk in request.body:
                drained += len(chunk)
                if drained > max_bytes:
                    return False
    except (TimeoutError, HTTPException):  # too slow, or Quart's own body limit already tripped
        return False
    return True


async def _finish_body(response: Response) -> Response:
    if not await drain_request_body():
        response.headers["Connection"] = "close"
    return response


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(IdentixError)
    async def _identix(exc: IdentixError) -> Response:
        if exc.status >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        return await _finish_body(identix_error_response(exc))

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = "request body too large" if status == 413 else (exc.description or exc.name)
        response = error_response(code, message, status)
        allowed = getattr(exc, "valid_methods", None)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return await _finish_body(response)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response("internal_error", "internal server error", 500)
