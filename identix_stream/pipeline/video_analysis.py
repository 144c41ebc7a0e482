"""Analyse a video: a decoder thread feeds frames (every ``stride``-th one) to a "video" Session,
a few frames in flight so the executor can batch them, results come out in frame order.

Used by the upload jobs (the source is a streaming upload) and by ``identix-stream analyze``
(a file). The decoder runs on its own thread because PyAV blocks (and, for uploads, waits for
bytes); at most ``inflight + 2`` decoded frames are held at any time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from identix_stream.core.types import FrameResult
from identix_stream.errors import InvalidInput, Overloaded
from identix_stream.media.video import DecodedFrame, VideoInfo, VideoReader

log = logging.getLogger(__name__)

OVERLOAD_RETRY_S = 0.05


@dataclass(frozen=True, slots=True)
class AnalyzedFrame:
    index: int  # frame index in the video (decode order)
    timestamp: float
    result: FrameResult
    frames_decoded: int  # frames decoded so far (analysed or skipped by the stride)


@dataclass(frozen=True, slots=True)
class VideoDone:
    frames_decoded: int
    frames_analyzed: int
    summary: list[dict[str, Any]]  # Session.summary(): per-person tracks
    warning: InvalidInput | None  # e.g. truncated_video: the frames before the damage were analysed


VideoEvent = VideoInfo | AnalyzedFrame | VideoDone


@dataclass(frozen=True, slots=True)
class _End:
    error: InvalidInput | None


@dataclass(frozen=True, slots=True)
class _Fail:
    exc: BaseException


def _decode_worker(
    open_reader: Callable[[], VideoReader],
    stride: int,
    cancel: threading.Event,
    slots: threading.Semaphore,
    put: Callable[[object], None],
) -> None:
    try:
        with open_reader() as reader:
            put(reader.info)
            for frame in reader.frames(stride, cancel):
                if frame.image is not None:
                    while not slots.acquire(timeout=0.2):
                        if cancel.is_set():
                            return
                put(frame)
            put(_End(reader.error))
    except BaseException as exc:
        put(_Fail(exc))


async def analyze_video(
    analyzer: Any,
    open_reader: Callable[[], VideoReader],
    *,
    stride: int = 1,
    inflight: int = 4,
) -> AsyncIterator[VideoEvent]:
    """Yield the VideoInfo, then one AnalyzedFrame per analysed frame in order, then VideoDone.

    ``open_reader`` runs on the decoder thread (opening may block on a streaming upload).
    Errors (InvalidInput for bad videos, ShuttingDown...) propagate; closing the generator early
    (cancellation, client gone) stops the decoder and closes the session.
    """
    if stride < 1:
        raise InvalidInput(f"stride must be >= 1, got {stride}", code="bad_stride")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    cancel = threading.Event()
    slots = threading.Semaphore(inflight + 2)

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone: stop decoding
            cancel.set()

    thread = threading.Thread(
        target=_decode_worker, args=(open_reader, stride, cancel, slots, put), name="video-decode", daemon=True
    )
    thread.start()
    session = analyzer.open_session("video")
    pending: collections.deque[tuple[DecodedFrame, asyncio.Future[FrameResult]]] = collections.deque()
    get_task: asyncio.Task[object] | None = None
    decoded = analysed = 0
    ended: _End | None = None
    try:
        while True:
            while pending and pending[0][1].done():
                frame, fut = pending.popleft()
                slots.release()
                analysed += 1
                yield AnalyzedFrame(frame.index, frame.timestamp, fut.result(), decoded)
            if ended is not None and not pending:
                break
            waiters: set[asyncio.Future[Any]] = set()
            if ended is None and len(pending) < inflight:
                if get_task is None:
                    get_task = asyncio.ensure_future(queue.get())
                waiters.add(get_task)
            if pending:
                waiters.add(pending[0][1])
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if get_task is None or not get_task.done():
                continue
            item = get_task.result()
            get_task = None
            if isinstance(item, VideoInfo):
                yield item
            elif isinstance(item, DecodedFrame):
                decoded += 1
                if item.image is not None:
                    pending.append((item, await _submit_in_order(session, item, pending)))
            elif isinstance(item, _End):
                ended = item
            elif isinstance(item, _Fail):
                raise item.exc
        yield VideoDone(decoded, analysed, session.summary(), ended.error if ended else None)
    finally:
        cancel.set()
        if get_task is not None:
            get_task.cancel()
        for _, fut in pending:
            fut.cancel()
        for _ in range(len(pending) + 2):
            slots.release()  # unblock a decoder waiting for a slot
        session.close()


async def _submit_in_order(
    session: Any, frame: DecodedFrame, pending: collections.deque[tuple[DecodedFrame, asyncio.Future[FrameResult]]]
) -> asyncio.Future[FrameResult]:
    """Queue one frame behind the ones already queued; on a full queue wait and retry (video
    frames are never dropped, and their order is kept so tracking sees them in sequence)."""
    while True:
        fut = asyncio.ensure_future(session.analyze(frame.image, frame.index, frame.timestamp))
        await asyncio.sleep(0)  # let the task run up to the executor's queue
        if not (fut.done() and not fut.cancelled() and isinstance(fut.exception(), Overloaded)):
            return fut
        if pending:
            await asyncio.wait({pending[-1][1]})
        else:
            await asyncio.sleep(OVERLOAD_RETRY_S)
