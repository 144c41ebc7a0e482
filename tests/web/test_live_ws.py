"""/ws/live against a real Hypercorn server on 127.0.0.1 with the real analyzer, fed real video frames."""

from __future__ import annotations

import asyncio
import json
import statistics
import struct
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from identix_stream.core.classes import NOSE, SKIN
from identix_stream.web import protocol
from identix_stream.web.live import RateLimiter

from .conftest import ServerThread, api_token, jpeg, video_frames

pytestmark = [pytest.mark.data, pytest.mark.slow]


async def _open(server: ServerThread, **kwargs: Any) -> ClientConnection:
    ws = await connect(f"{server.ws_url}/ws/live", max_size=None, open_timeout=10, **kwargs)
    hello = json.loads(await ws.recv())
    assert hello["type"] == "hello" and hello["v"] == 1, hello
    return ws


async def _recv(ws: ClientConnection, timeout: float = 60.0) -> dict[str, Any]:
    msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    assert msg["v"] == 1
    return msg


async def _roundtrip(ws: ClientConnection, frame_id: int, image: bytes) -> dict[str, Any]:
    await ws.send(protocol.encode_frame(frame_id, image))
    return await _recv(ws)


async def test_results_match_ids_and_tracks_are_stable(
    live_server: ServerThread, talking_head_jpegs: list[bytes]
) -> None:
    ws = await _open(live_server)
    async with ws:
        track_ids = []
        for i, frame in enumerate(talking_head_jpegs[:20]):
            frame_id = 1000 + 7 * i
            await ws.send(protocol.encode_frame(frame_id, frame, client_ts=i * 33.3))
            msg = await _recv(ws)
            assert msg["type"] == "result", msg
            assert msg["id"] == frame_id and msg["client_ts"] == pytest.approx(i * 33.3)
            assert (msg["width"], msg["height"]) == (480, 480)
            assert msg["status"] == "ok" and len(msg["faces"]) == 1
            face = msg["faces"][0]
            x1, y1, x2, y2 = face["box"]
            assert 0 <= x1 < x2 <= 480 and 0 <= y1 < y2 <= 480 and x2 - x1 > 100
            assert face["deepfake"]["state"] in {"collecting", "likely_real", "likely_fake", "uncertain"}
            assert {"wait", "decode", "latency"} <= set(msg["timing"])
            labels = protocol.decode_label_map(msg["label_map"])
            assert labels.shape == (480, 480)
            inside = labels[int(y1):int(y2), int(x1):int(x2)]
            assert (inside == SKIN).mean() > 0.2 and (inside == NOSE).sum() > 100
            assert face["class_areas"]["skin"] == int((labels == SKIN).sum())
            track_ids.append(face["track_id"])
        assert len(set(track_ids)) == 1, track_ids
        assert msg["faces"][0]["track_state"] == "confirmed"


