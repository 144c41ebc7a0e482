"""Whether a parsed face crop shows the face upright, the way every deepfake model was trained.

The detector finds the roll of a face from its eye keypoints, but on a face turned by 90 or 180
degrees (a photo stored sideways without an EXIF orientation, a person lying down) those keypoints
are guesses, so the crop is not upright. Rotated copies of 10 real `gan_vs_real_val` photos: 12 of
30 ended `likely_fake` (blend 0.5-0.98). The parse still shows where the brows, eyes and mouth
are: in upright crops the mouth lies within 22 degrees of straight below them (234 faces of the
check photos), in such crops often 30-65 degrees off.
"""

from __future__ import annotations

import math

import numpy as np

from identix_stream.core.classes import L_BROW, L_EYE, R_BROW, R_EYE
from identix_stream.core.deepfake_fusion import MOUTH_PARTS, class_moments

UPPER_PARTS = (L_BROW, R_BROW, L_EYE, R_EYE)
MIN_PART_PIXELS = 30  # fewer pixels of either side: the layout is unknown
MAX_TILT_DEG = 30.0


def layout_tilt_deg(crop_labels: np.ndarray) -> float | None:
    """Angle (degrees, signed) between the crop's downward axis and the line from the brows/eyes to the
    mouth; None when the parse shows too little of either."""
    counts, sum_x, sum_y = class_moments(crop_labels)
    upper, mouth = list(UPPER_PARTS), list(MOUTH_PARTS)
    n_upper, n_mouth = counts[upper].sum(), counts[mouth].sum()
    if n_upper < MIN_PART_PIXELS or n_mouth < MIN_PART_PIXELS:
        return None
    dx = sum_x[mouth].sum() / n_mouth - sum_x[upper].sum() / n_upper
    dy = sum_y[mouth].sum() / n_mouth - sum_y[upper].sum() / n_upper
    return math.degrees(math.atan2(float(dx), float(dy)))


def looks_upright(crop_labels: np.ndarray) -> bool:
    """False only when the parse shows the face turned more than MAX_TILT_DEG in the crop."""
    tilt = layout_tilt_deg(crop_labels)
    return tilt is None or abs(tilt) <= MAX_TILT_DEG
