"""WebRTC against a real Hypercorn server: an aiortc client publishes a real video file with MediaPlayer
and reads results from its data channel. ICE stays on loopback: aioice leaves 127.0.0.1 out of its
host candidates, so both peers (same process: the server runs in a thread) get it patched back in."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from identix_stream.web import protocol
from identix_stream.web.live import live_stats

from .conftest import ServerThread, api_token

pytestmark = [pytest.mark.data, pytest.mark.slow]


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def _post_offer(server: ServerThread, body: Any, token: str | None = None) -> httpx.Response:
    """As a browser would (CSRF token from /api/csrf, kept cookies), or with an API token."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        if token is not None:
            return await client.post("/api/rtc/offer", json=body, headers={"Authorization": f"Bearer {token}"})
        csrf = (await client.get("/api/csrf")).json()["csrf_token"]
        return await client.post("/api/rtc/offer", json=body, headers={"X-CSRF-Token": csrf})


def _idle(server: ServerThread) -> dict[str, int]:
    stats = live_stats(server.app).to_json()
    stats["analyzer_sessions"] = len(server.app.extensions["analyzer"].sessions)
    stats["peers"] = len(server.app.extensions["rtc_peers"])
    return stats


async def _server_tasks() -> int:
    return len(asyncio.all_tasks()) - 1


async def _wait_idle(server: ServerThread, tasks_before: int | None = None, timeout_s: float = 20.0) -> dict[str, int]:
    """Until no peer, session or task of ours is left (and, given a baseline, no asyncio task
    of aiortc's either) in the server."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = _idle(server)
        counts["loop_tasks"] = server.run(_server_tasks())
        if counts["peers"] == counts["active_peer_connections"] == counts["analyzer_sessions"] == 0 and (
            counts["active_tasks"] == 0 and (tasks_before is None or counts["loop_tasks"] <= tasks_before)
        ):
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"server did not free the peer connection: {counts}")
        await asyncio.sleep(0.2)


async def test_video_track_in_results_out_on_the_data_channel(live_server: ServerThread, shared_data: Path) -> None:
    # 512x480, 30 fps, 19.6 s: the longest clip, so the track outlasts a slow (shared-CPU) server.
    # No loop=True: MediaPlayer restarts the pts at each loop, which breaks the RTP timeline.
    video = shared_data / "videos/talking_heads/driving_d9.mp4"
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("results")
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    channel.on("message", lambda data: messages.put_nowait(json.loads(data)))
    player = MediaPlayer(str(video))
    assert player.video is not None
    pc.addTrack(player.video)
    try:
        await pc.setLocalDescription(await pc.createOffer())
        resp = await _post_offer(live_server, {"sdp": pc.localDescription.sdp, "type": "offer"})
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        assert answer["type"] == "answer" and "127.0.0.1" in answer["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

        hello = await asyncio.wait_for(messages.get(), 60)
        assert hello["type"] == "hello" and hello["classes"][10] == "hair", hello
        results: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        deadline = time.monotonic() + 180
        while len(results) < 5:
            msg = await asyncio.wait_for(messages.get(), max(1.0, deadline - time.monotonic()))
            assert msg["v"] == 1
            assert msg["type"] in ("result", "dropped"), msg
            (results if msg["type"] == "result" else dropped).append(msg)
        assert pc.connectionState == "connected"
        ids = [m["id"] for m in results]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        # every frame id up to the last result is answered exactly once: analysed or dropped
        answered = sorted(ids + [m["id"] for m in dropped if m["id"] < ids[-1]])
        assert answered == list(range(answered[0], ids[-1] + 1))
        assert all(m["reason"] == "superseded" for m in dropped)
        timestamps = [m["timestamp"] for m in results]
        assert timestamps == sorted(timestamps) and timestamps[-1] < 20
        faced = [m for m in results if m["faces"]]
        assert len(faced) >= 4
        for m in faced:
            assert (m["width"], m["height"]) == (512, 480)
            assert protocol.decode_label_map(m["label_map"]).shape == (480, 512)
        assert len({m["faces"][0]["track_id"] for m in faced[1:]}) == 1  # one person, one track
        # a config message on the data channel works as on the WebSocket
        channel.send(json.dumps({"type": "config", "mask": "none"}))
        while True:
            msg = await asyncio.wait_for(messages.get(), 120)
            if msg["type"] == "config":
                assert msg["config"]["mask"] == "none"
                break
        while True:
            msg = await asyncio.wait_for(messages.get(), 120)
            if msg["type"] == "result":
                assert msg["label_map"] is None
                break
    finally:
        await pc.close()
        if player.video is not None:
            player.video.stop()
    await _wait_idle(live_server)


async def test_many_peers_come_and_go_without_leaks(live_server: ServerThread, shared_data: Path) -> None:
    video = shared_data / "videos/talking_heads/driving_d20.mp4"
    await _wait_idle(live_server)
    tasks_before = live_server.run(_server_tasks())
    for _ in range(4):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        channel = pc.createDataChannel("results")
        got = asyncio.Event()
        channel.on("message", lambda _data, got=got: got.set())
        player = MediaPlayer(str(video))
        assert player.video is not None
        pc.addTrack(player.video)
        await pc.setLocalDescription(await pc.createOffer())
        resp = await _post_offer(live_server, {"sdp": pc.localDescription.sdp, "type": "offer"})
        assert resp.status_code == 200, resp.text
        await pc.setRemoteDescription(RTCSessionDescription(**{k: resp.json()[k] for k in ("sdp", "type")}))
        await asyncio.wait_for(got.wait(), 120)
        await pc.close()
        player.video.stop()
    await _wait_idle(live_server, tasks_before)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("not an object", "JSON object"),
        ({"type": "answer", "sdp": "v=0"}, "'answer'"),
        ({"type": "offer", "sdp": ""}, "non-empty"),
        ({"type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"}, "data channel"),
        ({"type": "offer", "sdp": "v=0\r\nm=video 9 x\r\nm=application 9 y\r\ngarbage\r\n"}, "could not be answered"),
    ],
)
async def test_bad_offers_get_400_json(live_server: ServerThread, body: Any, needle: str) -> None:
    resp = await _post_offer(live_server, body)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["code"] == "bad_offer" and needle in err["message"]
    await _wait_idle(live_server)


async def test_offers_need_a_login_unless_anonymous_access_is_on(auth_server: ServerThread) -> None:
    body = {"type": "offer", "sdp": "v=0\r\nm=video 9 x\r\nm=application 9 y\r\n"}
    resp = await _post_offer(auth_server, body)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"
    resp = await _post_offer(auth_server, body, token="ixs_not-a-real-token")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_token"
    token = api_token(auth_server, "webrtc@example.com")
    resp = await _post_offer(auth_server, body, token=token)
    # authenticated: refused only because this server runs without models
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "unavailable", resp.text
