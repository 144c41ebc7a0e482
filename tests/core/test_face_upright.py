"""core/face_upright.py: whether a parsed crop shows the face upright (pure, on synthetic parses)."""

from __future__ import annotations

import numpy as np
import pytest

from identix_stream.core.classes import L_EYE, L_LIP, NOSE, R_EYE, SKIN, U_LIP
from identix_stream.core.face_upright import MAX_TILT_DEG, layout_tilt_deg, looks_upright


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