async def test_several_people_keep_their_own_tracks(live_server: ServerThread, shared_data: Path) -> None:
    # frames 240-251: two people side by side for the whole stretch
    frames = video_frames(shared_data / "videos/multi_face/short_hamilton_clip.mp4", 12, start=240)
    ws = await _open(live_server)
    async with ws:
        boxes_by_track: dict[int, list[list[float]]] = {}
        for i, frame in enumerate(frames):
            msg = await _roundtrip(ws, i, jpeg(frame))
            assert msg["type"] == "result" and msg["id"] == i
            for face in msg["faces"]:
                boxes_by_track.setdefault(face["track_id"], []).append(face["box"])
    steady = {tid: b for tid, b in boxes_by_track.items() if len(b) >= 8}
    assert len(steady) >= 2, {tid: len(b) for tid, b in boxes_by_track.items()}
    for boxes in steady.values():  # a track follows one person: its centre moves little frame to frame
        centres = np.array([[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b in boxes])
        assert np.abs(np.diff(centres, axis=0)).max() < 40


async def test_flooding_drops_stale_frames_and_latency_stays_bounded(
    live_server: ServerThread, talking_head_jpegs: list[bytes]
) -> None:
    ws = await _open(live_server)
    async with ws:
        # one paced frame first, to know what one analysis costs right now
        single = await _roundtrip(ws, 0, talking_head_jpegs[0])
        assert single["type"] == "result"
        ids = list(range(1, 41))
        sent_at: dict[int, float] = {}
        for frame_id in ids:  # 40 frames at once, far faster than the server analyses them
            sent_at[frame_id] = time.monotonic()
            await ws.send(protocol.encode_frame(frame_id, talking_head_jpegs[frame_id - 1]))
        answers: dict[int, dict[str, Any]] = {}
        latency: dict[int, float] = {}
        while len(answers) < len(ids):
            msg = await _recv(ws)
            assert msg["type"] in ("result", "dropped"), msg
            assert msg["id"] not in answers, f"two answers for frame {msg['id']}"
            answers[msg["id"]] = msg
            latency[msg["id"]] = time.monotonic() - sent_at[msg["id"]]
    results = [i for i in ids if answers[i]["type"] == "result"]
    dropped = [i for i in ids if answers[i]["type"] == "dropped"]
    assert dropped and all(answers[i]["reason"] in ("superseded", "rate_limited") for i in dropped)
    assert results[-1] == 40, "the newest frame must always be analysed"
    assert len(results) < 20
    # every analysed frame waited at most for the one frame ahead of it
    analysis_ms = [answers[i]["timing"]["latency"] - answers[i]["timing"]["wait"] for i in results]
    slowest = max(analysis_ms)
    for i in results:
        assert answers[i]["timing"]["wait"] <= slowest + 250, (i, answers[i]["timing"])
    # and the newest frame's answer came back within a few analysis times, not 40 of them
    assert latency[40] * 1000 <= 3 * slowest + 500, (latency[40], statistics.median(analysis_ms))


async def test_bad_inputs_get_errors_and_the_connection_stays_usable(
    live_server: ServerThread, talking_head_jpegs: list[bytes]
) -> None:
    good = talking_head_jpegs[0]
    png_ok, png = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))
    assert png_ok
    huge_png = bytearray(png.tobytes())
    huge_png[16:24] = struct.pack(">II", 20000, 20000)  # a header that claims 400 megapixels
    max_frame = 4 * 1024 * 1024
    cases: list[tuple[Any, str, int | None]] = [
        (b"\x00\x01", "bad_header", None),
        (struct.pack(">I", 9) + b'{"id": 1', "bad_header", None),
        (struct.pack(">I", 12) + b'{"frame": 2}' + good, "bad_header", None),
        (protocol.encode_frame(3, b""), "empty_image", 3),
        (protocol.encode_frame(4, b"this is plain text, not an image"), "not_an_image", 4),
        (protocol.encode_frame(5, good[: len(good) // 2]), "truncated_image", 5),
        (protocol.encode_frame(6, bytes(huge_png)), "image_too_large", 6),
        (protocol.encode_frame(7, good + b"\x00" * max_frame), "frame_too_large", 7),
        ("not json", "bad_message", None),
        ('{"type": "subscribe"}', "bad_message", None),
        ('{"type": "config", "mask_scale": 7}', "bad_config", None),
    ]
    ws = await _open(live_server)
    async with ws:
        for n, (data, code, frame_id) in enumerate(cases):
            await ws.send(data)
            err = await _recv(ws)
            assert err["type"] == "error" and err["code"] == code, (n, err)
            assert err.get("id") == frame_id and err["message"]
            ok = await _roundtrip(ws, 100 + n, talking_head_jpegs[n + 1])
            assert ok["type"] == "result" and ok["id"] == 100 + n and ok["faces"], (n, ok)


async def test_config_changes_the_label_map(live_server: ServerThread, talking_head_jpegs: list[bytes]) -> None:
    ws = await _open(live_server)
    async with ws:
        await ws.send(json.dumps({"type": "config", "mask_scale": 0.25, "landmarks": True}))
        ack = await _recv(ws)
        assert ack["type"] == "config" and ack["config"]["mask_scale"] == 0.25
        msg = await _roundtrip(ws, 1, talking_head_jpegs[0])
        assert protocol.decode_label_map(msg["label_map"]).shape == (120, 120)
        assert "landmarks" in msg["faces"][0]
        await ws.send(json.dumps({"type": "config", "mask": "none"}))
        assert (await _recv(ws))["config"]["mask"] == "none"
        msg = await _roundtrip(ws, 2, talking_head_jpegs[1])
        assert msg["label_map"] is None and msg["faces"][0]["box"]


async def _stats(server: ServerThread) -> dict[str, Any]:
    from quart import Quart

    app: Quart = server.app
    client = app.test_client()
    resp = await client.get("/api/live/stats")
    assert resp.status_code == 200
    return dict(await resp.get_json())


async def _server_tasks() -> int:
    """asyncio tasks alive in the server's loop, apart from this one."""
    return len(asyncio.all_tasks()) - 1


def _live_counts(server: ServerThread) -> dict[str, int]:
    from identix_stream.web.live import live_stats

    stats = live_stats(server.app).to_json()
    analyzer = server.app.extensions["analyzer"]
    stats["analyzer_sessions"] = len(analyzer.sessions)
    return stats


async def _settled_counts(server: ServerThread, timeout: float = 30.0) -> dict[str, int]:
    """The counts once the connections of earlier tests have wound down (the server closes its side of
    a finished socket a moment after the client returns), so they are not taken for this test's."""
    deadline = time.monotonic() + timeout
    while True:
        counts = _live_counts(server)
        if counts["active_connections"] == counts["active_tasks"] == 0 or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.1)


async def test_connect_drop_cycles_leave_nothing_behind(
    live_server: ServerThread, talking_head_jpegs: list[bytes]
) -> None:
    before = await _settled_counts(live_server)
    tasks_before = live_server.run(_server_tasks())
    for cycle in range(30):
        ws = await _open(live_server)
        for k in range(cycle % 4):  # 0-3 frames in flight when the client goes away
            await ws.send(protocol.encode_frame(k, talking_head_jpegs[k]))
        if cycle % 3 == 0:
            await ws.close()
        else:  # vanish without a closing handshake
            assert ws.transport is not None
            ws.transport.abort()
    deadline = time.monotonic() + 30
    while True:
        counts = _live_counts(live_server)
        idle = counts["active_connections"] == counts["active_tasks"] == counts["analyzer_sessions"] == 0
        tasks_now = live_server.run(_server_tasks())
        idle = idle and tasks_now <= tasks_before
        if idle or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert idle, (counts, tasks_before, tasks_now)
    assert counts["connections_total"] == before["connections_total"] + 30
    served = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_stats(live_server), live_server.loop))
    assert served["active_connections"] == 0 and served["analyzer_sessions"] == 0
    # and the server still answers
    ws = await _open(live_server)
    async with ws:
        assert (await _roundtrip(ws, 9, talking_head_jpegs[9]))["type"] == "result"


