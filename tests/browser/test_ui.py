"""The UI in a real Chromium: accounts, themes, live analysis over WebRTC and WebSocket, image and
video analysis. Overlays are checked by reading canvas pixels, not only the DOM. Screenshots of each
page in both themes go to test-artifacts/screenshots/."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.web.conftest import ServerThread

pytestmark = [pytest.mark.browser, pytest.mark.data, pytest.mark.slow]

PASSWORD = "Tall-Coffee-Lantern-42"
SKIN = (255, 204, 153)

# Counts painted pixels of a canvas, and those close to a palette colour (mask overlay).
CANVAS_PIXELS_JS = """([id, rgb]) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0, near = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] === 0) continue;
    painted++;
    if (Math.abs(d[i] - rgb[0]) < 24 && Math.abs(d[i + 1] - rgb[1]) < 24 && Math.abs(d[i + 2] - rgb[2]) < 24) near++;
  }
  return {width: c.width, height: c.height, painted, near};
}"""


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shoot(page: Any, name: str) -> None:
    """Full-page screenshots in both themes (the stored choice is restored afterwards)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    before = page.evaluate("() => localStorage.getItem('identix-theme')")
    for theme in ("light", "dark"):
        page.evaluate("(t) => window.identixTheme.set(t)", theme)
        page.wait_for_timeout(150)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{theme}.png"), full_page=True)
    page.evaluate(
        "(t) => { if (t) localStorage.setItem('identix-theme', t); else localStorage.removeItem('identix-theme'); }",
        before,
    )


def register_via_api(page: Any, server: ServerThread, email: str) -> None:
    csrf = page.request.get(f"{server.url}/api/csrf").json()["csrf_token"]
    res = page.request.post(
        f"{server.url}/register", data={"email": email, "password": PASSWORD}, headers={"X-CSRF-Token": csrf}
    )
    assert res.status == 201, res.text()


