"""WebRTC live analysis: ``POST /api/rtc/offer`` answers a browser's SDP offer; the server reads the
client's video track newest-frame-first and sends the :mod:`protocol` messages on the data channel
the client created (label ``results`` by convention; the first channel the client opens is used).

Frames: a puller task takes every decoded frame off the track as it arrives and keeps only the
latest (the one it replaces is reported ``dropped``/``superseded``); a worker analyses the latest.
Frame ids are assigned by the server in arrival order (0, 1, 2, ...); ``timestamp`` is the frame's
media time in seconds. Every peer connection is kept in a registry and closed when its state turns
failed/closed, when it never connects, and when the app stops.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any, Final

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from quart import Blueprint, Quart, current_app, request

from identix_stream.errors import IdentixError, InvalidInput, Overloaded, ShuttingDown
from identix_stream.web import protocol
from identix_stream.web.auth_guard import login_required
from identix_stream.web.live import FrameAnalysis, LiveStats, live_stats
from identix_stream.web.protocol import LiveConfig

log = logging.getLogger(__name__)

blueprint = Blueprint("webrtc", __name__)

PEERS_KEY: Final[str] = "rtc_peers"
MAX_PEERS: Final[int] = 32  # concurrent peer connections per process
MAX_SDP_BYTES: Final[int] = 64 * 1024
CONNECT_TIMEOUT_S: Final[float] = 30.0  # an answered offer that never connects is closed after this
MAX_CHANNEL_BUFFER: Final[int] = 1 << 20  # results are skipped while the data channel is this far behind

_peer_ids = itertools.count(1)


def ice_servers(raw: Any) -> list[RTCIceServer]:
    """settings.ice_servers (a list of ``{"urls", "username"?, "credential"?}`` or URL strings) ->
    aiortc servers. Always a list: ``iceServers=None`` would make aiortc use a public STUN server."""
    servers = []
    for entry in raw or []:
        if isinstance(entry, str):
            servers.append(RTCIceServer(urls=entry))
        else:
            servers.append(
                RTCIceServer(urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential"))
            )
    return servers


class RtcPeer:
    """One browser's peer connection, its analysis session and its tasks."""

    def __init__(
        self, pc: RTCPeerConnection, session: Any, settings: Any, stats: LiveStats, hello: dict[str, Any] | None = None
    ) -> None:
        self.id = next(_peer_ids)
        self.hello = hello
        self.pc = pc
        self.session = session
        self.stats = stats
        self.analysis = FrameAnalysis(session, stats, int(settings.max_image_pixels))
        self.config = LiveConfig()
        self.channel: Any = None
        self.latest: tuple[Any, int, float] | None = None
        self.wake = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self.on_closed: list[Any] = []
        pc.on("datachannel", self._on_datachannel)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(self._counted(coro))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _counted(self, coro: Any) -> None:
        self.stats.active_tasks += 1
        try:
            await coro
        except (asyncio.CancelledError, MediaStreamError):
            pass
        except Exception:
            log.exception("rtc peer %d task failed", self.id)
        finally:
            self.stats.active_tasks -= 1

    # ---------------------------------------------------------------- events
    def _on_datachannel(self, channel: Any) -> None:
        if self.channel is None:
            self.channel = channel
            channel.on("message", self._on_message)
            if self.hello is not None:
                if channel.readyState == "open":
                    self.send(self.hello)
                else:
                    channel.once("open", lambda: self.send(self.hello) if self.hello is not None else None)

    def _on_message(self, data: Any) -> None:
        """Text on the data channel may carry the same ``config`` message as /ws/live."""
        if not isinstance(data, str):
            self.send(protocol.error_message("bad_message", "binary data-channel messages are not accepted"))
            return
        try:
            self.config = protocol.parse_text_message(data, self.config)
        except InvalidInput as exc:
            self.stats.errors += 1
            self.send(protocol.error_from_exception(exc))
            return
        self.send(protocol.config_message(self.config))

    def _on_track(self, track: Any) -> None:
        if track.kind == "video":
            self.spawn(self._pull(track))
            self.spawn(self._work())
        else:
            self.spawn(self._drain(track))  # unread tracks would queue frames without bound

    async def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            await self.close()

    # ---------------------------------------------------------------- tasks
    async def _drain(self, track: Any) -> None:
        while True:
            await track.recv()

    async def _pull(self, track: Any) -> None:
        frame_ids = itertools.count()
        while True:
            frame = await track.recv()
            frame_id = next(frame_ids)
            self.stats.frames_received += 1
            stale, self.latest = self.latest, (frame, frame_id, time.monotonic())
            self.wake.set()
            if stale is not None:
                self.stats.dropped += 1
                self.send(protocol.dropped_message(stale[1], "superseded"))

    async def _work(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            item, self.latest = self.latest, None
            if item is None:
                continue
            frame, frame_id, received = item
            image = await asyncio.to_thread(frame.to_ndarray, format="bgr24")
            ts = float(frame.time) if frame.time is not None else None
            msg = await self.analysis.run(image, frame_id, received, lambda: self.config, timestamp=ts)
            self.send(msg)

    async def _watchdog(self) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        if self.pc.connectionState != "connected":
            log.info("rtc peer %d did not connect within %.0f s; closing", self.id, CONNECT_TIMEOUT_S)
            await self.close()

    # ---------------------------------------------------------------- output / teardown
    def send(self, message: dict[str, Any]) -> None:
        channel = self.channel
        if channel is None or channel.readyState != "open":
            return
        if channel.bufferedAmount > MAX_CHANNEL_BUFFER:  # the client is not keeping up: skip, never queue
            return
        channel.send(protocol.dumps(message))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        tasks = [t for t in self.tasks if t is not current]
        for task in tasks:
            task.cancel()
        await self.pc.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.latest = None
        self.session.close()
        for callback in self.on_closed:
            callback(self)


def peers(app: Quart) -> set[RtcPeer]:
    registry: set[RtcPeer] | None = app.extensions.get(PEERS_KEY)
    if registry is None:
        registry = app.extensions[PEERS_KEY] = set()
    return registry


@blueprint.record_once
def _init_registry(state: Any) -> None:
    peers(state.app)


@blueprint.after_app_serving
async def _close_all_peers() -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    await asyncio.gather(*(peer.close() for peer in list(peers(app))), return_exceptions=True)


def _parse_offer(body: Any) -> RTCSessionDescription:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object {\"sdp\": ..., \"type\": \"offer\"}", code="bad_offer")
    sdp, kind = body.get("sdp"), body.get("type")
    if kind != "offer":
        raise InvalidInput(f"'type' must be 'offer', got {kind!r}", code="bad_offer")
    if not isinstance(sdp, str) or not sdp.strip():
        raise InvalidInput("'sdp' must be a non-empty string", code="bad_offer")
    if len(sdp) > MAX_SDP_BYTES:
        raise InvalidInput(f"'sdp' of {len(sdp)} bytes exceeds {MAX_SDP_BYTES}", code="bad_offer")
    if "m=video" not in sdp or "m=application" not in sdp:
        raise InvalidInput(
            "the offer must send a video track and open a data channel (for the results)", code="bad_offer"
        )
    return RTCSessionDescription(sdp=sdp, type="offer")


@blueprint.post("/api/rtc/offer")
@login_required
async def offer() -> tuple[dict[str, Any], int]:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.config["IDENTIX_SETTINGS"]
    description = _parse_offer(await request.get_json(force=True, silent=True))
    registry = peers(app)
    if len(registry) >= MAX_PEERS:
        raise Overloaded(f"{len(registry)} WebRTC peers are connected (the limit is {MAX_PEERS}); retry later")
    analyzer = app.extensions.get("analyzer")
    if analyzer is None:
        raise ShuttingDown("live analysis is not available: the models are not loaded")
    session = analyzer.open_session("live")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(settings.ice_servers)))
    hello = protocol.hello_message(
        LiveConfig(),
        max_frame_bytes=int(settings.max_frame_bytes),
        max_fps=float(settings.max_live_fps),
        device=analyzer.device,
        precision=analyzer.precision,
    )
    peer = RtcPeer(pc, session, settings, live_stats(app), hello)
    registry.add(peer)
    peer.stats.active_peer_connections += 1

    def _forget(done: RtcPeer) -> None:
        registry.discard(done)
        done.stats.active_peer_connections -= 1

    peer.on_closed.append(_forget)
    try:
        await pc.setRemoteDescription(description)
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:
        await peer.close()
        if isinstance(exc, IdentixError):
            raise
        raise InvalidInput(f"the SDP offer could not be answered: {exc}", code="bad_offer") from None
    peer.spawn(peer._watchdog())
    answer = pc.localDescription
    return {"sdp": answer.sdp, "type": answer.type, "peer_id": peer.id}, 200
