"""One error shape for the whole HTTP API: ``{"error": {"code", "message"}}`` with a 4xx/5xx status."""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, Response, jsonify
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


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(IdentixError)
    async def _identix(exc: IdentixError) -> Response:
        if exc.status >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        return identix_error_response(exc)

    @app.errorhandler(HTTPException)
    async def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = "request body too large" if status == 413 else (exc.description or exc.name)
        response = error_response(code, message, status)
        allowed = getattr(exc, "valid_methods", None)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response("internal_error", "internal server error", 500)
