"""``identix-stream bench --server ws://HOST:PORT/ws/live``: live streams driven over real WebSockets.

The in-process bench (``bench.py``) calls the analyzer directly; this drives a *running* server the
way browsers do, so the numbers include Hypercorn, the WebSocket framing, JPEG decoding in the
server, the result JSON and the PNG label map. Each stream is one connection that sends a frame
every 1/fps seconds whether or not the last answer came back (a webcam does not wait), and counts
what the server answers per frame: ``result``, ``dropped`` (latest frame wins) or ``error``.
Latency is send -> result as the client sees it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

from identix_stream.commands.stream_stats import stream_summary, streams_summary
from identix_stream.errors import DataError
from identix_stream.web.protocol import encode_frame

ANSWER_GRACE_S = 10.0  # after the last frame, how long to wait for the answers still due


async def _one_connection(url: str, token: str | None, jpegs: list[bytes], fps: float,
                          duration: float) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, WebSocketException

    headers = {"Authorization": f"Bearer {token}"} if token else None
    counts = {"sent": 0, "delivered": 0, "dropped": 0, "overloaded": 0, "errors": 0}
    sent_at: dict[int, float] = {}
    latencies: list[tuple[float, float]] = []
    error_codes: Counter[str] = Counter()
    batch_frames: Counter[str] = Counter()  # the server's batch size (frames, all sessions) per result
    try:
        ws = await connect(url, additional_headers=headers, max_size=None, open_timeout=10)
    except (OSError, WebSocketException, TimeoutError) as exc:
        raise DataError(f"cannot connect to {url}: {exc}") from exc
    async with ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if hello.get("type") != "hello":
            raise DataError(f"{url} refused the stream: {hello}")
        start = time.monotonic()

        async def receive() -> None:
            async for message in ws:
                if not isinstance(message, str):
                    continue
                msg = json.loads(message)
                frame_id = msg.get("id")
                t0 = sent_at.pop(frame_id, None) if isinstance(frame_id, int) else None
                if msg.get("type") == "result" and t0 is not None:
                    counts["delivered"] += 1
                    latencies.append((t0 - start, (time.monotonic() - t0) * 1000))
                    size = msg.get("timing", {}).get("batch_frames")
                    key = str(int(size)) if isinstance(size, int | float) else "unknown"
                    batch_frames[key] += 1
                elif msg.get("type") == "dropped":  # the server sheds load as dropped/"overloaded"
                    counts["overloaded" if msg.get("reason") == "overloaded" else "dropped"] += 1
                elif msg.get("type") == "error":
                    counts["errors"] += 1
                    error_codes[str(msg.get("code", "error"))] += 1
                if counts["sent"] and not sent_at and time.monotonic() - start >= duration:
                    return

        receiver = asyncio.create_task(receive())
        frame_id = 0
        try:
            while (now := time.monotonic()) - start < duration and not receiver.done():
                sent_at[frame_id] = time.monotonic()
                await ws.send(encode_frame(frame_id, jpegs[frame_id % len(jpegs)], client_ts=now - start))
                counts["sent"] += 1
                frame_id += 1
                await asyncio.sleep(max(0.0, start + frame_id / fps - time.monotonic()))
            await asyncio.wait_for(receiver, ANSWER_GRACE_S)
        except TimeoutError:
            receiver.cancel()
        except ConnectionClosed:
            pass  # reported below
        elapsed = time.monotonic() - start
        if ws.close_code is not None and elapsed < duration:
            raise DataError(f"{url} closed the stream after {counts['sent']} frames: "
                            f"{ws.close_code} {ws.close_reason or ''}".rstrip())
    out = stream_summary(counts, latencies, elapsed, duration)
    out["unanswered"] = len(sent_at)
    out["batch_frames"] = dict(sorted(batch_frames.items()))
    if error_codes:
        out["error_codes"] = dict(error_codes)
    return out


async def bench_server_streams(url: str, token: str | None, jpegs: list[bytes], n: int, fps: float,
                               duration: float) -> dict[str, Any]:
    """N concurrent connections to ``url``; the same per-stream figures as the in-process bench."""
    per_stream = await asyncio.gather(*(_one_connection(url, token, jpegs, fps, duration) for _ in range(n)))
    by_batch = sum((Counter(s["batch_frames"]) for s in per_stream), Counter[str]())
    return {**streams_summary(n, fps, duration, per_stream), "results_by_batch_frames": dict(sorted(by_batch.items()))}
