"""core/face_upright.py: whether a parsed crop shows the face upright and how to turn it (pure, synthetic parses)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from identix_stream.core.classes import L_BROW, L_EYE, L_LIP, NOSE, R_EYE, SKIN, U_LIP
from identix_stream.core.face_upright import (
    FOUND_TURNED_MIN_SHARE,
    LEVEL_MAX_DEG,
    MAX_TILT_DEG,
    SWITCH_MARGIN,
    best_turn,
    choose_view,
    eye_line_residual_deg,
    is_level_face,
    layout_tilt_deg,
    looks_upright,
    part_ratio,
    part_share,
    shows_upright_face,
)


def _parse(mouth_shift_x: int = 0) -> np.ndarray:
    """A 256 crop's labels: skin, two eyes at y 100, nose, lips at y 180 (shifted sideways if asked)."""
    lab = np.zeros((256, 256), np.uint8)
    lab[40:230, 50:206] = SKIN
    lab[95:105, 80:110] = R_EYE
    lab[95:105, 146:176] = L_EYE
    lab[110:150, 118:138] = NOSE
    lab[170:180, 100 + mouth_shift_x:156 + mouth_shift_x] = U_LIP
    lab[182:192, 100 + mouth_shift_x:156 + mouth_shift_x] = L_LIP
    return lab


def test_an_upright_face_has_no_tilt() -> None:
    assert layout_tilt_deg(_parse()) == pytest.approx(0.0, abs=1.0)
    assert looks_upright(_parse())


@pytest.mark.parametrize(("turns", "expected"), [(1, 90.0), (2, 180.0), (3, -90.0)])
def test_a_face_turned_by_quarter_turns_reads_as_turned(turns: int, expected: float) -> None:
    tilt = layout_tilt_deg(np.rot90(_parse(), turns))
    assert tilt is not None and abs(abs(tilt) - abs(expected)) < 2.0
    assert not looks_upright(np.rot90(_parse(), turns))


def test_a_tilted_layout_is_refused_only_beyond_the_limit() -> None:
    slight = _parse(mouth_shift_x=25)  # mouth ~17 degrees off straight below the eyes
    far = _parse(mouth_shift_x=70)  # ~41 degrees
    assert looks_upright(slight) and abs(layout_tilt_deg(slight) or 0) < MAX_TILT_DEG
    assert not looks_upright(far)


def test_an_unknown_layout_is_not_refused() -> None:
    no_mouth = _parse()
    no_mouth[np.isin(no_mouth, (U_LIP, L_LIP))] = SKIN  # a mask or a hand over the mouth
    assert layout_tilt_deg(no_mouth) is None and looks_upright(no_mouth)
    assert looks_upright(np.zeros((256, 256), np.uint8))


def test_part_share_counts_brows_eyes_nose_and_mouth_only() -> None:
    lab = _parse()
    parts = (10 * 30) * 2 + 40 * 20 + (10 * 56) * 2  # eyes, nose, lips; skin does not count
    assert part_share(lab) == pytest.approx(parts / lab.size)


def tilt_ok(lab: np.ndarray) -> bool:
    tilt = layout_tilt_deg(lab)
    return tilt is not None and abs(tilt) <= MAX_TILT_DEG


def test_only_an_upright_parse_with_enough_parts_shows_a_face() -> None:
    upright = _parse()
    upright[60:70, 80:176] = L_BROW  # brows: the parts now cover over 3 % of the crop
    assert part_share(upright) >= FOUND_TURNED_MIN_SHARE and shows_upright_face(upright)
    assert not shows_upright_face(np.rot90(upright))
    assert not shows_upright_face(np.rot90(upright, 2))
    small = np.zeros((256, 256), np.uint8)
    small[64:192, 64:192] = cv2.resize(upright, (128, 128), interpolation=cv2.INTER_NEAREST)
    assert tilt_ok(small) and not shows_upright_face(small)  # upright, but too few parts (a hand, a knee)
    assert not shows_upright_face(np.zeros((256, 256), np.uint8))


