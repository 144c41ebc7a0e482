from __future__ import annotations

import math

import numpy as np
import pytest

from identix_stream.core.geometry import crop_window, face_box_from_labels, invert_affine, roll_angle_deg


def _apply(m: np.ndarray, x: float, y: float) -> tuple[float, float]:
    out = m @ np.array([x, y, 1.0])
    return float(out[0]), float(out[1])


def test_window_is_square_around_box() -> None:
    w = crop_window((100, 100, 200, 240), scale=1.5, shift_y=0.0)
    assert w.side == pytest.approx(210.0)
    assert (w.cx, w.cy) == (150.0, 170.0)


def test_affine_maps_window_to_crop() -> None:
    w = crop_window((0, 0, 100, 100), scale=2.0, shift_y=0.0)
    m = w.affine(256)
    assert _apply(m, w.cx, w.cy) == pytest.approx((128.0, 128.0))
    assert _apply(m, w.cx - w.side / 2, w.cy - w.side / 2) == pytest.approx((0.0, 0.0))


@pytest.mark.parametrize("angle", [-30.0, 0.0, 12.5, 30.0])
@pytest.mark.parametrize("flip", [False, True])
def test_inverse_round_trip(angle: float, flip: bool) -> None:
    w = crop_window((40, 60, 140, 190), angle_deg=angle)
    m = w.affine(256, flip=flip)
    inv = invert_affine(m)
    for pt in [(0.0, 0.0), (77.0, 31.0), (256.0, 128.0)]:
        assert _apply(m, *_apply(inv, *pt)) == pytest.approx(pt)


def test_flip_mirrors_crop() -> None:
    m = crop_window((0, 0, 100, 100), scale=1.0, shift_y=0.0).affine(100, flip=True)
    assert _apply(m, 0.0, 50.0) == pytest.approx((100.0, 50.0))


def test_face_box_from_labels() -> None:
    labels = np.zeros((10, 10), np.uint8)
    labels[2:5, 3:7] = 1
    assert face_box_from_labels(labels, (1,)) == (3.0, 2.0, 7.0, 5.0)
    assert face_box_from_labels(labels, (2,)) is None


def test_roll_angle() -> None:
    # person's left eye on the image right, lower than the right eye -> positive roll
    assert roll_angle_deg((60.0, 55.0), (40.0, 45.0)) == pytest.approx(math.degrees(math.atan2(10, 20)))
