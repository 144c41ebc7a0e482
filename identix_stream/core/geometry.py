"""Crop geometry shared by training and the service, so the model sees faces framed the same way.

A *face box* is the box from the top of the forehead to the chin and cheek to cheek (ears and hair
excluded); detectors whose boxes are framed differently convert theirs with a calibration before
calling :func:`crop_window`. The crop is a square around it, large enough to keep the hair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Measured on CelebAMask-HQ (median over 300 masks): the 512 px images frame a face box of
# 276 x 383 px at 1.34 x its longer side, centred 0.07 x its height above the box centre.
CROP_SCALE = 1.35
CROP_SHIFT_Y = 0.07
# The service frames detected faces a little wider than the training centre (training jitters the
# scale over 1.15-1.75): measured with models/face_parser.pt through the detect path on held-out
# data, 1.35 / 1.45 / 1.5 / 1.6 gave CelebAMask mean F1 0.813 / 0.808 / 0.804 / 0.795 and LFW Part
# Labels pixel accuracy 0.924 / 0.933 / 0.936 / 0.940 (hair and context outside a tight crop).
SERVICE_CROP_SCALE = 1.45


@dataclass(frozen=True, slots=True)
class CropWindow:
    """A square window in image coordinates (centre and side, in pixels) with an in-plane rotation."""

    cx: float
    cy: float
    side: float
    angle_deg: float = 0.0

    def affine(self, out_size: int, flip: bool = False) -> np.ndarray:
        """2x3 matrix mapping image coordinates to crop coordinates of an out_size square."""
        scale = out_size / self.side
        theta = math.radians(self.angle_deg)
        cos_t, sin_t = math.cos(theta) * scale, math.sin(theta) * scale
        # rotate about the window centre, then move it to the crop centre
        half = out_size / 2.0
        m = np.array(
            [
                [cos_t, sin_t, half - cos_t * self.cx - sin_t * self.cy],
                [-sin_t, cos_t, half + sin_t * self.cx - cos_t * self.cy],
            ],
            dtype=np.float64,
        )
        if flip:
            m[0, :] = -m[0, :]
            m[0, 2] += out_size
        return m


def crop_window(
    face_box: tuple[float, float, float, float] | np.ndarray,
    scale: float = CROP_SCALE,
    shift_y: float = CROP_SHIFT_Y,
    angle_deg: float = 0.0,
) -> CropWindow:
    """The square window the parser sees for a face box (x1, y1, x2, y2, its sides along the face's own
    axes) rolled by ``angle_deg``: centred ``shift_y`` box heights above the box centre, "above" along
    the face's own up axis (a face upside down gets its window moved towards the image bottom)."""
    x1, y1, x2, y2 = (float(v) for v in face_box)
    w, h = x2 - x1, y2 - y1
    side = scale * max(w, h, 1.0)
    theta = math.radians(angle_deg)
    up_x, up_y = math.sin(theta), -math.cos(theta)  # the crop's upward direction in the image
    cx = (x1 + x2) / 2.0 + shift_y * h * up_x
    cy = (y1 + y2) / 2.0 + shift_y * h * up_y
    return CropWindow(cx, cy, side, angle_deg)


def box_side(box: tuple[float, float, float, float]) -> float:
    """The longer side of a box: the face size the service crops by (crop side = scale x this)."""
    x0, y0, x1, y1 = box
    return max(x1 - x0, y1 - y0)


def box_centre(box: tuple[float, float, float, float]) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2, (y0 + y1) / 2


def wrap_deg(angle: float) -> float:
    """An angle in degrees brought into [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def face_box_from_labels(labels: np.ndarray, face_ids: tuple[int, ...]) -> tuple[float, float, float, float] | None:
    """Bounding box of the given label ids, or None if none is present."""
    ys, xs = np.nonzero(np.isin(labels, face_ids))
    if xs.size == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def roll_angle_deg(left_eye: tuple[float, float], right_eye: tuple[float, float]) -> float:
    """In-plane roll from the two eye centres (person's left/right), in degrees, image y downwards."""
    # the person's right eye is on the image left
    dx = left_eye[0] - right_eye[0]
    dy = left_eye[1] - right_eye[1]
    return math.degrees(math.atan2(dy, dx))


def unturn_point(x: float, y: float, turns: int, width: int, height: int) -> tuple[float, float]:
    """A point of ``np.rot90(image, turns)`` in the coordinates of ``image`` (width x height)."""
    turns %= 4
    if turns == 1:
        return width - y, x
    if turns == 2:
        return width - x, height - y
    if turns == 3:
        return y, height - x
    return x, y


def turn_point(x: float, y: float, turns: int, width: int, height: int) -> tuple[float, float]:
    """A point of ``image`` (width x height) in the coordinates of ``np.rot90(image, turns)``: the image
    is what turning that copy by the remaining quarter turns gives back."""
    turned_w, turned_h = (height, width) if turns % 2 else (width, height)
    return unturn_point(x, y, -turns % 4, turned_w, turned_h)


def turns_to_upright(roll_deg: float) -> int:
    """How many ``np.rot90`` quarter turns bring a face with this roll nearest to upright."""
    return round(-roll_deg / 90.0) % 4


def similarity_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 rotation + uniform scale + shift mapping ``src`` points onto ``dst`` in the least-squares
    sense (Umeyama 1991, reflections excluded). Both are (N, 2) with N >= 2 distinct points."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two matching (N>=2, 2) point arrays, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = float((s0**2).sum() / len(src))
    if var_s < 1e-12:
        raise ValueError("source points coincide; a similarity is undefined")
    u, sig, vt = np.linalg.svd(d0.T @ s0 / len(src))
    fix = np.diag([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) > 0 else -1.0])
    rot = u @ fix @ vt
    scale = float(np.trace(np.diag(sig) @ fix)) / var_s
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]])
