"""Whether a parsed face crop shows the face upright, and which way to turn a crop that does not.

The detector finds the roll of a face from its eye keypoints, but on a face turned by 90 or 180
degrees (a photo stored sideways without an EXIF orientation, a person lying down) those keypoints
are guesses, so the crop is not upright. Rotated copies of 10 real `gan_vs_real_val` photos: 12 of
30 ended `likely_fake` (blend 0.5-0.98). The parse still shows where the brows, eyes and mouth
are: in upright crops the mouth lies within 22 degrees of straight below them (234 faces of the
check photos), in such crops often 30-65 degrees off.

Orientation search (photos only, ``pipeline/orientation.py``), measured 2026-11-29 (session 15) on
the real `gan_vs_real_val` photos and the held-out CelebAMask split, each also turned by 90, 180 and
270 degrees. BlazeFace's roll was right for 0 of 144 upside-down faces and, for faces turned 90
degrees, off by a roughly uniform 0-45 degrees besides the quarter turn. An upright crop shows the
most face parts: in a first probe the quarter turn with the most part pixels was the right one for
152/154 upright, 138/147, 138/144 and 142/150 turned faces, and two steps along the parsed eye line
brought 135 of 147 faces turned 90 degrees within 10 degrees of upright (36 with the turn alone).
The shipped search compares ``part_ratio`` (parts over all face pixels), which a tighter crop does
not inflate, and switches only for SWITCH_MARGIN times the ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from identix_stream.core.classes import L_BROW, L_EYE, L_LIP, MOUTH, NOSE, R_BROW, R_EYE, SKIN, U_LIP
from identix_stream.core.deepfake_fusion import MOUTH_PARTS, class_moments
from identix_stream.core.geometry import roll_angle_deg, wrap_deg

UPPER_PARTS = (L_BROW, R_BROW, L_EYE, R_EYE)
FACE_PARTS = (L_BROW, R_BROW, L_EYE, R_EYE, NOSE, U_LIP, MOUTH, L_LIP)
MIN_PART_PIXELS = 30  # fewer pixels of either side: the layout is unknown
MIN_EYE_PIXELS = 15  # fewer pixels of either eye: no eye line
MAX_TILT_DEG = 30.0
QUARTER_TURNS_DEG = (90.0, 180.0, 270.0)  # tried besides the detector's own roll
# a view replaces the current one only with this many times its part ratio: upright faces seen from
# the turned copies' detections parse about as well (ratios within a few %), and switching on noise
# traded the calibrated framing for the turned detector's tighter boxes (hair F1 0.91 -> 0.88)
SWITCH_MARGIN = 1.5
REFINE_MIN_DEG = 8.0  # eye-line residuals smaller than this are left alone
# ... and for a face that kept the detector's view, residuals under this: refining every face by 8
# degrees moved a real gan_vs_real_val photo's blend 0.16 -> 0.35; not refining kept two crops of
# rotated real photos 45 degrees off (blend 0.95-0.96, likely_fake)
REFINE_KEPT_MIN_DEG = 20.0
REFINE_STEPS = 2
REFINE_KEEP_SHARE = 0.9  # a refined crop is kept only if it shows at least this share of the parts
# Faces found only in turned copies of the 13 group photos and the 4x104 held-out CelebAMask copies:
# 5 true faces with part shares 0.032-0.044, one hand at 0.023, the rest far below
FOUND_TURNED_MIN_SHARE = 0.03
REDETECT_BEYOND_DEG = 20.0  # a crop this far from the detector's roll gets its box from a new detection
# A view whose parse shows both eyes and parts laid out within this of level counts as "level". When
# the current view is not level, a level candidate wins without SWITCH_MARGIN if its part ratio is at
# least the current one's: on a close-up the parser can fill a crop turned a quarter with parts almost
# as well (a 300-px real photo turned 90 degrees: 0.118 wrong vs 0.153 upright, tilt 28 vs 7 degrees)
LEVEL_MAX_DEG = 10.0


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


def part_share(crop_labels: np.ndarray) -> float:
    """Share of the crop's pixels parsed as brows, eyes, nose, lips or mouth."""
    counts = np.bincount(crop_labels.ravel(), minlength=256)
    return float(counts[list(FACE_PARTS)].sum()) / max(crop_labels.size, 1)


def part_ratio(crop_labels: np.ndarray) -> float:
    """Face-part pixels over all face pixels (skin and parts): how much of the parsed face is brows, eyes,
    nose and mouth. Unlike ``part_share`` it does not grow when a tighter crop makes the face bigger."""
    counts = np.bincount(crop_labels.ravel(), minlength=256)
    parts = float(counts[list(FACE_PARTS)].sum())
    return parts / max(parts + float(counts[SKIN]), 1.0)