async def test_a_client_that_never_reads_is_closed_not_buffered_for(
    live_server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    from identix_stream.web import live

    monkeypatch.setattr(live, "MAX_OUTBOX", 16)
    before = await _settled_counts(live_server)
    ws = await connect(f"{live_server.ws_url}/ws/live", max_size=None, max_queue=4, close_timeout=2)
    bad = json.dumps({"type": "config", "x" * 20000: 1})  # answered by a 20 KB error naming the field
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(300):  # 6 MB of answers: far more than the socket buffers hold
            await ws.send(bad)
        while True:  # the server's close frame comes after whatever it had sent before
            await asyncio.wait_for(ws.recv(), 60)
    # 1008 when the close frame gets through; the server may also have to drop the socket
    # (its close frame stuck behind unread data): then the client sees an abnormal close
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1008, closed.value
    deadline = time.monotonic() + 30
    while True:
        counts = _live_counts(live_server)
        if counts["active_connections"] == before["active_connections"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert counts["active_connections"] == before["active_connections"], counts
    # Which side ends it depends on timing: the server's outbox limit (counted) or the client's own
    # close timeout while the server is blocked sending. Either way nothing is left behind.
    assert counts["closed_not_reading"] in (before["closed_not_reading"], before["closed_not_reading"] + 1), counts
    assert counts["active_tasks"] == before["active_tasks"], counts


def test_rate_limiter_allows_bursts_of_one_second_then_the_rate() -> None:
    limiter = RateLimiter(10)
    t0 = limiter.last
    assert sum(limiter.allow(t0) for _ in range(15)) == 10
    assert limiter.allow(t0 + 0.05) is False
    assert limiter.allow(t0 + 0.11) is True
    assert sum(limiter.allow(t0 + 1.1 + i * 0.1) for i in range(20)) == 20  # exactly at the rate
    assert RateLimiter(0).allow(t0) is True


async def test_frames_over_the_rate_are_dropped(live_server: ServerThread, talking_head_jpegs: list[bytes]) -> None:
    """The default limit is 60 frames/s with bursts of one second's worth: a burst of 100 must hit it."""
    ws = await _open(live_server)
    async with ws:
        first = cv2.imdecode(np.frombuffer(talking_head_jpegs[0], np.uint8), cv2.IMREAD_COLOR)
        assert first is not None
        small = jpeg(cv2.resize(first, (96, 96)))
        t0 = time.monotonic()
        for i in range(100):
            await ws.send(protocol.encode_frame(i, small))
        burst_s = time.monotonic() - t0
        answers: dict[int, dict[str, Any]] = {}
        while len(answers) < 100:
            msg = await _recv(ws)
            answers[msg["id"]] = msg
    limited = [i for i in range(100) if answers[i].get("reason") == "rate_limited"]
    allowed = 100 - len(limited)
    # one second's worth (60), plus what refilled while the server read the burst
    assert 60 <= allowed <= 85, (allowed, burst_s)
    assert limited and limited[0] >= 60, (limited, burst_s)
    assert any(m["type"] == "result" for m in answers.values())


async def _close_of(ws: ClientConnection) -> tuple[int, str, dict[str, Any]]:
    first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason, first


async def test_unauthenticated_connections_are_refused_with_4401(auth_server: ServerThread) -> None:
    for headers in ({}, {"Authorization": "Bearer ixs_not-a-real-token"}):
        async with connect(f"{auth_server.ws_url}/ws/live", additional_headers=headers) as ws:
            code, reason, first = await _close_of(ws)
        assert code == 4401, (headers, code, reason)
        assert first["type"] == "error" and first["code"] == "unauthorized"
        assert reason and ("sign in" in reason or "token" in reason)
    assert _live_counts_no_models(auth_server)["active_connections"] == 0


async def test_an_api_token_gets_past_authentication(auth_server: ServerThread) -> None:
    token = api_token(auth_server, "live-ws@example.com")
    async with connect(f"{auth_server.ws_url}/ws/live", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        code, reason, first = await _close_of(ws)
    # authenticated: refused only because this server runs without models
    assert code == 1013 and first["code"] == "unavailable", (code, reason, first)
    async with httpx.AsyncClient(base_url=auth_server.url) as client:
        assert (await client.get("/api/live/stats")).status_code == 401
        resp = await client.get("/api/live/stats", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200 and resp.json()["active_connections"] == 0


def _live_counts_no_models(server: ServerThread) -> dict[str, int]:
    from identix_stream.web.live import live_stats

    return live_stats(server.app).to_json()
