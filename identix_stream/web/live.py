"""``/ws/live``: browser/webcam frames in, one ``result`` (or ``dropped``/``error``) per frame out.

Each connection runs three tasks. The reader takes every message off the socket at once, validates
it and parks the newest frame in a one-slot mailbox (a frame already waiting there is reported
``dropped``/``superseded``); the worker analyses whatever is in the mailbox; the sender writes the
bounded outbox to the socket. So at most one frame is being analysed and one is waiting: latency
stays bounded however fast the client sends, and a slow client only ever costs its own frames.
The wire format is owned by :mod:`identix_stream.web.protocol`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from quart import Blueprint, Quart, current_app, websocket

from identix_stream.errors import FrameDropped, IdentixError, InvalidInput, Overloaded, ShuttingDown
from identix_stream.media.images import decode_image
from identix_stream.web import protocol
from identix_stream.web.auth_guard import authenticate_websocket, login_required
from identix_stream.web.protocol import FrameMessage, LiveConfig

log = logging.getLogger(__name__)

blueprint = Blueprint("live", __name__)

# Close codes (also in docs/protocol.md). 4401/4403 mirror HTTP 401/403 in the private range that
# browsers pass through to ``CloseEvent.code``; 1013 is the standard "try again later".
CLOSE_UNAUTHORIZED = 4401
CLOSE_UNAVAILABLE = 1013
CLOSE_NOT_READING = 1008
MAX_OUTBOX = 256  # unsent messages per connection before a client counts as not reading
STATS_KEY = "live_stats"


@dataclass
class LiveStats:
    """Counters shared by /ws/live and WebRTC; ``active_*`` must return to 0 when clients leave."""

    connections_total: int = 0
    active_connections: int = 0
    active_tasks: int = 0
    active_peer_connections: int = 0
    frames_received: int = 0
    results_sent: int = 0
    dropped: int = 0
    errors: int = 0
    closed_not_reading: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def live_stats(app: Quart) -> LiveStats:
    stats = app.extensions.get(STATS_KEY)
    if stats is None:
        stats = app.extensions[STATS_KEY] = LiveStats()
    return stats


@blueprint.record_once
def _init_stats(state: Any) -> None:
    live_stats(state.app)


class RateLimiter:
    """Token bucket: ``rate`` frames per second on average, bursts of up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.last = time.monotonic()

    def allow(self, now: float) -> bool:
        if self.rate <= 0:
            return True
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class FrameAnalysis:
    """Turns one still-encoded frame into the message to send: result, dropped or error.

    Shared by /ws/live (JPEG/PNG/WebP bytes) and WebRTC (already decoded frames)."""

    def __init__(self, session: Any, stats: LiveStats, max_image_pixels: int) -> None:
        self.session = session
        self.stats = stats
        self.max_image_pixels = max_image_pixels
        self.opened = time.monotonic()

    async def run(
        self,
        image: Any,
        frame_id: int,
        received: float,
        config: Callable[[], LiveConfig],
        client_ts: float | None = None,
        timestamp: float | None = None,
    ) -> dict[str, Any]:
        """``image``: encoded bytes (decoded here, off the event loop) or a BGR array. ``config``
        gives the config in force when the result is built (a ``config`` message may arrive while
        the frame is analysed). ``timestamp`` (seconds, for the temporal deepfake factors)
        defaults to the arrival time on this stream."""
        started = time.monotonic()
        timing: dict[str, float] = {"wait": (started - received) * 1000.0}
        try:
            if isinstance(image, bytes):
                image = await asyncio.to_thread(decode_image, image, self.max_image_pixels)
                timing["decode"] = (time.monotonic() - started) * 1000.0
            if timestamp is None:
                timestamp = received - self.opened
            result = await self.session.analyze(image, frame_id, timestamp=timestamp)
            timing["latency"] = (time.monotonic() - received) * 1000.0
            msg = protocol.result_message(result, config(), client_ts=client_ts, extra_timing=timing)
            self.stats.results_sent += 1
            return msg
        except FrameDropped as exc:
            self.stats.dropped += 1
            return protocol.dropped_message(frame_id, exc.reason)
        except ShuttingDown as exc:
            self.stats.errors += 1
            return protocol.error_from_exception(exc, frame_id)
        except Overloaded:
            self.stats.dropped += 1
            return protocol.dropped_message(frame_id, "overloaded")
        except IdentixError as exc:
            self.stats.errors += 1
            return protocol.error_from_exception(exc, frame_id)
        except Exception:  # a bug must cost one frame, not the connection
            log.exception("live frame %d failed", frame_id)
            self.stats.errors += 1
            return protocol.error_message("internal", f"frame {frame_id} could not be analysed", frame_id)


class ClientNotReading(Exception):
    """The client let MAX_OUTBOX messages pile up unread: it is closed rather than buffered for."""


