"""Cropping faces the way the parser was trained, and pasting parsed crops back into the frame."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from identix_stream.core.classes import CLASS_NAMES, NUM_CLASSES
from identix_stream.core.geometry import CropWindow


def crop_face(image_bgr: np.ndarray, window: CropWindow, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The size x size BGR crop of ``window`` (rotated, black outside the frame) and its affine."""
    m = window.affine(size)
    crop = cv2.warpAffine(image_bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, m


@dataclass(frozen=True, slots=True)
class Pasted:
    """One face's labels in frame coordinates, limited to the region ``(x0, y0, x1, y1)``."""

    x0: int
    y0: int
    labels: np.ndarray  # uint8 (y1 - y0, x1 - x0)
    confidence: np.ndarray  # float32, 1 - p(background), 0 outside the crop


def paste_face(
    labels: np.ndarray, confidence: np.ndarray, m: np.ndarray, width: int, height: int,
    probs: np.ndarray | None = None,
) -> Pasted | None:
    """Warp a crop's labels/confidence (crop coordinates, affine ``m`` frame->crop) into the frame.

    With ``probs`` (n_classes, S, S) and a face larger in the frame than in the crop, the class
    probabilities are interpolated and the labels taken in frame resolution: smooth edges for thin
    parts (brows, eyes, lips) instead of the crop's pixel staircase, at a few ms per face.
    """
    size = labels.shape[0]
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64) @ inv.T
    x0 = max(0, int(np.floor(corners[:, 0].min())))
    y0 = max(0, int(np.floor(corners[:, 1].min())))
    x1 = min(width, int(np.ceil(corners[:, 0].max())))
    y1 = min(height, int(np.ceil(corners[:, 1].max())))
    if x1 <= x0 or y1 <= y0:
        return None
    # m maps frame -> crop; shift it so it maps region coordinates -> crop for WARP_INVERSE_MAP
    m_roi = m.copy()
    m_roi[:, 2] = m[:, :2] @ np.array([x0, y0], dtype=np.float64) + m[:, 2]
    dsize = (x1 - x0, y1 - y0)
    upscales = abs(float(np.linalg.det(m[:, :2]))) < 1.0
    if probs is not None and upscales:
        lab = _argmax_warped(probs, m_roi, dsize)
    else:
        flags_nn = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        lab = cv2.warpAffine(labels, m_roi, dsize, flags=flags_nn, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    conf = cv2.warpAffine(
        confidence, m_roi, dsize, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )
    return Pasted(x0, y0, lab, conf)


def _argmax_warped(probs: np.ndarray, m_roi: np.ndarray, dsize: tuple[int, int]) -> np.ndarray:
    """Labels of the bilinearly warped class probabilities (channel by channel: cheaper than HWC argmax)."""
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    best = cv2.warpAffine(probs[0], m_roi, dsize, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
    lab = np.zeros(best.shape, np.uint8)
    for c in range(1, probs.shape[0]):
        p = cv2.warpAffine(probs[c], m_roi, dsize, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        win = p > best
        best = np.where(win, p, best)
        lab[win] = c
    return lab


def compose(pasted: list[Pasted | None], width: int, height: int) -> tuple[np.ndarray, list[dict[str, int]]]:
    """Frame label map where overlapping faces go to the more confident one, and each face's class areas."""
    label_map = np.zeros((height, width), np.uint8)
    best = np.zeros((height, width), np.float32)
    owner = np.full((height, width), -1, np.int16)
    for i, p in enumerate(pasted):
        if p is None:
            continue
        h, w = p.labels.shape
        sl = (slice(p.y0, p.y0 + h), slice(p.x0, p.x0 + w))
        win = (p.confidence > best[sl]) & (p.labels > 0)
        label_map[sl][win] = p.labels[win]
        best[sl][win] = p.confidence[win]
        owner[sl][win] = i
    areas: list[dict[str, int]] = []
    for i, p in enumerate(pasted):
        if p is None:
            areas.append({})
            continue
        h, w = p.labels.shape
        sl = (slice(p.y0, p.y0 + h), slice(p.x0, p.x0 + w))
        mine = label_map[sl][owner[sl] == i]
        counts = np.bincount(mine, minlength=NUM_CLASSES)
        areas.append({CLASS_NAMES[c]: int(counts[c]) for c in range(1, NUM_CLASSES) if counts[c] > 0})
    return label_map, areas
