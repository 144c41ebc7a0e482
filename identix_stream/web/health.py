"""``GET /health``: 200 when the service can do its job, 503 when a dependency is down."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, current_app, jsonify

from identix_stream import __version__
from identix_stream.web.auth_guard import settings, user_store

blueprint = Blueprint("health", __name__)

PING_TIMEOUT_S = 3.0


async def _db_ok() -> bool:
    try:
        return await asyncio.wait_for(user_store().ping(), PING_TIMEOUT_S)
    except TimeoutError:
        return False


@blueprint.get("/health")
async def health() -> Response:
    cfg = settings()
    analyzer = current_app.extensions.get("analyzer")
    model_loaded = bool(analyzer is not None and getattr(analyzer, "ready", False))
    db_ok = await _db_ok()
    ready = db_ok and (model_loaded or not cfg.load_models)
    body = {
        "status": "ok" if ready else "unavailable",
        "version": __version__,
        "model_loaded": model_loaded,
        "models_required": cfg.load_models,
        "user_store": user_store().kind,
        "db_ok": db_ok,
    }
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
