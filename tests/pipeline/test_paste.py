"""Pasting parsed crops back into frames: labels land where the crop window was, both paths agree."""

from __future__ import annotations

import cv2
import numpy as np

from identix_stream.core.geometry import crop_window
from identix_stream.pipeline.paste import compose, paste_face


def _probs_with_square(size: int) -> np.ndarray:
    """Skin everywhere in the crop's centre half, a nose square in the middle, background around."""
    probs = np.zeros((11, size, size), np.float32)
    probs[0] = 1.0
    q = size // 4
    probs[0, q:-q, q:-q], probs[1, q:-q, q:-q] = 0.0, 1.0
    c = size // 2
    probs[1, c - 16 : c + 16, c - 16 : c + 16], probs[6, c - 16 : c + 16, c - 16 : c + 16] = 0.0, 1.0
    return cv2.GaussianBlur(probs.transpose(1, 2, 0), (9, 9), 0).transpose(2, 0, 1).copy()


def test_upscaled_paste_interpolates_probabilities_and_matches_reference() -> None:
    size, w, h = 64, 400, 300
    window = crop_window((150, 100, 250, 200), scale=1.35, shift_y=0.0, angle_deg=10.0)  # 135 px > 64: upscaling
    m = window.affine(size)
    probs = _probs_with_square(size)
    labels = probs.argmax(0).astype(np.uint8)
    conf = 1.0 - probs[0]
    smooth = paste_face(labels, conf, m, w, h, probs)
    blocky = paste_face(labels, conf, m, w, h)
    assert smooth is not None and blocky is not None
    label_map, areas = compose([smooth], w, h)
    # reference: interpolate all channels at once, argmax in the frame
    full = cv2.warpAffine(probs.transpose(1, 2, 0), m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    reference = np.where(full.max(2) > 0, full.argmax(2), 0).astype(np.uint8)
    agree = (label_map == reference).mean()
    assert agree > 0.995
    # nose lands at the window centre, and both paths find about the same areas
    cy, cx = round(window.cy), round(window.cx)
    assert label_map[cy, cx] == 6
    _, blocky_areas = compose([blocky], w, h)
    assert abs(areas[0]["nose"] - blocky_areas[0]["nose"]) / blocky_areas[0]["nose"] < 0.1


def test_downscaled_paste_uses_crop_labels() -> None:
    size = 256
    window = crop_window((10, 10, 60, 60), scale=1.35, shift_y=0.0)  # 67 px < 256: downscaling
    probs = _probs_with_square(size)
    labels = probs.argmax(0).astype(np.uint8)
    with_probs = paste_face(labels, 1.0 - probs[0], window.affine(size), 100, 100, probs)
    without = paste_face(labels, 1.0 - probs[0], window.affine(size), 100, 100)
    assert with_probs is not None and without is not None
    assert np.array_equal(with_probs.labels, without.labels)
