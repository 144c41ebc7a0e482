"""The page routes without a browser: who may see what, and the config handed to the scripts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from identix_stream.core.classes import CLASS_NAMES, PALETTE
from identix_stream.web.app import create_app

from .conftest import make_settings

PAGES = ("/image", "/video", "/live")


def _app(tmp_path: Path, **env: str) -> Any:
    return create_app(make_settings(tmp_path, IDENTIX_LOAD_MODELS="false", **env))


def _config(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="identix-config">(.*?)</script>', html, re.S)
    assert match, "the page carries no identix-config block"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


async def test_landing_is_public_and_links_every_page(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.test_app():
        response = await app.test_client().get("/")
        html = await response.get_data(as_text=True)
    assert response.status_code == 200
    for path in PAGES:
        assert f'href="{path}"' in html
    assert 'name="csrf-token"' in html and "/static/js/theme.js" in html and "/static/css/app.css" in html
    assert "Sign in" in html and "Register" in html


@pytest.mark.parametrize("path", PAGES)
async def test_analysis_pages_send_a_signed_out_browser_to_login(tmp_path: Path, path: str) -> None:
    app = _app(tmp_path)
    async with app.test_app():
        response = await app.test_client().get(path, headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={path}"


@pytest.mark.parametrize("path", PAGES)
async def test_analysis_pages_render_with_anonymous_access(tmp_path: Path, path: str) -> None:
    ice = '[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "c"}]'
    app = _app(tmp_path, IDENTIX_ALLOW_ANONYMOUS="true", IDENTIX_ICE_SERVERS=ice, IDENTIX_MAX_LIVE_FPS="12")
    async with app.test_app():
        response = await app.test_client().get(path)
        html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'aria-current="page"' in html and f'href="{path}" aria-current="page"' in html
    script = f"/static/js/{path.strip('/')}.js"
    assert script in html
    config = _config(html)
    assert [c["name"] for c in config["classes"]] == list(CLASS_NAMES)
    assert [c["color"] for c in config["classes"]] == PALETTE.tolist()
    assert config["ice_servers"] == [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "c"}]
    assert config["max_live_fps"] == 12.0
    assert config["allow_anonymous"] is True


async def test_every_script_and_stylesheet_a_page_loads_is_served(tmp_path: Path) -> None:
    app = _app(tmp_path, IDENTIX_ALLOW_ANONYMOUS="true")
    async with app.test_app():
        client = app.test_client()
        assets: set[str] = set()
        for path in ("/", *PAGES):
            html = await (await client.get(path)).get_data(as_text=True)
            assets.update(re.findall(r'(?:src|href)="(/static/[^"]+)"', html))
        # the modules' own imports
        root = Path(__file__).resolve().parents[2] / "static" / "js"
        for module in root.glob("*.js"):
            for name in re.findall(r'from "\./([\w-]+\.js)"', module.read_text(encoding="utf-8")):
                assets.add(f"/static/js/{name}")
        assert {"/static/js/live.js", "/static/js/image.js", "/static/js/video.js", "/static/js/common.js"} <= assets
        for asset in sorted(assets):
            response = await client.get(asset)
            assert response.status_code == 200, asset
