"""Left/right naming of face masks: detection of viewer-side masks and their correction."""

from __future__ import annotations

import numpy as np

from identix_stream.core.classes import L_BROW, L_EYE, NOSE, R_BROW, R_EYE, SKIN
from identix_stream.core.label_sides import canonical_sides, swap_sides, viewer_sided


def _face(left_x: int, right_x: int, eyes: bool = True, brows: bool = True) -> np.ndarray:
    """A 100x100 mask: skin, a nose, and the sided parts centred at the given x positions."""
    m = np.zeros((100, 100), np.uint8)
    m[20:90, 15:85] = SKIN
    m[50:65, 45:55] = NOSE
    if brows:
        m[30:34, left_x - 8:left_x + 8] = L_BROW
        m[30:34, right_x - 8:right_x + 8] = R_BROW
    if eyes:
        m[40:45, left_x - 6:left_x + 6] = L_EYE
        m[40:45, right_x - 6:right_x + 6] = R_EYE
    return m


def test_person_side_masks_are_left_alone() -> None:
    m = _face(left_x=70, right_x=30)  # the person's left eye is on the image's right
    assert not viewer_sided(m)
    assert canonical_sides(m) is m


def test_viewer_side_masks_get_their_sides_swapped_in_place() -> None:
    m = _face(left_x=30, right_x=70)
    assert viewer_sided(m)
    fixed = canonical_sides(m)
    assert not viewer_sided(fixed)
    np.testing.assert_array_equal(fixed, _face(left_x=70, right_x=30))
    # only the sided classes were renamed; every other pixel keeps its class
    others = ~np.isin(m, (L_EYE, R_EYE, L_BROW, R_BROW))
    np.testing.assert_array_equal(fixed[others], m[others])


def test_brows_decide_when_the_eyes_are_hidden() -> None:
    assert viewer_sided(_face(left_x=30, right_x=70, eyes=False))
    assert not viewer_sided(_face(left_x=70, right_x=30, eyes=False))


def test_eyes_outvote_brows() -> None:
    m = _face(left_x=70, right_x=30)
    m[m == L_BROW], m[m == R_BROW] = 0, 0
    m[30:34, 22:38] = L_BROW  # brows drawn swapped, eyes correct: the eyes decide
    m[30:34, 62:78] = R_BROW
    assert not viewer_sided(m)


def test_masks_without_a_usable_pair_count_as_correct() -> None:
    assert not viewer_sided(_face(30, 70, eyes=False, brows=False))
    m = _face(left_x=30, right_x=70, brows=False)
    m[m == R_EYE] = SKIN
    m[42, 69] = R_EYE  # a one-pixel sliver of the far eye says nothing
    assert not viewer_sided(m)


def test_swap_sides_is_its_own_inverse_and_keeps_ignore_pixels() -> None:
    m = _face(30, 70)
    m[0, 0] = 255
    np.testing.assert_array_equal(swap_sides(swap_sides(m)), m)
    assert swap_sides(m)[0, 0] == 255
