"""native_square: the face's pixels at the frame's own resolution, for the fingerprint factor."""

from __future__ import annotations

import numpy as np

from identix_stream.inference.deepfake_features import FP_SIZE, native_square


def _frame(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_square_is_the_frames_own_pixels_around_the_centre() -> None:
    frame = _frame(480, 640)
    sq = native_square(frame, (300.0, 200.0))
    assert sq.shape == (FP_SIZE, FP_SIZE, 3) and sq.flags.c_contiguous
    top, left = 200 - FP_SIZE // 2, 300 - FP_SIZE // 2
    assert np.array_equal(sq, frame[top:top + FP_SIZE, left:left + FP_SIZE])


def test_faces_at_the_border_get_a_square_kept_inside_the_frame() -> None:
    frame = _frame(480, 640)
    assert np.array_equal(native_square(frame, (5.0, 470.0)), frame[480 - FP_SIZE:, :FP_SIZE])
    assert np.array_equal(native_square(frame, (639.0, 0.0)), frame[:FP_SIZE, 640 - FP_SIZE:])


def test_frames_smaller_than_the_square_are_upscaled() -> None:
    small = _frame(100, 120)
    sq = native_square(small, (60.0, 50.0))
    assert sq.shape == (FP_SIZE, FP_SIZE, 3)
