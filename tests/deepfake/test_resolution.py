"""Evidence from small faces counts less: the fitted reliability table, how the fusion applies it, and
the pure parts of its fit (training/fit_resolution.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from identix_stream.core import deepfake_fusion as fusion
from identix_stream.core.deepfake_fusion import (
    FUSION_GROUPS,
    RESOLUTION_RELIABILITY,
    frame_log_odds,
    reliability,
    single_image_estimate,
)
from identix_stream.training.fit_resolution import FULL_FACE_PX, at_face_size, best_scale, monotone_knots

FAKE_SWAP = {"blend": 0.97, "gan_fingerprint": 0.2, "boundary": 0.8}
FAKE_GAN = {"blend": 0.05, "gan_fingerprint": 0.999, "boundary": 0.45}


def test_the_shipped_table_is_full_trust_for_large_faces_and_never_rises_as_faces_shrink() -> None:
    assert set(RESOLUTION_RELIABILITY) == set(FUSION_GROUPS)
    for group, knots in RESOLUTION_RELIABILITY.items():
        sizes = [k[0] for k in knots]
        assert sizes == sorted(sizes) and knots[-1] == (round(FULL_FACE_PX), 1.0)
        values = [reliability(group, px) for px in (8, 20, 28, 40, 56, 72, 96, 128, 177, 400, 4000)]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert values == sorted(values) and values[-1] == 1.0
        assert reliability(group, None) == 1.0 and reliability(group, math.nan) == 1.0


def test_the_fusion_scales_each_group_by_its_reliability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fusion.RESOLUTION_RELIABILITY, "swap", ((40.0, 0.25), (177.0, 1.0)))
    monkeypatch.delitem(fusion.FUSION_GROUPS, "synthetic")  # the frame is the swap group alone
    only_swap = {"blend": 0.9, "boundary": 0.7}
    full, parts_full = frame_log_odds(only_swap, face_px=300)
    assert (full, parts_full) == frame_log_odds(only_swap)  # unknown size: full trust
    small, parts_small = frame_log_odds(only_swap, face_px=40)
    assert small == pytest.approx(full / 4)
    assert parts_small["blend"] == pytest.approx(parts_full["blend"] / 4)
    halfway, _ = frame_log_odds(only_swap, face_px=(40 + 177) / 2)
    assert halfway == pytest.approx(full * 0.625)
    # a photo: the same factors decide for a large face and not for a tiny one
    strong = {"blend": 0.98, "boundary": 0.9}
    assert single_image_estimate(strong, face_px=300).state == "likely_fake"
    assert single_image_estimate(strong, face_px=40).state == "uncertain"


@pytest.mark.parametrize("factors", [FAKE_SWAP, FAKE_GAN])
def test_evidence_of_a_tiny_face_is_never_stronger_than_of_a_large_one(factors: dict[str, float]) -> None:
    big = single_image_estimate(factors, face_px=300)
    tiny = single_image_estimate(factors, face_px=24)
    assert big.p_fake is not None and tiny.p_fake is not None
    assert abs(tiny.p_fake - 0.5) <= abs(big.p_fake - 0.5) + 1e-9


def test_best_scale_recovers_the_scale_of_the_labels() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-0.5 * x))).astype(float)
    assert best_scale(x, y) == pytest.approx(0.5, abs=0.08)
    assert best_scale(x, rng.random(4000) < 0.5) < 0.1  # labels unrelated to the logits: no trust


def test_knots_are_relative_capped_and_monotone() -> None:
    knots = monotone_knots({128: 0.95, 96: 1.02, 72: 0.7, 56: 0.8, 40: 0.4}, full=0.95)
    assert knots == [(40.0, 0.421), (56.0, 0.737), (72.0, 0.737), (96.0, 1.0), (128.0, 1.0),
                     (round(FULL_FACE_PX), 1.0)]


def test_a_face_shrunk_and_compressed_loses_fine_detail() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    small = at_face_size(img, 40 / FULL_FACE_PX, 26)
    same = at_face_size(img, 1.0, 20)
    assert small.shape == img.shape == same.shape and small.dtype == np.uint8

    def detail(a: np.ndarray) -> float:
        g = a.astype(np.float64).mean(axis=2)
        return float(np.abs(np.diff(g, axis=1)).mean())

    assert detail(small) < 0.3 * detail(img) < detail(same)