class LiveConnection:
    """The reader, worker and sender tasks of one /ws/live connection.

    The reader and the worker never wait on the network to send: messages go to a bounded outbox
    that the sender drains. A client that stops reading fills it and is closed (1008), so nothing
    buffers without bound on its behalf (and the reader keeps draining the socket meanwhile)."""

    def __init__(self, ws: Any, session: Any, settings: Any, stats: LiveStats) -> None:
        self.ws = ws
        self.stats = stats
        self.max_frame_bytes = int(settings.max_frame_bytes)
        self.analysis = FrameAnalysis(session, stats, int(settings.max_image_pixels))
        self.limiter = RateLimiter(float(settings.max_live_fps))
        self.config = LiveConfig()
        self.pending: tuple[FrameMessage, float] | None = None
        self.wake = asyncio.Event()
        self.outbox: asyncio.Queue[str] = asyncio.Queue(MAX_OUTBOX)

    def _config(self) -> LiveConfig:
        return self.config

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.outbox.put_nowait(protocol.dumps(message))
        except asyncio.QueueFull:
            raise ClientNotReading(f"{MAX_OUTBOX} messages unread") from None

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._counted(c)) for c in (self._read(), self._work(), self._send())]
        not_reading = False
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if isinstance(task.exception(), ClientNotReading):
                    not_reading = True
                else:
                    task.result()  # re-raise what ended it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.pending = None
        if not_reading:
            self.stats.closed_not_reading += 1
            await self.ws.close(CLOSE_NOT_READING, "the client does not read its messages")

    async def _send(self) -> None:
        while True:
            text = await self.outbox.get()
            await self.ws.send(text)

    async def _counted(self, coro: Any) -> None:
        self.stats.active_tasks += 1
        try:
            await coro
        finally:
            self.stats.active_tasks -= 1

    async def _read(self) -> None:
        while True:
            data = await self.ws.receive()
            if isinstance(data, str):
                self._on_text(data)
                continue
            now = time.monotonic()
            self.stats.frames_received += 1
            try:
                frame = protocol.parse_frame(data, self.max_frame_bytes)
            except InvalidInput as exc:
                self.stats.errors += 1
                self.send(protocol.error_from_exception(exc, protocol.peek_frame_id(data)))
                continue
            if not self.limiter.allow(now):
                self.stats.dropped += 1
                self.send(protocol.dropped_message(frame.frame_id, "rate_limited"))
                continue
            stale, self.pending = self.pending, (frame, now)
            self.wake.set()
            if stale is not None:
                self.stats.dropped += 1
                self.send(protocol.dropped_message(stale[0].frame_id, "superseded"))

    def _on_text(self, text: str) -> None:
        try:
            self.config = protocol.parse_text_message(text, self.config)
        except InvalidInput as exc:
            self.stats.errors += 1
            self.send(protocol.error_from_exception(exc))
            return
        self.send(protocol.config_message(self.config))

    async def _work(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            item, self.pending = self.pending, None
            if item is None:
                continue
            frame, received = item
            msg = await self.analysis.run(frame.image, frame.frame_id, received, self._config, frame.client_ts)
            self.send(msg)


async def _authenticate(settings: Any) -> str | None:
    """None when the client may connect, else the reason it may not (auth_guard, contract 2)."""
    try:
        user = await authenticate_websocket()
    except IdentixError as exc:
        return exc.message
    if user is None and not settings.allow_anonymous:
        return "authentication required: sign in or send 'Authorization: Bearer <api token>'"
    return None


async def _refuse(code: int, error_code: str, reason: str) -> None:
    await websocket.accept()
    await websocket.send(protocol.dumps(protocol.error_message(error_code, reason)))
    await websocket.close(code, reason[:120])  # a close reason must fit in 123 bytes


@blueprint.websocket("/ws/live")
async def live_socket() -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.config["IDENTIX_SETTINGS"]
    stats = live_stats(app)
    refused = await _authenticate(settings)
    if refused is not None:
        await _refuse(CLOSE_UNAUTHORIZED, "unauthorized", refused)
        return
    analyzer = app.extensions.get("analyzer")
    try:
        if analyzer is None:
            raise ShuttingDown("live analysis is not available: the models are not loaded")
        session = analyzer.open_session("live")
    except IdentixError as exc:
        await _refuse(CLOSE_UNAVAILABLE, exc.code, exc.message)
        return
    stats.connections_total += 1
    stats.active_connections += 1
    try:
        await websocket.accept()
        conn = LiveConnection(websocket._get_current_object(), session, settings, stats)  # type: ignore[attr-defined]
        conn.send(
            protocol.hello_message(
                conn.config,
                max_frame_bytes=conn.max_frame_bytes,
                max_fps=float(settings.max_live_fps),
                device=analyzer.device,
                precision=analyzer.precision,
            )
        )
        await conn.run()
    finally:
        session.close()
        stats.active_connections -= 1


@blueprint.get("/api/live/stats")
@login_required
async def stats_endpoint() -> dict[str, Any]:
    """Connection/task counters (for operators and the leak tests); no frame content."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    out: dict[str, Any] = live_stats(app).to_json()
    analyzer = app.extensions.get("analyzer")
    out["analyzer_sessions"] = len(analyzer.sessions) if analyzer is not None and hasattr(analyzer, "sessions") else 0
    return out
