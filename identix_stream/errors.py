"""The project's own exceptions. Each carries a stable machine-readable code and names the
offending value in its message; the web layer turns them into 4xx JSON / WebSocket errors."""

from __future__ import annotations


class IdentixError(Exception):
    """Base class: ``code`` is stable and machine-readable, ``status`` is the HTTP status to answer."""

    code: str = "error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class ConfigError(IdentixError):
    code = "config_error"
    status = 500


class DataError(IdentixError):
    """Training/evaluation data missing or malformed."""

    code = "data_error"


class ModelError(IdentixError):
    """A model file that cannot be loaded or does not match what is asked of it."""

    code = "model_error"
    status = 500


class InvalidInput(IdentixError):
    """A request's input (image, video, header, field) is unusable."""

    code = "invalid_input"
    status = 400


class Overloaded(IdentixError):
    """The inference queue is full: the caller should retry later or drop the frame."""

    code = "overloaded"
    status = 503


class FrameDropped(IdentixError):
    """A live frame was not analysed because a newer frame of the same stream replaced it."""

    code = "dropped"
    status = 409

    def __init__(self, frame_id: int, reason: str = "superseded") -> None:
        super().__init__(f"frame {frame_id} dropped: {reason}")
        self.frame_id = frame_id
        self.reason = reason


class ShuttingDown(Overloaded):
    """The inference executor is stopping or not started: nothing more is accepted."""

    code = "unavailable"
    status = 503


class StoreUnavailable(IdentixError):
    """The user store (MongoDB/SQLite) cannot be reached; the request may be retried later."""

    code = "store_unavailable"
    status = 503


class Conflict(IdentixError):
    """The request conflicts with existing state (e.g. an email that is already registered)."""

    code = "conflict"
    status = 409


class Unauthorized(IdentixError):
    """No valid session or API token, or wrong credentials."""

    code = "unauthorized"
    status = 401


class Forbidden(IdentixError):
    """Authenticated (or not) but not allowed: e.g. a missing/invalid CSRF token."""

    code = "forbidden"
    status = 403


class NotFound(IdentixError):
    code = "not_found"
    status = 404


class RateLimited(IdentixError):
    """Too many attempts; ``retry_after`` (whole seconds) becomes the Retry-After header."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
