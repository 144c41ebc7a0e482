"""A real Hypercorn server on 127.0.0.1 (own thread, own event loop) and real video frames."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from identix_stream.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """create_app(settings) served by Hypercorn in a thread; ``run(coro)`` executes in its loop."""

    def __init__(self, settings: Settings) -> None:
        from identix_stream.web.app import create_app

        self.app = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"hypercorn-{self.port}", daemon=True)

    def _main(self) -> None:
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.graceful_timeout = 2.0
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            await serve(self.app, config, shutdown_trigger=self._stop.wait)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:
            self._error = exc

    def start(self, timeout_s: float = 180.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"server failed to start: {self._error!r}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.2)
                continue
            analyzer = self.app.extensions.get("analyzer")  # the models load after the server listens
            if analyzer is None or analyzer.ready:
                return
            start_task = self.app.extensions.get("analyzer_start")
            if start_task is not None and start_task.done():
                raise RuntimeError("the analyzer failed to start (see the log)")
            time.sleep(0.2)
        raise RuntimeError(f"server not ready within {timeout_s} s")

    def run(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30.0)


def make_settings(tmp: Path, **env: str) -> Settings:
    environ = {
        "IDENTIX_ENV": "local",
        "SECRET_KEY": "test-secret-key-for-live-tests-0123456789",
        "IDENTIX_DATA_DIR": str(tmp / "var"),
        "IDENTIX_TORCH_THREADS": "1",
        "IDENTIX_DEVICE": "cpu",
        **env,
    }
    return Settings.from_env(environ=environ)


@pytest.fixture(scope="session")
def model_path(parser_model: Path) -> Path:
    """The parser the web tests serve with (tests/conftest.py's shared fixture)."""
    return parser_model


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerThread]]:
    servers: list[ServerThread] = []

    def make(**env: str) -> ServerThread:
        server = ServerThread(make_settings(tmp_path_factory.mktemp("srv"), **env))
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def live_server(server_factory: Callable[..., ServerThread], model_path: Path) -> ServerThread:
    """Anonymous access, models loaded: the server the protocol tests talk to."""
    return server_factory(
        IDENTIX_MODEL_PATH=str(model_path), IDENTIX_ALLOW_ANONYMOUS="true", IDENTIX_LOAD_MODELS="true"
    )


@pytest.fixture(scope="session")
def auth_server(server_factory: Callable[..., ServerThread]) -> ServerThread:
    """Anonymous access off and no models: enough to see who gets past authentication."""
    return server_factory(IDENTIX_ALLOW_ANONYMOUS="false", IDENTIX_LOAD_MODELS="false")


def api_token(server: ServerThread, email: str) -> str:
    """A user and an API token, created through the server's own user repository."""
    import bcrypt

    from identix_stream.storage.base import TokenRecord, new_token

    store = server.app.extensions["user_store"]

    async def create() -> str:
        user = await store.create_user(email, bcrypt.hashpw(b"a long enough password", bcrypt.gensalt(4)).decode())
        raw = new_token("ixs_")
        await store.add_token(TokenRecord.issue("api", raw, user.id, None, name="live test"))
        return raw

    return str(server.run(create()))


def video_frames(path: Path, count: int, start: int = 0) -> list[Any]:
    """``count`` consecutive BGR frames of a real video, from frame ``start``."""
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= start:
                frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == count:
                break
    return frames


def jpeg(image: Any, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf.tobytes())


@pytest.fixture(scope="session")
def talking_head_jpegs(shared_data: Path) -> list[bytes]:
    """40 consecutive frames (480x480) of one real talking-head clip, as JPEG."""
    return [jpeg(f) for f in video_frames(shared_data / "videos/talking_heads/driving_d18.mp4", 40)]