def test_part_ratio_does_not_grow_with_a_tighter_crop() -> None:
    loose = _parse()
    tight = cv2.resize(loose[40:230, 30:226], (256, 256), interpolation=cv2.INTER_NEAREST)
    assert part_share(tight) > 1.5 * part_share(loose)
    assert part_ratio(tight) == pytest.approx(part_ratio(loose), rel=0.05)


def test_best_turn_takes_the_most_parts_and_the_first_on_ties() -> None:
    assert best_turn([0.01, 0.04, 0.02, 0.04]) == 1
    assert best_turn([0.03]) == 0
    with pytest.raises(ValueError):
        best_turn([])


@pytest.mark.parametrize("roll", [-40.0, -10.0, 0.0, 25.0])
def test_the_eye_line_residual_is_the_roll_left_in_the_crop(roll: float) -> None:
    """Turning the crop content by ``roll`` (the face rolled that far in the image) reads as ``roll``."""
    m = cv2.getRotationMatrix2D((128.0, 128.0), -roll, 1.0)  # cv2 angles are counter-clockwise
    lab = cv2.warpAffine(_parse(), m, (256, 256), flags=cv2.INTER_NEAREST)
    residual = eye_line_residual_deg(lab)
    assert residual is not None and residual == pytest.approx(roll, abs=3.0)
    no_eyes = lab.copy()
    no_eyes[no_eyes == L_EYE] = SKIN
    assert eye_line_residual_deg(no_eyes) is None


def test_a_level_face_shows_both_eyes_and_an_upright_layout() -> None:
    assert is_level_face(_parse())
    turned = np.ascontiguousarray(np.rot90(_parse()))
    assert not is_level_face(turned)
    m = cv2.getRotationMatrix2D((128.0, 128.0), -(LEVEL_MAX_DEG + 8.0), 1.0)
    assert not is_level_face(cv2.warpAffine(_parse(), m, (256, 256), flags=cv2.INTER_NEAREST))  # tilted past the limit
    one_eye = _parse()
    one_eye[one_eye == L_EYE] = SKIN
    assert not is_level_face(one_eye)  # a layout without an eye line is not level


def test_a_view_needs_the_margin_unless_the_current_one_is_not_level() -> None:
    margin = SWITCH_MARGIN
    assert choose_view([0.10, 0.10 * margin, 0.12], [True, False, True]) == 1  # the margin wins outright
    assert choose_view([0.10, 0.14, 0.12], [True, True, True]) == 0  # a level current view stays
    # the current view is not level: the best level view at least as rich in parts wins
    assert choose_view([0.118, 0.083, 0.144, 0.153], [False, True, False, True]) == 3
    assert choose_view([0.12, 0.11, 0.144], [False, True, False]) == 0  # a level view with fewer parts: no
    assert choose_view([0.12], [False]) == 0
    with pytest.raises(ValueError):
        choose_view([0.1, 0.2], [True])


def test_a_stream_turns_only_when_most_of_its_first_faces_are_upside_down() -> None:
    from identix_stream.core.face_upright import STREAM_TURN_FACES, StreamOrientation

    def decide(rolls: list[float]) -> StreamOrientation:
        o = StreamOrientation()
        changed = [o.observe(r) for r in rolls]
        assert changed[:STREAM_TURN_FACES - 1] == [False] * (STREAM_TURN_FACES - 1)
        return o

    assert decide([178.0, -175.0, 3.0]).turns == 2
    assert decide([178.0, 5.0, -8.0]).turns == 0  # one face is not a majority
    assert decide([90.0, 88.0, 93.0]).turns == 0  # sideways streams are left to the detector's roll
    assert decide([30.0, -40.0, 12.0]).turns == 0  # head tilts
    counting = StreamOrientation()
    needed = [counting.faces_needed]
    for roll in (0.0, 2.0, -3.0):
        counting.observe(roll)
        needed.append(counting.faces_needed)
    assert needed == [3, 2, 1, 0]
    o = decide([180.0, 180.0, 180.0])
    assert o.decided and o.turns == 2 and not o.observe(0.0) and o.turns == 2  # decided once
