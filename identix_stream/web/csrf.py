"""CSRF protection for browser requests (signed double-submit, bound to the login session).

A random nonce lives in an HttpOnly cookie; the token is HMAC(secret, nonce | session token), so
it changes when the session does (login/logout) and cannot be forged without the secret key.
Every POST/PUT/PATCH/DELETE must carry it in the ``X-CSRF-Token`` header, or (urlencoded HTML
forms only) a ``csrf_token`` field. Exempt: requests with ``Authorization: Bearer`` (browsers
never attach that header cross-site without CORS), requests without a session cookie outside
the account routes (nothing ambient to abuse: anonymous demo mode), websockets, and views marked
``csrf_exempt``.
Multipart bodies are never parsed here (uploads stream): they must send the header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from quart import Quart, Response, current_app, g, request

from identix_stream.errors import Forbidden

CSRF_COOKIE = "identix_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_COOKIE = "identix_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Blueprints whose forms need the token even without a session (login CSRF, reset/register spam).
PROTECTED_WITHOUT_SESSION = frozenset({"accounts"})

F = TypeVar("F", bound=Callable[..., Any])


def csrf_exempt(view: F) -> F:
    """Mark a view as not needing a CSRF token (only for endpoints with their own protection)."""
    view._csrf_exempt = True  # type: ignore[attr-defined]
    return view


def _nonce() -> str:
    nonce = getattr(g, "csrf_nonce", None)
    if nonce is None:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        nonce = cookie if 16 <= len(cookie) <= 128 else secrets.token_urlsafe(24)
        g.csrf_nonce = nonce
    return str(nonce)


def _session_part() -> str:
    override = getattr(g, "csrf_session", None)
    if override is not None:
        return str(override)
    return request.cookies.get(SESSION_COOKIE, "")


def generate_csrf_token() -> str:
    """The token for this browser and its current session (use in forms and the meta tag)."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    msg = f"{_nonce()}|{_session_part()}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def bind_session(raw_session_token: str) -> None:
    """After login/logout in this request, tokens handed out must match the new session cookie."""
    g.csrf_session = raw_session_token


async def _submitted_token() -> str:
    token = request.headers.get(CSRF_HEADER, "")
    if token:
        return token
    if request.mimetype == "application/x-www-form-urlencoded":
        form = await request.form
        return str(form.get(CSRF_FIELD, ""))
    return ""


def _exempt() -> bool:
    if request.method not in UNSAFE_METHODS:
        return True
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return True
    if not request.cookies.get(SESSION_COOKIE) and request.blueprint not in PROTECTED_WITHOUT_SESSION:
        return True  # no ambient credentials to abuse (anonymous demo mode); account forms stay protected
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "_csrf_exempt", False))


async def check_csrf() -> None:
    if _exempt():
        return
    submitted = await _submitted_token()
    if not submitted or not request.cookies.get(CSRF_COOKIE):
        raise Forbidden(
            f"missing CSRF token: send the value of GET /api/csrf in the {CSRF_HEADER} header",
            code="csrf_missing",
        )
    if not hmac.compare_digest(submitted, generate_csrf_token()):
        raise Forbidden("invalid or stale CSRF token: fetch a fresh one from GET /api/csrf", code="csrf_invalid")


def init_csrf(app: Quart, *, secure: bool) -> None:
    app.before_request(check_csrf)

    @app.after_request
    async def _set_nonce_cookie(response: Response) -> Response:
        nonce = getattr(g, "csrf_nonce", None)
        if nonce is not None and request.cookies.get(CSRF_COOKIE) != nonce:
            response.set_cookie(
                CSRF_COOKIE, nonce, max_age=365 * 24 * 3600, httponly=True, secure=secure, samesite="Lax", path="/"
            )
        return response

    @app.context_processor
    async def _csrf_context() -> dict[str, Any]:
        return {"csrf_token": generate_csrf_token}

    @app.get("/api/csrf")
    async def csrf_token_endpoint() -> dict[str, str]:
        """The CSRF token for this browser session (send it back in the X-CSRF-Token header)."""
        return {"csrf_token": generate_csrf_token(), "header": CSRF_HEADER}
