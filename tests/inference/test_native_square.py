"""native_square(s) / reduced_square: the face's pixels at the frame's own resolution (or shrunk), for the
fingerprint factor."""

from __future__ import annotations

import cv2
import numpy as np

from identix_stream.inference.deepfake_features import (
    FP_GRID_STEP,
    FP_SIZE,
    native_square,
    native_squares,
    reduced_square,
)


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


def test_a_reduced_square_is_the_face_region_of_the_shrunk_frame() -> None:
    yy, xx = np.mgrid[0:600, 0:800].astype(np.float32)
    frame = np.dstack([xx / 800 * 255, yy / 600 * 255, np.full_like(xx, 128)]).astype(np.uint8)
    sq = reduced_square(frame, (400.0, 300.0), 2.0)
    assert sq is not None and sq.shape == (FP_SIZE, FP_SIZE, 3)
    whole = cv2.resize(frame, (400, 300), interpolation=cv2.INTER_AREA)
    expected = whole[150 - FP_SIZE // 2:150 + FP_SIZE // 2, 200 - FP_SIZE // 2:200 + FP_SIZE // 2]
    assert np.abs(sq.astype(int) - expected.astype(int)).max() <= 2  # same place, same scale
    edge = reduced_square(frame, (790.0, 10.0), 1.5)  # a face at the corner: kept inside the frame
    assert edge is not None and edge.shape == (FP_SIZE, FP_SIZE, 3)


def test_no_reduced_square_when_the_shrunk_frame_is_smaller_than_the_square() -> None:
    frame = _frame(300, 400)
    assert reduced_square(frame, (200.0, 150.0), 2.0) is None  # 150 px high once halved
    assert reduced_square(frame, (200.0, 150.0), 1.5) is not None  # 200 px


def test_a_photos_squares_form_a_grid_around_the_face() -> None:
    frame = _frame(480, 640)
    squares = native_squares(frame, (300.0, 200.0))
    assert len(squares) == 9 and all(q.shape == (FP_SIZE, FP_SIZE, 3) and q.flags.c_contiguous for q in squares)
    top, left = 200 - FP_SIZE // 2, 300 - FP_SIZE // 2
    for dy in (-FP_GRID_STEP, 0, FP_GRID_STEP):
        for dx in (-FP_GRID_STEP, 0, FP_GRID_STEP):
            expected = frame[top + dy:top + dy + FP_SIZE, left + dx:left + dx + FP_SIZE]
            assert any(np.array_equal(q, expected) for q in squares), (dx, dy)
    assert np.array_equal(squares[4], native_square(frame, (300.0, 200.0)))  # the centre square is one of them


def test_grid_squares_that_meet_at_the_frame_border_are_read_once() -> None:
    frame = _frame(480, 640)
    corner = native_squares(frame, (0.0, 0.0))  # every offset clamps to the same top-left square
    assert len(corner) == 1 and np.array_equal(corner[0], frame[:FP_SIZE, :FP_SIZE])
    edge = native_squares(frame, (320.0, 0.0))  # clamped in y only: three columns
    assert len(edge) == 3
    assert len(native_squares(_frame(FP_SIZE, FP_SIZE), (80.0, 80.0))) == 1  # no room to move
    small = native_squares(_frame(100, 120), (60.0, 50.0))
    assert len(small) == 1 and small[0].shape == (FP_SIZE, FP_SIZE, 3)  # upscaled, like native_square
