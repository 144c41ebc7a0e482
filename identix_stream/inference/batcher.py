"""The inference executor: one dedicated thread owns the models; the event loop only queues work.

``await batcher.submit(item)`` queues an item and returns its result. The worker thread takes the
oldest item, waits at most ``max_wait_s`` (from that item's arrival) for company up to
``max_batch`` items from any session, and calls ``process(items)`` once for the batch.

Guarantees: exactly one result (or exception) per submitted item; an exception raised by
``process`` fails only that batch; a full queue raises :class:`Overloaded` at once; a keyed
submit (a live stream) replaces that key's still-pending item, which fails with
:class:`FrameDropped`; a cancelled awaiting task removes its item if it has not started; ``stop``
fails whatever is still queued with :class:`ShuttingDown` and joins the thread.
The batching contract follows Ray Serve's ``serve/batching.py``; deadlines use ``time.monotonic``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from identix_stream.errors import FrameDropped, InvalidInput, ModelError, Overloaded, ShuttingDown

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")


@dataclass(eq=False)
class _Entry:
    item: Any
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    key: Hashable | None
    frame_id: int
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """Counters read by /health, the bench and tests (updated on the worker thread)."""

    batches: int = 0
    items: int = 0
    dropped: int = 0
    overloaded: int = 0
    cancelled: int = 0
    failed_batches: int = 0
    batch_sizes: collections.Counter[int] = field(default_factory=collections.Counter)

    def to_json(self) -> dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "items": self.items,
            "mean_batch": round(mean, 3),
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "dropped": self.dropped,
            "overloaded": self.overloaded,
            "cancelled": self.cancelled,
            "failed_batches": self.failed_batches,
        }


def _resolve(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # the awaiting task was cancelled meanwhile
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class Batcher(Generic[T, R]):
    """Dynamic micro-batching on one dedicated worker thread (see the module docstring)."""

    def __init__(
        self,
        process: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        max_batch: int = 8,
        max_wait_s: float = 0.004,
        queue_size: int = 32,
        name: str = "identix-infer",
    ) -> None:
        if max_batch < 1:
            raise InvalidInput(f"max_batch must be >= 1, got {max_batch!r}")
        if max_wait_s < 0:
            raise InvalidInput(f"max_wait_s must be >= 0, got {max_wait_s!r}")
        if queue_size < 1:
            raise InvalidInput(f"queue_size must be >= 1, got {queue_size!r}")
        self._process = process
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.queue_size = queue_size
        self.name = name
        self.stats = BatchStats()
        self._cond = threading.Condition()
        self._queue: collections.deque[_Entry] = collections.deque()
        self._calls: collections.deque[_Entry] = collections.deque()
        self._by_key: dict[Hashable, _Entry] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Refuse new work, fail what is queued, let the running batch finish and join the thread."""
        with self._cond:
            self._stopping = True
            pending = list(self._queue) + list(self._calls)
            self._queue.clear()
            self._calls.clear()
            self._by_key.clear()
            self._cond.notify_all()
        for e in pending:
            e.loop.call_soon_threadsafe(_resolve, e.future, None, ShuttingDown("inference executor stopped"))
        thread = self._thread
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, timeout_s)
            if thread.is_alive():
                log.warning("inference thread did not stop within %.1f s", timeout_s)
        self._thread = None

    # ------------------------------------------------------------------ loop side
    async def call(self, fn: Callable[[], S]) -> S:
        """Run ``fn`` on the worker thread (model loading, warm-up) ahead of queued batches."""
        loop = asyncio.get_running_loop()
        entry = _Entry(fn, loop.create_future(), loop, None, -1)
        with self._cond:
            if not self.running:
                raise ShuttingDown("inference executor is not running")
            self._calls.append(entry)
            self._cond.notify_all()
        called: S = await entry.future
        return called

    async def submit(self, item: T, *, key: Hashable | None = None, frame_id: int = -1) -> R:
        """Queue ``item`` and wait for its result.

        With ``key`` (one per live stream) only the newest pending item of that key is kept: an
        older one still waiting fails with ``FrameDropped(frame_id)``.
        """
        loop = asyncio.get_running_loop()
        entry = _Entry(item, loop.create_future(), loop, key, frame_id)
        with self._cond:
            if not self.running:
                raise ShuttingDown("inference executor is not running")
            old = self._by_key.pop(key, None) if key is not None else None
            if old is not None:
                self._queue.remove(old)
                self.stats.dropped += 1
            elif len(self._queue) >= self.queue_size:
                self.stats.overloaded += 1
                raise Overloaded(f"inference queue is full ({self.queue_size} items waiting)")
            self._queue.append(entry)
            if key is not None:
                self._by_key[key] = entry
            self._cond.notify_all()
        if old is not None:
            old.loop.call_soon_threadsafe(_resolve, old.future, None, FrameDropped(old.frame_id, "superseded"))
        try:
            result: R = await entry.future
        except asyncio.CancelledError:
            self._forget(entry)
            raise
        return result

    def _forget(self, entry: _Entry) -> None:
        with self._cond:
            try:
                self._queue.remove(entry)
            except ValueError:
                return  # already taken by the worker: its result will be discarded
            if entry.key is not None and self._by_key.get(entry.key) is entry:
                del self._by_key[entry.key]
            self.stats.cancelled += 1

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    # ------------------------------------------------------------------ worker side
    def _take_batch(self) -> list[_Entry] | _Entry | None:
        """Block until there is a call or a batch to run; None when stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                if self._calls:
                    return self._calls.popleft()
                if self._queue:
                    break
                self._cond.wait()
            deadline = self._queue[0].enqueued + self.max_wait_s
            while len(self._queue) < self.max_batch and not self._stopping and not self._calls:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._stopping:
                return None
            if not self._queue:  # everything was cancelled or superseded while waiting
                return []
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            for e in batch:
                if e.key is not None and self._by_key.get(e.key) is e:
                    del self._by_key[e.key]
            return batch

    def _run(self) -> None:
        while True:
            work = self._take_batch()
            if work is None:
                return
            if isinstance(work, _Entry):
                self._run_call(work)
            elif work:
                self._run_batch(work)

    def _run_call(self, entry: _Entry) -> None:
        try:
            result, error = entry.item(), None
        except Exception as exc:
            result, error = None, exc
        entry.loop.call_soon_threadsafe(_resolve, entry.future, result, error)

    def _run_batch(self, batch: list[_Entry]) -> None:
        items = [e.item for e in batch]
        try:
            results = list(self._process(items))
            if len(results) != len(batch):
                raise ModelError(f"batch function returned {len(results)} results for {len(batch)} items")
        except Exception as exc:
            log.exception("inference batch of %d failed", len(batch))
            self.stats.failed_batches += 1
            for e in batch:
                e.loop.call_soon_threadsafe(_resolve, e.future, None, exc)
            return
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.batch_sizes[len(batch)] += 1
        for e, r in zip(batch, results, strict=True):
            if isinstance(r, BaseException):
                e.loop.call_soon_threadsafe(_resolve, e.future, None, r)
            else:
                e.loop.call_soon_threadsafe(_resolve, e.future, r, None)
