"""``identix-stream bench --server``: live streams driven over real WebSockets against a running
Hypercorn server, counted the way a client sees them."""

from __future__ import annotations

from pathlib import Path

import pytest

from identix_stream.cli import main
from identix_stream.commands.bench_server import bench_server_streams

from .conftest import ServerThread


@pytest.mark.data
@pytest.mark.slow
async def test_every_frame_sent_is_answered_and_counted(live_server: ServerThread,
                                                        talking_head_jpegs: list[bytes]) -> None:
    report = await bench_server_streams(f"{live_server.ws_url}/ws/live", None, talking_head_jpegs, n=2, fps=15.0,
                                        duration=3.0)
    assert report["streams"] == 2 and len(report["per_stream"]) == 2
    for stream in report["per_stream"]:
        assert 40 <= stream["sent"] <= 47  # 15 fps for 3 s
        assert stream["unanswered"] == 0 and stream["errors"] == 0 and "error_codes" not in stream
        assert stream["delivered"] >= 5
        assert stream["delivered"] + stream["dropped"] + stream["overloaded"] == stream["sent"]
        assert 0 < stream["p50_ms"] <= stream["p95_ms"]
        assert sum(stream["batch_frames"].values()) == stream["delivered"]
        assert all(size.isdigit() and int(size) >= 1 for size in stream["batch_frames"]), stream["batch_frames"]
    assert report["min_results_per_s"] == min(s["results_per_s"] for s in report["per_stream"])
    assert sum(report["results_by_batch_frames"].values()) == sum(s["delivered"] for s in report["per_stream"])


def test_an_unreachable_server_is_a_clear_error(caplog: pytest.LogCaptureFixture, shared_data: Path) -> None:
    video = shared_data / "videos" / "talking_heads" / "driving_d0.mp4"
    assert main(["bench", "--server", "ws://127.0.0.1:9/ws/live", "--video", str(video), "--duration", "1"]) == 2
    assert "cannot connect to ws://127.0.0.1:9/ws/live" in caplog.text


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--server", "http://127.0.0.1:8000/ws/live", "--server must be a ws:// or wss:// URL"),
    ("--streams", "0", "--streams needs counts >= 1, got '0'"),
    ("--streams", "four", "--streams must be comma-separated integers, got 'four'"),
])
def test_bad_server_options_are_refused(option: str, value: str, message: str,
                                        caplog: pytest.LogCaptureFixture) -> None:
    args = ["bench", "--server", "ws://127.0.0.1:9/ws/live", option, value]
    assert main(args) == 2
    assert message in caplog.text


async def test_a_server_that_closes_mid_stream_is_a_clear_error() -> None:
    from websockets.asyncio.server import ServerConnection, serve

    from identix_stream.errors import DataError

    async def handler(ws: ServerConnection) -> None:  # hello, then a close after 3 frames, as a 1008 would
        await ws.send('{"v": 1, "type": "hello"}')
        for _ in range(3):
            await ws.recv()
        await ws.close(1008, "the client does not read its messages")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        with pytest.raises(DataError, match=r"closed the stream after \d+ frames: 1008 the client does not read"):
            await bench_server_streams(f"ws://127.0.0.1:{port}/ws/live", None, [b"\xff\xd8jpeg"], n=1, fps=30.0,
                                       duration=5.0)
