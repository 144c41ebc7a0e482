"""The executor contract with fake model functions: real worker thread, real asyncio."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from identix_stream.errors import FrameDropped, Overloaded, ShuttingDown
from identix_stream.inference.batcher import Batcher


class SlowDouble:
    """A fake model: doubles each item, takes ``delay`` s per batch, records batches and threads."""

    def __init__(self, delay: float = 0.0, fail_on: object = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.batches: list[list[Any]] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, items: list[Any]) -> list[Any]:
        self.entered.set()
        self.gate.wait(5)
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(items))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"model failed on {self.fail_on}")
        return [(i, i * 2) if isinstance(i, int) else i for i in items]


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


async def test_batches_form_across_sessions_and_each_input_gets_its_result() -> None:
    model = SlowDouble()
    b: Batcher[Any, Any] = Batcher(model, max_batch=4, max_wait_s=0.05, queue_size=64)
    b.start()
    # 3 "sessions" submitting concurrently, 4 frames each, while the model is held back
    model.gate.clear()
    blocker = asyncio.create_task(b.submit(-1))
    await _until(model.entered.is_set)  # the worker is busy with the blocker (no fixed sleeps: CI may be slow)
    tasks = [asyncio.create_task(b.submit(s * 100 + f)) for f in range(4) for s in range(3)]
    await _until(lambda: b.pending() == 12)
    model.gate.set()
    results = await asyncio.gather(*tasks)
    await blocker
    await b.stop()
    assert results == [(s * 100 + f, (s * 100 + f) * 2) for f in range(4) for s in range(3)]
    assert sorted(len(x) for x in model.batches[1:]) == [4, 4, 4]
    # a batch mixes sessions
    assert any(len({i // 100 for i in batch}) > 1 for batch in model.batches[1:])
    assert model.threads == {"identix-infer"}
    assert b.stats.items == 13
    assert b.stats.batch_sizes[4] == 3


async def test_lone_item_waits_at_most_max_wait() -> None:
    b: Batcher[Any, Any] = Batcher(SlowDouble(), max_batch=8, max_wait_s=0.02, queue_size=8)
    b.start()
    t0 = time.monotonic()
    assert await b.submit(3) == (3, 6)
    elapsed = time.monotonic() - t0
    await b.stop()
    assert 0.015 <= elapsed < 0.5


async def test_an_error_fails_only_its_batch() -> None:
    model = SlowDouble(fail_on=13)
    b: Batcher[Any, Any] = Batcher(model, max_batch=2, max_wait_s=0.05, queue_size=8)
    b.start()
    model.gate.clear()
    tasks = [asyncio.create_task(b.submit(i)) for i in (12, 13, 14, 15)]
    await asyncio.sleep(0.05)
    model.gate.set()
    out = await asyncio.gather(*tasks, return_exceptions=True)
    await b.stop()
    assert isinstance(out[0], RuntimeError) and isinstance(out[1], RuntimeError)
    assert out[2:] == [(14, 28), (15, 30)]
    assert b.stats.failed_batches == 1


async def test_per_item_exceptions_are_delivered_to_that_item_only() -> None:
    def model(items: list[Any]) -> list[Any]:
        return [ValueError(f"bad {i}") if i == 2 else i for i in items]

    b: Batcher[Any, Any] = Batcher(model, max_batch=4, max_wait_s=0.02, queue_size=8)
    b.start()
    out = await asyncio.gather(*(b.submit(i) for i in range(4)), return_exceptions=True)
    await b.stop()
    assert out[0] == 0 and out[1] == 1 and out[3] == 3
    assert isinstance(out[2], ValueError) and "bad 2" in str(out[2])


async def test_full_queue_raises_overloaded_at_once() -> None:
    model = SlowDouble()
    b: Batcher[Any, Any] = Batcher(model, max_batch=1, max_wait_s=0.0, queue_size=3)
    b.start()
    model.gate.clear()
    running = asyncio.create_task(b.submit(0))
    await asyncio.sleep(0.05)  # item 0 is now inside the model, the queue is empty
    queued = [asyncio.create_task(b.submit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0.01)
    t0 = time.monotonic()
    with pytest.raises(Overloaded):
        await b.submit(4)
    assert time.monotonic() - t0 < 0.05
    model.gate.set()
    assert await asyncio.gather(running, *queued) == [(i, 2 * i) for i in range(4)]
    await b.stop()
    assert b.stats.overloaded == 1


async def test_latest_frame_wins_per_live_key() -> None:
    model = SlowDouble()
    b: Batcher[Any, Any] = Batcher(model, max_batch=8, max_wait_s=0.0, queue_size=8)
    b.start()
    model.gate.clear()
    running = asyncio.create_task(b.submit(0, key="cam-a", frame_id=0))
    await asyncio.sleep(0.05)
    a1 = asyncio.create_task(b.submit(1, key="cam-a", frame_id=1))
    other = asyncio.create_task(b.submit(100, key="cam-b", frame_id=1))
    await asyncio.sleep(0.01)
    a2 = asyncio.create_task(b.submit(2, key="cam-a", frame_id=2))
    await asyncio.sleep(0.01)
    model.gate.set()
    with pytest.raises(FrameDropped) as info:
        await a1
    assert info.value.frame_id == 1 and info.value.reason == "superseded"
    assert await running == (0, 0)
    assert await a2 == (2, 4)
    assert await other == (100, 200)
    await b.stop()
    assert all(1 not in batch for batch in model.batches)
    assert b.stats.dropped == 1


async def test_cancelled_waiter_removes_its_pending_item() -> None:
    model = SlowDouble()
    b: Batcher[Any, Any] = Batcher(model, max_batch=8, max_wait_s=0.0, queue_size=8)
    b.start()
    model.gate.clear()
    running = asyncio.create_task(b.submit(0))
    await asyncio.sleep(0.05)
    doomed = asyncio.create_task(b.submit(7))
    kept = asyncio.create_task(b.submit(8))
    await asyncio.sleep(0.01)
    doomed.cancel()
    await asyncio.sleep(0.01)
    assert b.pending() == 1
    model.gate.set()
    assert await running == (0, 0)
    assert await kept == (8, 16)
    await b.stop()
    assert all(7 not in batch for batch in model.batches)
    assert b.stats.cancelled == 1


async def test_cancelling_a_running_item_discards_its_result_without_breaking_others() -> None:
    b: Batcher[Any, Any] = Batcher(SlowDouble(delay=0.1), max_batch=2, max_wait_s=0.01, queue_size=8)
    b.start()
    t1 = asyncio.create_task(b.submit(1))
    t2 = asyncio.create_task(b.submit(2))
    await asyncio.sleep(0.05)  # both are in the running batch
    t1.cancel()
    assert await t2 == (2, 4)
    with pytest.raises(asyncio.CancelledError):
        await t1
    assert await b.submit(3) == (3, 6)
    await b.stop()


async def test_stop_fails_queued_items_and_joins_the_thread() -> None:
    model = SlowDouble()
    b: Batcher[Any, Any] = Batcher(model, max_batch=1, max_wait_s=0.0, queue_size=8)
    b.start()
    model.gate.clear()
    running = asyncio.create_task(b.submit(0))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(b.submit(1))
    await asyncio.sleep(0.01)
    stopper = asyncio.create_task(b.stop())
    await asyncio.sleep(0.01)
    model.gate.set()
    await stopper
    assert await running == (0, 0)  # the running batch finishes
    with pytest.raises(ShuttingDown):
        await queued
    with pytest.raises(ShuttingDown):
        await b.submit(2)
    assert not any(t.name == "identix-infer" and t.is_alive() for t in threading.enumerate())


async def test_call_runs_on_the_worker_thread() -> None:
    b: Batcher[Any, Any] = Batcher(SlowDouble(), max_batch=1, max_wait_s=0.0, queue_size=8)
    b.start()
    name = await b.call(lambda: threading.current_thread().name)
    with pytest.raises(ZeroDivisionError):
        await b.call(lambda: 1 / 0)
    await b.stop()
    assert name == "identix-infer"
