"""Fit RESOLUTION_RELIABILITY (core/deepfake_fusion.py): how far each fusion group's log-odds can be
trusted for a face of a given size in the source.

A small face reaches the factors upsampled from few pixels that the camera or codec compressed at
that small size. We simulate that on the fusion's own fit faces: each crop (and each square the
fingerprint reads) is shrunk so that its face spans ``face_px`` pixels, sent through H.264 at a
random CRF 20-30 at that size, and upsampled back as the service upsamples a small face; then it is
parsed and scored again. Per size and group the scale ``r`` of the group's log-odds that maximises
the likelihood of the labels is found, divided by the same at full size (compressed the same way, so
the scale measures size alone), capped at 1 and made non-increasing as faces shrink. The squares are
shrunk by the crop's factor, an approximation: the service reads the fingerprint's square at native
resolution, where a small face takes up less of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from identix_stream.core.deepfake_fusion import group_log_odds
from identix_stream.core.deepfake_metrics import roc_auc
from identix_stream.core.geometry import SERVICE_CROP_SCALE
from identix_stream.training.video_crops import h264_roundtrip

log = logging.getLogger(__name__)

CROP = 256
FULL_FACE_PX = CROP / SERVICE_CROP_SCALE  # the face-box side in a service crop: no resampling at or above it
SIZES = (128, 96, 72, 56, 40, 28)
CRF_RANGE = (20, 30)
MIN_SIDE = 16  # the encoder's smallest frame we use


@dataclass(frozen=True)
class ScoredSet:
    """Faces of one class as the scorer takes them: crops, and for reals and synthetic faces the
    square the fingerprint reads (None: the crop's own centre). Reals count in every group; fakes
    only in the groups named in ``fake_for`` (swaps for "swap", generated faces for "synthetic")."""
    crops: list[np.ndarray]
    squares: list[np.ndarray] | None
    fake_for: tuple[str, ...] = ()


def at_face_size(img: np.ndarray, factor: float, crf: int) -> np.ndarray:
    """``img`` as if captured ``factor`` times smaller: shrunk, H.264-compressed at that size and
    upsampled back to its own size."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(MIN_SIDE, round(w * factor)), max(MIN_SIDE, round(h * factor))),
                       interpolation=cv2.INTER_AREA)
    small = h264_roundtrip(small, crf)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


def best_scale(logits: np.ndarray, labels: np.ndarray, grid: np.ndarray | None = None) -> float:
    """The r >= 0 that maximises the log-likelihood of ``labels`` under sigmoid(r * logits)."""
    grid = np.linspace(0.0, 1.5, 151) if grid is None else grid
    x, y = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
    ll = [float(np.sum(-y * np.logaddexp(0.0, -r * x) - (1 - y) * np.logaddexp(0.0, r * x))) for r in grid]
    return float(grid[int(np.argmax(ll))])


def monotone_knots(scales: dict[int, float], full: float) -> list[tuple[float, float]]:
    """Knots (face_px, reliability) from per-size scales: relative to the full-size scale, at most 1,
    never rising as faces shrink; ends with (FULL_FACE_PX, 1)."""
    knots: list[tuple[float, float]] = [(round(FULL_FACE_PX), 1.0)]
    cap = 1.0
    for size in sorted(scales, reverse=True):
        cap = min(cap, scales[size] / full if full > 0 else 1.0)
        knots.append((float(size), round(cap, 3)))
    return sorted(knots)


def fit_resolution(scorer: Any, runtime: Any, groups: dict[str, tuple[float, dict[str, float]]],
                   sets: list[ScoredSet], seed: int = 0) -> dict[str, Any]:
    """Per group: knots for RESOLUTION_RELIABILITY, and per size the fitted scale and AUC."""
    rng = np.random.default_rng(seed)
    per_size: dict[int, dict[str, dict[str, float]]] = {}
    for size in (0, *SIZES):  # 0: full size, compressed like the others
        factor = 1.0 if size == 0 else size / FULL_FACE_PX
        logits: dict[str, list[float]] = {g: [] for g in groups}
        ys: dict[str, list[int]] = {g: [] for g in groups}
        for s in sets:
            crops = [at_face_size(c, factor, int(rng.integers(*CRF_RANGE, endpoint=True))) for c in s.crops]
            sources = None
            if s.squares is not None:
                squares = [at_face_size(q, factor, int(rng.integers(*CRF_RANGE, endpoint=True))) for q in s.squares]
                sources = [(q, (q.shape[1] / 2, q.shape[0] / 2)) for q in squares]
            rows = scorer.score(crops, runtime.labels(crops), sources)
            for g, (bias, weights) in groups.items():
                if s.fake_for and g not in s.fake_for:
                    continue
                for r in rows:
                    found = group_log_odds(r, bias, weights)
                    if found is not None:
                        logits[g].append(found[0])
                        ys[g].append(1 if s.fake_for else 0)
        per_size[size] = {}
        for g in groups:
            x, y = np.array(logits[g]), np.array(ys[g])
            if (y == 0).any() and (y == 1).any():
                per_size[size][g] = {"scale": best_scale(x, y), "auc": round(roc_auc(x[y == 0], x[y == 1]), 4)}
        log.info("face %s px: %s", size or "full", per_size[size])
    knots = {g: monotone_knots({s: per_size[s][g]["scale"] for s in SIZES if g in per_size[s]},
                               per_size[0][g]["scale"]) for g in groups if g in per_size[0]}
    return {"knots": knots, "per_size": {str(k or "full"): v for k, v in per_size.items()}}
