"""The Quart application factory.

Feature blueprints (live, WebRTC, uploads, pages) are registered from ``FEATURE_BLUEPRINTS``,
"module:attribute" strings, so each feature is a one-line addition here.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from quart import Quart, Response

from identix_stream.config import REPO_ROOT, Settings
from identix_stream.errors import StoreUnavailable
from identix_stream.storage import open_user_store
from identix_stream.web.csrf import init_csrf
from identix_stream.web.engine import init_analyzer
from identix_stream.web.errors import register_error_handlers

log = logging.getLogger(__name__)

TEMPLATES_DIR = REPO_ROOT / "templates"
STATIC_DIR = REPO_ROOT / "static"

CORE_BLUEPRINTS: tuple[str, ...] = (
    "identix_stream.web.health:blueprint",
    "identix_stream.web.accounts:blueprint",
)

# Analysis features; each owner adds its line. Routes that analyse use auth_guard.login_required.
FEATURE_BLUEPRINTS: tuple[str, ...] = (
    "identix_stream.web.live:blueprint",
    "identix_stream.web.webrtc:blueprint",
    "identix_stream.web.uploads:blueprint",
    "identix_stream.web.pages:blueprint",
)


def _load_blueprint(spec: str) -> object:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr or "blueprint")


def create_app(settings: Settings) -> Quart:
    """Build the app for these settings (``app.config["IDENTIX_SETTINGS"]``); nothing connects
    until serving starts (``before_serving``), so building is cheap and side-effect free."""
    app = Quart(
        "identix_stream",
        template_folder=str(TEMPLATES_DIR),
        static_folder=str(STATIC_DIR),
        static_url_path="/static",
    )
    app.config.update(
        IDENTIX_SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_request_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        JSON_SORT_KEYS=False,
    )
    store = open_user_store(settings)
    app.extensions["user_store"] = store
    register_error_handlers(app)
    init_csrf(app, secure=settings.production)
    init_analyzer(app, settings)  # models on the executor thread, started/stopped with serving

    @app.before_serving
    async def _open_store() -> None:
        try:
            await store.open()
        except StoreUnavailable as exc:  # stay up: /health says 503 and the store retries lazily
            log.error("user store unavailable at start (%s); retrying on demand", exc.message)

    @app.after_serving
    async def _close_store() -> None:
        await store.close()

    @app.after_request
    async def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    for spec in CORE_BLUEPRINTS + FEATURE_BLUEPRINTS:
        app.register_blueprint(_load_blueprint(spec))  # type: ignore[arg-type]
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return app
