"""Which LFW pool photos the blend CNN may train on, and how hard real photos are drawn more often."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from identix_stream.training.data import (
    LFW_POOL_FUSION_RESERVE,
    lfw_pool_fusion_paths,
    lfw_pool_training_paths,
)
from identix_stream.training.train_deepfake import sampling_weights


def _fake_pool(tmp_path: Path, n: int) -> Path:
    pool = tmp_path / "faces" / "lfw_pool"
    pool.mkdir(parents=True)
    for i in range(n):
        (pool / f"Person_{i:05d}.jpg").write_bytes(b"")
    return tmp_path


def test_training_photos_never_include_the_fusion_reserve(tmp_path: Path) -> None:
    root = _fake_pool(tmp_path, 2000)
    lo, hi = LFW_POOL_FUSION_RESERVE
    reserve = set(lfw_pool_fusion_paths(root))
    assert len(reserve) == hi - lo
    every = lfw_pool_training_paths(root, 10_000)
    assert len(every) == 2000 - (hi - lo)
    assert not reserve & set(every)
    # the first photos keep their order, so --pool-faces 1500 is the same set as before the reserve
    assert lfw_pool_training_paths(root, lo) == sorted(root.glob("faces/lfw_pool/*.jpg"))[:lo]


def test_shared_pool_reserve_is_real_photos(shared_data: Path) -> None:
    reserve = lfw_pool_fusion_paths(shared_data)
    assert len(reserve) == LFW_POOL_FUSION_RESERVE[1] - LFW_POOL_FUSION_RESERVE[0]
    assert all(p.is_file() and p.stat().st_size > 1000 for p in reserve)


def test_hard_real_photos_are_drawn_more_often() -> None:
    cum = sampling_weights(2, np.array([0.0, 1.0]), hard_real_weight=3.0)
    assert cum.tolist() == [1.0, 2.0, 3.0, 7.0]
    rng = np.random.default_rng(0)
    draws = np.searchsorted(cum, rng.random(20_000) * cum[-1], side="right")
    counts = np.bincount(draws, minlength=4) / 20_000
    assert counts[3] == pytest.approx(4 / 7, abs=0.02)
    assert counts[0] == pytest.approx(1 / 7, abs=0.02)
    assert draws.max() == 3


def test_without_hard_real_weight_sampling_is_uniform() -> None:
    cum = sampling_weights(3, np.array([0.9, 0.1]), hard_real_weight=0.0)
    assert cum.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
