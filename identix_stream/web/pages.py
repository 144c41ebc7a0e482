"""The browser pages: landing, image, video and live analysis.

Server-rendered templates; the work happens in plain ES modules under static/js that talk to the
JSON/WebSocket/WebRTC APIs. The analysis pages follow the same access rule as the APIs they call
(``login_required``: a browser without a session is sent to the login page unless anonymous
access is on). The class table, palette and live limits are handed to the scripts as one JSON
block so the browser never keeps its own copy of them.
"""

from __future__ import annotations

from typing import Any, Final

from quart import Blueprint, Response, current_app, render_template

from identix_stream.config import Settings
from identix_stream.core.classes import CLASS_NAMES, PALETTE
from identix_stream.errors import IdentixError
from identix_stream.storage.base import User
from identix_stream.web.auth_guard import current_user, login_required

blueprint = Blueprint("pages", __name__)

# What the legend shows; "left" is the person's own left (on the right of an unmirrored image).
CLASS_LABELS: Final[dict[str, str]] = {
    "background": "Background",
    "skin": "Skin",
    "left_eyebrow": "Left eyebrow",
    "right_eyebrow": "Right eyebrow",
    "left_eye": "Left eye",
    "right_eye": "Right eye",
    "nose": "Nose",
    "upper_lip": "Upper lip",
    "inner_mouth": "Inner mouth",
    "lower_lip": "Lower lip",
    "hair": "Hair",
}


def class_table() -> list[dict[str, Any]]:
    """One entry per class id: ``{"id", "name", "label", "color": [r, g, b]}``."""
    return [
        {"id": i, "name": name, "label": CLASS_LABELS.get(name, name), "color": [int(c) for c in PALETTE[i]]}
        for i, name in enumerate(CLASS_NAMES)
    ]


def client_config(settings: Settings) -> dict[str, Any]:
    """Everything the page scripts need from the server, embedded as JSON in each page."""
    ice = []
    for entry in settings.ice_servers:
        server = {"urls": entry["urls"]}
        for key in ("username", "credential"):
            if key in entry:
                server[key] = entry[key]
        ice.append(server)
    return {
        "classes": class_table(),
        "ice_servers": ice,
        "max_live_fps": float(settings.max_live_fps),
        "max_frame_bytes": int(settings.max_frame_bytes),
        "max_upload_bytes": int(settings.max_upload_bytes),
        "max_image_pixels": int(settings.max_image_pixels),
        "allow_anonymous": bool(settings.allow_anonymous),
    }


async def _user_or_none() -> User | None:
    try:
        return await current_user()
    except IdentixError:  # a bad bearer token on a page request: render as signed out
        return None


async def render_page(template: str, active: str, **context: Any) -> Response:
    settings: Settings = current_app.config["IDENTIX_SETTINGS"]
    html = await render_template(
        template,
        user=await _user_or_none(),
        active=active,
        client_config=client_config(settings),
        classes=class_table(),
        **context,
    )
    return Response(html, mimetype="text/html")


@blueprint.get("/")
async def landing() -> Response:
    return await render_page("index.html", "home")


@blueprint.get("/image")
@login_required
async def image_page() -> Response:
    return await render_page("image.html", "image")


@blueprint.get("/video")
@login_required
async def video_page() -> Response:
    return await render_page("video.html", "video")


@blueprint.get("/live")
@login_required
async def live_page() -> Response:
    return await render_page("live.html", "live")