def sign_in(page: Any, server: ServerThread, email: str, next_path: str = "") -> None:
    page.goto(f"{server.url}/login" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@pytest.fixture(scope="session")
def account(browser: Any, ui_server: ServerThread) -> str:
    """A signed-in browser: an account registered through the API, signed in through the form."""
    email = f"ui-{secrets.token_hex(4)}@example.com"
    page = browser.new_page()
    register_via_api(page, ui_server, email)
    sign_in(page, ui_server, email)
    assert page.request.get(f"{ui_server.url}/check-auth").json()["authenticated"] is True
    page.close()
    return email


# ------------------------------------------------------------------------------------ accounts


def test_login_flow(browser: Any, ui_server: ServerThread) -> None:
    """Signed out, an analysis page sends you to the login form; register, sign in, land back."""
    context = browser
    page = context.new_page()
    page.context.clear_cookies()
    email = f"flow-{secrets.token_hex(4)}@example.com"

    page.goto(f"{ui_server.url}/live")
    assert "/login" in page.url and "next=/live" in page.url
    shoot(page, "login")
    page.get_by_role("link", name="Create an account").click()
    assert page.url.endswith("/register")
    shoot(page, "register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    page.wait_for_load_state()
    assert "registered=1" in page.url
    assert page.get_by_text("Account created").is_visible()

    sign_in(page, ui_server, email, next_path="/live")
    assert page.url.endswith("/live"), page.url
    assert page.get_by_role("link", name=email).is_visible()

    page.goto(f"{ui_server.url}/account")
    assert page.get_by_role("heading", name="Your account").is_visible()
    page.get_by_label("Token name").fill("browser test")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_load_state()
    assert len(page.locator("#new-token").inner_text().strip()) > 20
    shoot(page, "account")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert "/login" in page.url
    page.goto(f"{ui_server.url}/image")
    assert "/login" in page.url and "next=/image" in page.url
    sign_in(page, ui_server, email, next_path="/image")
    assert page.url.endswith("/image")

    page.goto(f"{ui_server.url}/password-reset")
    shoot(page, "password-reset")
    page.close()


# ------------------------------------------------------------------------------------ themes


def _background(page: Any) -> str:
    return str(page.evaluate("() => getComputedStyle(document.body).backgroundColor"))


def test_theme_toggle_is_remembered_and_follows_the_system(page: Any, ui_server: ServerThread) -> None:
    from playwright.sync_api import expect

    page.emulate_media(color_scheme="light")
    page.goto(f"{ui_server.url}/")
    page.evaluate("() => localStorage.removeItem('identix-theme')")
    page.reload()
    light = _background(page)
    page.emulate_media(color_scheme="dark")
    dark = _background(page)
    assert light != dark, "with no stored choice the page must follow prefers-color-scheme"

    page.emulate_media(color_scheme="light")
    toggle = page.locator("[data-theme-toggle]")
    # The media-query "change" listener runs after emulate_media returns: wait for it, bounded.
    expect(toggle).to_have_attribute("aria-pressed", "false", timeout=5000)
    toggle.click()
    assert _background(page) == dark
    expect(toggle).to_have_attribute("aria-pressed", "true", timeout=5000)
    assert page.evaluate("() => localStorage.getItem('identix-theme')") == "dark"
    page.reload()
    assert _background(page) == dark, "the choice must survive a reload"
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    toggle = page.locator("[data-theme-toggle]")
    toggle.focus()
    page.keyboard.press("Enter")  # keyboard usable
    assert _background(page) == light
    assert page.evaluate("() => localStorage.getItem('identix-theme')") == "light"
    shoot(page, "landing")


def test_pages_fit_a_phone_screen(page: Any, ui_server: ServerThread, account: str) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    for path in ("/", "/image", "/video", "/live"):
        page.goto(f"{ui_server.url}{path}")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at 360 px"
        shoot(page, f"phone{path.replace('/', '-') if path != '/' else '-landing'}")


# ------------------------------------------------------------------------------------ live


def _run_live(page: Any, server: ServerThread, transport: str) -> dict[str, Any]:
    page.goto(f"{server.url}/live")
    page.locator(f"input[name=transport][value={transport}]").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("() => Number(document.getElementById('stat-results').textContent) >= 6", timeout=240_000)
    # "what the factors saw" stays unfolded while new results redraw the face list
    page.locator("#live-faces details.observations summary").first.click()
    page.wait_for_timeout(700)  # let the readout refresh (every 500 ms); several results redraw the list
    notes_open = page.evaluate("() => !!document.querySelector('#live-faces details.observations[open]')")
    notes_text = page.locator("#live-faces details.observations").first.inner_text()
    pixels = page.evaluate(CANVAS_PIXELS_JS, ["live-overlay", list(SKIN)])
    readout = {
        "fps": page.locator("#stat-fps").inner_text(),
        "latency": page.locator("#stat-latency").inner_text(),
        "dropped": page.locator("#stat-dropped").inner_text(),
        "status": page.locator("#live-status").inner_text(),
        "faces": page.locator("#live-faces").inner_text(),
        "notes_open": notes_open,
        "notes": notes_text,
    }
    shoot(page, f"live-{transport}")
    page.get_by_role("button", name="Stop").click()
    assert page.locator("#live-status").inner_text() == "Stopped"
    return {"pixels": pixels, **readout}


@pytest.mark.parametrize("transport", ["webrtc", "websocket"])
def test_live_draws_the_overlay(page: Any, ui_server: ServerThread, account: str, transport: str) -> None:
    out = _run_live(page, ui_server, transport)
    pixels = out["pixels"]
    area = pixels["width"] * pixels["height"]
    assert area > 0
    # one talking head fills a good part of the 480x480 frame: its mask must be painted
    assert pixels["painted"] > 0.03 * area, out
    assert pixels["near"] > 0.01 * area, f"no skin-coloured mask pixels: {out}"
    assert "Person #" in out["faces"], out
    assert float(out["fps"]) > 0, out
    assert out["latency"].endswith("ms"), out
    assert ("WebRTC" if transport == "webrtc" else "WebSocket") in out["status"]
    assert out["notes_open"] and "blink:" in out["notes"] and "jitter:" in out["notes"], out


def test_live_reports_a_denied_camera(browser: Any, ui_server: ServerThread, account: str) -> None:
    page = browser.new_page()
    page.goto(f"{ui_server.url}/live")
    # the same code path a browser takes when the user blocks the camera
    page.evaluate(
        "() => { navigator.mediaDevices.getUserMedia = () =>"
        " Promise.reject(new DOMException('denied', 'NotAllowedError')); }"
    )
    page.get_by_role("button", name="Start").click()
    message = page.locator("#live-message")
    message.wait_for(state="visible")
    assert "denied" in message.inner_text()
    assert page.get_by_role("button", name="Start").is_enabled()
    page.close()


# ------------------------------------------------------------------------------------ image

# How many pixels of the canvas differ from the uploaded image drawn alone (i.e. the overlay).
OVERLAY_DIFF_JS = """async () => {
  const c = document.getElementById('image-canvas');
  const file = document.getElementById('image-file').files[0] || window.__droppedFile;
  const bmp = await createImageBitmap(file);
  const ref = document.createElement('canvas');
  ref.width = c.width; ref.height = c.height;
  ref.getContext('2d').drawImage(bmp, 0, 0);
  const a = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const b = ref.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let diff = 0;
  for (let i = 0; i < a.length; i += 4) {
    if (Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]) > 30) diff++;
  }
  return {diff, area: c.width * c.height, width: c.width, height: c.height};
}"""

DROP_FILE_JS = """async ([b64, name, type]) => {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const file = new File([bytes], name, {type});
  window.__droppedFile = file;
  const dt = new DataTransfer();
  dt.items.add(file);
  const zone = document.getElementById('image-drop');
  for (const type of ['dragenter', 'dragover', 'drop']) {
    zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
  }
}"""


def test_image_upload_draws_the_overlay(page: Any, ui_server: ServerThread, account: str, shared_data: Path) -> None:
    import base64

    import cv2
    import numpy as np

    photo = shared_data / "face_parsing" / "celebamask_mini" / "images"
    portrait = sorted(photo.glob("*.jpg"))[0]
    page.goto(f"{ui_server.url}/image")
    page.set_input_files("#image-file", str(portrait))
    page.wait_for_function("() => document.getElementById('dl-mask').disabled === false", timeout=180_000)
    assert (
        "Person #" in page.locator("#image-faces").inner_text() or "Face 1" in page.locator("#image-faces").inner_text()
    )
    seen = page.locator("#image-faces details.observations").first
    seen.locator("summary").click()  # "what the factors saw", folded by default
    text = seen.inner_text()
    assert "blend:" in text and "gan fingerprint:" in text and "boundary:" in text, text
    out = page.evaluate(OVERLAY_DIFF_JS)
    assert (out["width"], out["height"]) == (512, 512)
    assert out["diff"] > 0.05 * out["area"], f"the mask overlay is missing: {out}"

    page.locator("#image-boxes").uncheck()
    page.locator("#image-opacity").fill("0")
    assert page.evaluate(OVERLAY_DIFF_JS)["diff"] < 0.002 * out["area"], "opacity 0 must show the image alone"
    page.locator("#image-opacity").fill("55")
    page.locator("#image-boxes").check()

    with page.expect_download() as dl:
        page.locator("#dl-mask").click()
    mask = cv2.imdecode(np.fromfile(dl.value.path(), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    assert mask is not None and mask.shape == (512, 512)
    assert int(mask.max()) <= 10 and float(np.mean(mask == 1)) > 0.05  # class ids, with skin present
    with page.expect_download() as dl:
        page.locator("#dl-overlay").click()
    overlay = cv2.imdecode(np.fromfile(dl.value.path(), dtype=np.uint8), cv2.IMREAD_COLOR)
    assert overlay is not None and overlay.shape == (512, 512, 3)
    shoot(page, "image")

    # drag and drop a group photo: one entry per face
    group = shared_data / "multiperson" / "dlib_bald_guys.jpg"
    page.evaluate(DROP_FILE_JS, [base64.b64encode(group.read_bytes()).decode(), group.name, "image/jpeg"])
    page.wait_for_function(
        "(n) => document.getElementById('image-status').textContent.startsWith(n)", arg=group.name, timeout=180_000
    )
    faces = page.locator("#image-faces > li").count()
    assert faces >= 3, page.locator("#image-faces").inner_text()
    out = page.evaluate(OVERLAY_DIFF_JS)
    assert out["diff"] > 0.01 * out["area"], out
    shoot(page, "image-group")


BLEND_PEAK_JS = """async (blend) => {
  const { drawFaces } = await import('/static/js/common.js');
  const canvas = document.createElement('canvas');
  canvas.width = 400; canvas.height = 400;
  const ctx = canvas.getContext('2d');
  const face = {track_id: 1, box: [100, 100, 300, 300], deepfake: {p_fake: 0.5, factors: {blend},
                observations: {blend: {text: 'x', region: 'face outline', point: [150, 260]}}}};
  drawFaces(ctx, [face], 1, 1);
  // the ring (radius 25 around the point) in a 12x12 window where it crosses the point's row
  const px = ctx.getImageData(169, 254, 12, 12).data;
  let yellow = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] > 200 && px[i + 1] > 180 && px[i + 2] < 80) yellow++;
  return yellow;
}"""


def test_the_overlay_marks_where_the_blend_evidence_peaks(page: Any, ui_server: ServerThread, account: str) -> None:
    """A face the blend CNN reads as blended gets a ring at its note's point; below 0.5 none."""
    sign_in(page, ui_server, account, next_path="/image")
    assert page.evaluate(BLEND_PEAK_JS, 0.9) > 5
    assert page.evaluate(BLEND_PEAK_JS, 0.3) == 0


def test_image_upload_rejects_a_non_image(page: Any, ui_server: ServerThread, account: str, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_bytes(b"this is not a JPEG at all" * 20)
    page.goto(f"{ui_server.url}/image")
    page.set_input_files("#image-file", str(bogus))
    message = page.locator("#image-message")
    message.wait_for(state="visible")
    assert "notes.jpg" in message.inner_text()
    assert page.locator("#dl-mask").is_disabled()


# ------------------------------------------------------------------------------------ video

# Pixels of the chart canvas in one of the track colours (common.js TRACK_COLORS).
CHART_PIXELS_JS = """() => {
  const colors = ['#ffd166', '#06d6a0', '#4cc9f0', '#f72585', '#b5e48c', '#ff9f1c', '#c77dff', '#90e0ef']
    .map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
  const c = document.getElementById('video-chart');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let line = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] < 200) continue;
    const near = ([r, g, b]) => Math.abs(d[i] - r) < 12 && Math.abs(d[i + 1] - g) < 12 && Math.abs(d[i + 2] - b) < 12;
    if (colors.some(near)) line++;
  }
  return {line, points: Number(c.dataset.points || 0), series: Number(c.dataset.series || 0)};
}"""


FRAME_PIXELS_JS = """() => {
  const palette = JSON.parse(document.getElementById('identix-config').textContent).classes.map((c) => c.color);
  const c = document.getElementById('video-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let frame = 0;
  for (let i = 0; i < d.length; i += 4) {
    const near = ([r, g, b]) => Math.abs(d[i] - r) < 6 && Math.abs(d[i + 1] - g) < 6 && Math.abs(d[i + 2] - b) < 6;
    if (!near([17, 17, 17]) && !palette.some(near)) frame++;
  }
  return frame;
}"""


def test_video_upload_shows_progress_results_and_a_chart(
    page: Any, ui_server: ServerThread, account: str, shared_data: Path
) -> None:
    clip = shared_data / "videos" / "talking_heads" / "driving_d0.mp4"  # 3.1 s, 512x512, 25 fps
    page.goto(f"{ui_server.url}/video")
    page.locator("#video-stride").fill("2")
    page.set_input_files("#video-file", str(clip))
    page.locator("#video-canvas").wait_for(state="visible", timeout=240_000)  # a first analysed frame
    pixels = page.evaluate(CANVAS_PIXELS_JS, ["video-canvas", list(SKIN)])
    assert pixels["width"] == 512 and pixels["painted"] == 512 * 512
    page.locator("#video-summary-card").wait_for(state="visible", timeout=420_000)
    assert "uploaded" in page.locator("#video-upload-text").inner_text()
    assert page.evaluate("() => document.getElementById('video-analysis-progress').position") == 1
    assert "Done" in page.locator("#video-status").inner_text()
    rows = page.locator("#video-summary tr")
    assert rows.count() >= 1 and "#" in rows.first.inner_text()

    chart = page.evaluate(CHART_PIXELS_JS)
    assert chart["series"] >= 1, chart  # one person tracked
    scored = any(
        face["deepfake"].get("frame_p_fake") is not None or face["deepfake"].get("p_fake") is not None
        for frame in page.request.get(f"{ui_server.url}{page.locator('#dl-results').get_attribute('href')}").json()[
            "frames"
        ]
        for face in frame["faces"]
    )
    if scored:  # the server sent scores: the chart must draw them
        assert chart["points"] > 0 and chart["line"] > 100, f"no confidence line drawn on the chart: {chart}"
    else:  # no deepfake models loaded: the chart says so instead of drawing nothing
        assert chart["points"] == 0 and chart["line"] == 0, chart

    # the analysed frame itself is drawn under the mask (seeked in a local <video> of the file):
    # many pixels are neither the dark fallback background nor a pure palette colour
    frame_pixels = page.evaluate(FRAME_PIXELS_JS)
    assert frame_pixels > 0.2 * 512 * 512, f"only {frame_pixels} frame pixels: the video frame was not drawn"
    results_href = page.locator("#dl-results").get_attribute("href")
    body = page.request.get(f"{ui_server.url}{results_href}").json()
    assert body["complete"] is True and len(body["frames"]) >= 30  # 78 frames, every 2nd analysed
    page.locator("#dl-video:not([aria-disabled])").wait_for(timeout=180_000)
    with page.expect_download() as dl:
        page.locator("#dl-video").click()
    assert Path(dl.value.path()).read_bytes()[4:8] == b"ftyp"  # an MP4
    shoot(page, "video")


def test_live_falls_back_to_websocket_without_webrtc(browser: Any, ui_server: ServerThread, account: str) -> None:
    page = browser.new_page()
    page.add_init_script("delete window.RTCPeerConnection;")
    page.goto(f"{ui_server.url}/live")
    assert page.locator("input[name=transport][value=webrtc]").is_checked()
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("() => document.getElementById('live-status').textContent.includes('WebSocket')")
    assert page.locator("input[name=transport][value=websocket]").is_checked()
    assert "using the WebSocket" in page.locator("#live-message").inner_text()
    page.get_by_role("button", name="Stop").click()
    page.close()
