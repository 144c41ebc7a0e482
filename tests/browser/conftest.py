"""Playwright (Python) driving Debian's Chromium against a real Hypercorn server with models loaded.

The browser's camera is Chromium's fake capture device fed from a .y4m written with PyAV from a
real talking-head clip. Everything runs on 127.0.0.1; when this process may create namespaces the
suite is re-run inside a loopback-only network namespace (test_netns.py), see ``netns_state``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.web.conftest import ServerThread, make_settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("IDENTIX_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
INNER_ENV = "IDENTIX_BROWSER_NETNS"  # set by test_netns.py for the run inside the namespace
CAMERA_CLIP = "videos/talking_heads/driving_d18.mp4"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is ``lo``."""
    try:
        return set(os.listdir("/sys/class/net")) == {"lo"}
    except OSError:
        return False


def can_isolate() -> bool:
    """Root with ``unshare`` and ``ip``: the suite can re-run itself in a loopback-only namespace."""
    return hasattr(os, "geteuid") and os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("ip"))


def netns_state() -> str:
    """ "inside": run here; "wrapped": test_netns.py runs the suite in a namespace instead; "direct":
    no namespace possible, run here on loopback anyway (everything still targets 127.0.0.1)."""
    if loopback_only() or os.environ.get(INNER_ENV) == "1":
        return "inside"
    return "wrapped" if can_isolate() else "direct"


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser_model_path(parser_model: Path) -> Path:
    """The shipped parser (the deepfake models are found beside it in models/)."""
    return parser_model


def write_y4m(source: Path, target: Path, seconds: float = 3.0, fps: int = 15) -> Path:
    """A yuv420p .y4m of the first ``seconds`` of ``source`` (Chromium's fake camera loops it)."""
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = float(stream.average_rate or 25)
        step = max(1, round(rate / fps))
        with av.open(str(target), "w", format="yuv4mpegpipe") as out:
            ostream = out.add_stream("wrapped_avframe", rate=fps)
            ostream.width, ostream.height, ostream.pix_fmt = width, height, "yuv420p"
            written = 0
            for i, frame in enumerate(src.decode(video=0)):
                if i % step:
                    continue
                yuv = frame.reformat(format="yuv420p")
                yuv.pts = None
                for packet in ostream.encode(yuv):
                    out.mux(packet)
                written += 1
                if written >= seconds * fps:
                    break
            for packet in ostream.encode():
                out.mux(packet)
    return target


@pytest.fixture(scope="session")
def camera_y4m(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_y4m(shared_data / CAMERA_CLIP, tmp_path_factory.mktemp("camera") / "camera.y4m")


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory, browser_model_path: Path) -> Iterator[ServerThread]:
    """Accounts required (no anonymous access), models loaded; WebRTC ICE patched onto 127.0.0.1."""
    if netns_state() == "wrapped":
        pytest.skip("runs inside a loopback-only network namespace (tests/browser/test_netns.py)")
    import aioice.ice

    original = aioice.ice.get_host_addresses
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # aioice leaves loopback out
    server = ServerThread(
        make_settings(
            tmp_path_factory.mktemp("ui-srv"),
            IDENTIX_MODEL_PATH=str(browser_model_path),
            IDENTIX_LOAD_MODELS="true",
            IDENTIX_ALLOW_ANONYMOUS="false",
        )
    )
    server.start()
    wait_ready(server)
    try:
        yield server
    finally:
        server.stop()
        aioice.ice.get_host_addresses = original


def wait_ready(server: ServerThread, timeout_s: float = 180.0) -> None:
    """Until /health reports the models loaded (they load in the background after start)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{server.url}/health", timeout=5).json()  # 503 with a body while loading
        except (httpx.HTTPError, ValueError) as exc:
            last = exc
        if isinstance(last, dict) and last.get("model_loaded"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"models not loaded within {timeout_s} s: {last!r}")


@pytest.fixture(scope="session")
def browser(chromium: Path, camera_y4m: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One persistent Chromium context (cookies kept across tests), fake camera from the .y4m."""
    if netns_state() == "wrapped":
        pytest.skip("runs inside a loopback-only network namespace (tests/browser/test_netns.py)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={camera_y4m}"],
            viewport={"width": 1280, "height": 900},
            permissions=["camera"],
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()
