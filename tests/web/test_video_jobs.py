"""The video job store without a server: limits, reservation expiry, replay memory bound."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from identix_stream.errors import InvalidInput
from identix_stream.web.video_jobs import REPLAY_LABEL_MAPS, RESERVE_TTL_S, JobOptions, JobStore, TooManyUploads


class ReadyAnalyzer:
    """Only what JobStore.create looks at."""

    ready = True


async def make_store(tmp_path: Path, max_active: int = 2) -> JobStore:
    store = JobStore(tmp_path, ttl_s=60, max_active=max_active, max_upload_bytes=1000, max_pixels=10**7,
                     analyzer=ReadyAnalyzer())
    await store.start()
    return store


async def test_limits_expiry_and_cleanup(tmp_path: Path) -> None:
    store = await make_store(tmp_path, max_active=1)
    job = store.create(None, JobOptions())
    with pytest.raises(TooManyUploads):
        store.create(None, JobOptions())
    # a reservation without an upload expires and frees its slot
    assert await store.sweep(now=time.monotonic() + RESERVE_TTL_S + 1) == 1
    assert job.state == "cancelled" and job.id not in store.jobs
    job = store.create(None, JobOptions())
    job.begin_upload()
    assert (job.dir / "upload").is_file()
    with pytest.raises(InvalidInput) as err:
        job.add_bytes(b"\x1a\x45\xdf\xa3" + b"x" * 1000)  # over the 1000-byte cap
    assert err.value.status == 413
    store.fail(job, err.value)
    assert job.state == "failed" and not job.dir.exists()
    await store.close()
    assert not (tmp_path / "uploads").exists()


async def test_replays_keep_recent_label_maps_only(tmp_path: Path) -> None:
    store = await make_store(tmp_path)
    job = store.create(None, JobOptions())
    for i in range(REPLAY_LABEL_MAPS + 5):
        job.emit({"v": 1, "type": "result", "id": i, "label_map": {"encoding": "png", "data": "AAAA"}})
    msgs = [json.loads(m) for m in job.messages]
    assert [m["seq"] for m in msgs] == list(range(1, REPLAY_LABEL_MAPS + 6))
    assert all(m["label_map"] is None for m in msgs[:5])
    assert all(m["label_map"] is not None for m in msgs[5:])
    await store.close()
