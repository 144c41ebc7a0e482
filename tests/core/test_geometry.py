from __future__ import annotations

import math

import numpy as np
import pytest

from identix_stream.core.geometry import (
    crop_window,
    face_box_from_labels,
    invert_affine,
    roll_angle_deg,
    similarity_from_points,
    wrap_deg,
)


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


def test_similarity_from_points_recovers_rotation_scale_shift() -> None:
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 100, (5, 2))
    ang = math.radians(17.0)
    truth = np.array([[1.3 * math.cos(ang), -1.3 * math.sin(ang), 12.0],
                      [1.3 * math.sin(ang), 1.3 * math.cos(ang), -7.0]])
    dst = src @ truth[:, :2].T + truth[:, 2]
    np.testing.assert_allclose(similarity_from_points(src, dst), truth, atol=1e-9)


def test_similarity_from_points_never_mirrors() -> None:
    src = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    dst = src * np.array([-1.0, 1.0])  # a mirror image: the best proper similarity is not a reflection
    m = similarity_from_points(src, dst)
    assert np.linalg.det(m[:, :2]) > 0


def test_similarity_from_points_rejects_degenerate_input() -> None:
    with pytest.raises(ValueError, match="coincide"):
        similarity_from_points(np.ones((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="matching"):
        similarity_from_points(np.zeros((1, 2)), np.zeros((1, 2)))


@pytest.mark.parametrize(("angle", "expected"), [(0.0, (50.0, 42.0)), (90.0, (58.0, 50.0)), (180.0, (50.0, 58.0)),
                                                 (-90.0, (42.0, 50.0))])
def test_window_moves_towards_the_forehead_along_the_face_axis(angle: float, expected: tuple[float, float]) -> None:
    """The window sits ``shift_y`` box heights above the box centre, "above" being the face's own up."""
    w = crop_window((0, 0, 100, 100), scale=1.0, shift_y=0.08, angle_deg=angle)
    assert (w.cx, w.cy) == pytest.approx(expected)
    # and the window's centre lies that far up the crop: straight above the box centre in the crop
    m = w.affine(256)
    box_centre_in_crop = m @ np.array([50.0, 50.0, 1.0])
    assert box_centre_in_crop == pytest.approx([128.0, 128.0 + 0.08 * 256], abs=1e-6)


def test_wrap_deg() -> None:
    assert [wrap_deg(a) for a in (0.0, 190.0, -190.0, 360.0, 180.0, 540.0)] == [0.0, -170.0, 170.0, 0.0, -180.0, -180.0]
