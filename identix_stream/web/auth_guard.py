"""Who is calling: a session cookie or ``Authorization: Bearer <api token>``.

Which routes need a login is explicit: ``login_required`` for analysis routes (honours
IDENTIX_ALLOW_ANONYMOUS), ``account_required`` for routes that act on an account (always needs
one), and ``authenticate_websocket()`` for websocket routes.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from quart import current_app, g, redirect, request, url_for, websocket

from identix_stream.config import Settings
from identix_stream.errors import Unauthorized
from identix_stream.storage.base import User, UserRepository, hash_token
from identix_stream.web.csrf import SESSION_COOKIE

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
_UNSET = object()


def settings() -> Settings:
    value: Settings = current_app.config["IDENTIX_SETTINGS"]
    return value


def user_store() -> UserRepository:
    store: UserRepository = current_app.extensions["user_store"]
    return store


def _bearer(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    if not value:
        raise Unauthorized("empty bearer token", code="invalid_token")
    return value


async def _resolve(authorization: str, session_cookie: str) -> User | None:
    store = user_store()
    raw = _bearer(authorization) if authorization else None
    if raw is not None:
        token = await store.find_token("api", hash_token(raw))
        user = None if token is None else await store.get_user(token.user_id)
        if user is None:
            raise Unauthorized("invalid or revoked API token", code="invalid_token")
        return user
    if session_cookie:
        token = await store.find_token("session", hash_token(session_cookie))
        if token is not None:
            return await store.get_user(token.user_id)
    return None


async def current_user() -> User | None:
    """The signed-in user of this HTTP request, or None. A bad bearer token raises 401 (no fallback)."""
    cached = getattr(g, "identix_user", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    user = await _resolve(request.headers.get("Authorization", ""), request.cookies.get(SESSION_COOKIE, ""))
    g.identix_user = user
    return user


def set_current_user(user: User | None) -> None:
    g.identix_user = user


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return request.method == "GET" and best == "text/html"


def _guard(view: F, *, honour_anonymous: bool) -> F:
    @functools.wraps(view)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = await current_user()
        if user is None and not (honour_anonymous and settings().allow_anonymous):
            if _wants_html():
                return redirect(url_for("accounts.login_page", next=request.full_path.rstrip("?")))
            raise Unauthorized("sign in first, or send 'Authorization: Bearer <api token>'")
        return await view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def login_required(view: F) -> F:
    """For analysis routes: needs a session or API token unless IDENTIX_ALLOW_ANONYMOUS=1."""
    return _guard(view, honour_anonymous=True)


def account_required(view: F) -> F:
    """For account routes (tokens, profile): always needs a signed-in user."""
    return _guard(view, honour_anonymous=False)


def _same_origin(origin: str, host: str) -> bool:
    return urlsplit(origin).netloc.lower() == host.lower()


async def authenticate_websocket() -> User | None:
    """The user of this websocket (bearer header or session cookie), or None.

    Browsers send cookies on cross-site websocket handshakes, so the session cookie only counts
    when the Origin is this host (no cross-site websocket hijacking). The caller decides what None
    means (refuse unless allow_anonymous). A bad bearer token raises ``Unauthorized``.
    """
    headers = websocket.headers
    cookie = websocket.cookies.get(SESSION_COOKIE, "")
    origin = headers.get("Origin", "")
    if cookie and origin and not _same_origin(origin, headers.get("Host", "")):
        cookie = ""
    return await _resolve(headers.get("Authorization", ""), cookie)
