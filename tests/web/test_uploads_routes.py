"""Upload routes that need no models: authentication and "models not loaded" answers, through
Quart's test client."""

from __future__ import annotations

from pathlib import Path

import pytest

from identix_stream.web.app import create_app
from tests.web.conftest import make_settings


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/images"), ("POST", "/predict"), ("POST", "/api/videos"), ("POST", "/predict_video"),
     ("POST", "/detect_deepfake"), ("POST", "/api/videos/jobs"), ("GET", "/api/videos/abc"),
     ("GET", "/api/videos/abc/events"), ("DELETE", "/api/videos/abc")],
)
async def test_login_required(tmp_path: Path, method: str, path: str) -> None:
    app = create_app(make_settings(tmp_path, IDENTIX_LOAD_MODELS="false", IDENTIX_ALLOW_ANONYMOUS="false"))
    async with app.test_app():
        client = app.test_client()
        resp = await client.open(path, method=method, data=b"\xff\xd8\xff", headers={  # type: ignore[call-arg]
            "Authorization": "Bearer not-a-real-token", "Accept": "application/json"})
        assert resp.status_code == 401
        assert (await resp.get_json())["error"]["code"] in ("unauthorized", "invalid_token")


@pytest.mark.data
async def test_models_not_loaded_answers_503(tmp_path: Path, shared_data: Path) -> None:
    app = create_app(make_settings(tmp_path, IDENTIX_LOAD_MODELS="false", IDENTIX_ALLOW_ANONYMOUS="true"))
    async with app.test_app():
        client = app.test_client()
        token = (await (await client.get("/api/csrf")).get_json())["csrf_token"]
        photo = (shared_data / "multiperson/two_people.jpg").read_bytes()
        for path in ("/api/images", "/api/videos", "/api/videos/jobs"):
            resp = await client.post(path, data=photo, headers={"Content-Type": "image/jpeg", "X-CSRF-Token": token})
            assert resp.status_code == 503, path
            assert (await resp.get_json())["error"]["code"] == "models_loading"
            assert resp.headers["Retry-After"]
        # no job, no folder left behind
        assert not any((tmp_path / "var" / "uploads").iterdir())


async def test_upload_routes_take_bodies_above_the_general_request_limit(tmp_path: Path) -> None:
    """Upload routes get IDENTIX_MAX_UPLOAD_MB; other routes keep the small IDENTIX_MAX_REQUEST_KB."""
    app = create_app(make_settings(tmp_path, IDENTIX_LOAD_MODELS="false", IDENTIX_ALLOW_ANONYMOUS="true",
                                   IDENTIX_MAX_UPLOAD_MB="3", IDENTIX_MAX_REQUEST_KB="64"))
    body = b"\xff\xd8\xff" + bytes(2 * 1024 * 1024)  # 2 MB: over the request limit, under the upload limit
    async with app.test_app():
        client = app.test_client()
        token = (await (await client.get("/api/csrf")).get_json())["csrf_token"]
        headers = {"Content-Type": "image/jpeg", "X-CSRF-Token": token}
        resp = await client.post("/api/images", data=body, headers=headers)
        assert resp.status_code == 503  # read whole, then refused only because no models are loaded
        resp = await client.post("/api/images", data=body * 2, headers=headers)
        assert resp.status_code == 413
        resp = await client.post("/login", data=b"{" + body,  # not an upload route: the general limit
                                 headers={"Content-Type": "application/json", "X-CSRF-Token": token})
        assert resp.status_code == 413