def shows_upright_face(crop_labels: np.ndarray) -> bool:
    """True when the parse shows face parts laid out upright, at least FOUND_TURNED_MIN_SHARE of the crop:
    the test for a face only a turned copy of a photo showed the detector."""
    tilt = layout_tilt_deg(crop_labels)
    return tilt is not None and abs(tilt) <= MAX_TILT_DEG and part_share(crop_labels) >= FOUND_TURNED_MIN_SHARE


def best_turn(scores: Sequence[float]) -> int:
    """Index of the candidate crop with the highest score, e.g. its ``part_ratio`` (the first on ties)."""
    if not scores:
        raise ValueError("no candidate crops to choose from")
    return int(np.argmax(np.asarray(scores, dtype=np.float64)))


def is_level_face(crop_labels: np.ndarray) -> bool:
    """Both eyes parsed and the parts laid out within LEVEL_MAX_DEG of upright."""
    tilt = layout_tilt_deg(crop_labels)
    return tilt is not None and abs(tilt) <= LEVEL_MAX_DEG and eye_line_residual_deg(crop_labels) is not None


def choose_view(ratios: Sequence[float], level: Sequence[bool]) -> int:
    """Index of the view to keep, the current view first (index 0): the one with the highest part ratio
    if it has SWITCH_MARGIN times the current one's; else, when the current view is not level, the level
    view with the highest ratio that is at least the current one's; else the current view."""
    if len(ratios) != len(level) or not ratios:
        raise ValueError(f"need one level flag per candidate view, got {len(ratios)} ratios, {len(level)} flags")
    best = best_turn(ratios)
    if best and ratios[best] >= SWITCH_MARGIN * ratios[0]:
        return best
    if level[0]:
        return 0
    tied = [k for k in range(1, len(ratios)) if level[k] and ratios[k] >= ratios[0]]
    return max(tied, key=lambda k: ratios[k]) if tied else 0


def eye_line_residual_deg(crop_labels: np.ndarray) -> float | None:
    """The roll still left in a crop, from the parsed eye centres (the crop's roll plus this is the
    face's); None when either eye shows fewer than MIN_EYE_PIXELS."""
    counts, sum_x, sum_y = class_moments(crop_labels)
    if counts[L_EYE] < MIN_EYE_PIXELS or counts[R_EYE] < MIN_EYE_PIXELS:
        return None
    left = (float(sum_x[L_EYE] / counts[L_EYE]), float(sum_y[L_EYE] / counts[L_EYE]))
    right = (float(sum_x[R_EYE] / counts[R_EYE]), float(sum_y[R_EYE] / counts[R_EYE]))
    return roll_angle_deg(left, right)


# Streams (live, uploaded videos) get no per-face orientation search on every frame (three more
# parses a frame). A video stored upside down without rotation metadata is the case that needs one:
# BlazeFace reports its faces as upright (session 15: right for 0 of 144 upside-down photo faces), so
# every crop is cut upside down and no factor is read, or the blend CNN reads the badly framed crop
# (real talking heads turned 180 degrees: p 0.36 / 0.54 after 3 s, 0.16 / 0.08 upright). So the photo
# search (pipeline/orientation.py) runs on a stream's first STREAM_TURN_FACES faces; when most of them
# are upright only after a half turn, the stream's faces are detected in the frame turned by 180
# degrees from then on (boxes mapped back): p 0.19 / 0.11, both likely_real. Sideways streams (90 or
# 270 degrees) are left to the detector: its keypoints give roughly the right roll there, and detecting
# in the turned frame measured mixed over 10 turned real clips (highest p 0.74 -> 0.59, but three
# clips higher and one no longer likely_real).
STREAM_TURN_FACES = 3
STREAM_TURN_MIN_DEG = 135.0  # a face counts as upside down only this far from upright
HALF_TURN = 2  # np.rot90 quarter turns


class StreamOrientation:
    """How many ``np.rot90`` turns (0, or 2 for a stream stored upside down) bring a stream's faces
    upright, decided once by a majority of its first STREAM_TURN_FACES faces' upright rolls (in frame
    coordinates)."""

    def __init__(self) -> None:
        self.turns = 0
        self._upside_down: list[bool] = []  # one vote per face read so far

    @property
    def decided(self) -> bool:
        return len(self._upside_down) >= STREAM_TURN_FACES

    @property
    def faces_needed(self) -> int:
        """How many more faces the decision waits for (0 once decided)."""
        return max(0, STREAM_TURN_FACES - len(self._upside_down))

    def observe(self, upright_roll_deg: float) -> bool:
        """Count one face's roll as the orientation search found it; True when this decides a turn."""
        if self.decided:
            return False
        self._upside_down.append(abs(wrap_deg(upright_roll_deg)) >= STREAM_TURN_MIN_DEG)
        if not self.decided:
            return False
        if 2 * sum(self._upside_down) > len(self._upside_down):
            self.turns = HALF_TURN
        return self.turns != 0
