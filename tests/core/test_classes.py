from __future__ import annotations

import numpy as np
import pytest

from identix_stream.core.classes import (
    CELEBAMASK19_TO_11,
    CLASS_NAMES,
    FACEPARSING19_TO_11,
    L_BROW,
    L_EYE,
    OURS_TO_LFW3,
    R_BROW,
    R_EYE,
    colorize,
    flip_labels,
)


@pytest.mark.parametrize(
    ("celeb_id", "ours"),
    [(0, 0), (1, 1), (2, 6), (4, 4), (5, 5), (6, 2), (7, 3), (8, 1), (10, 8), (11, 7), (12, 9), (13, 10), (17, 0)],
)
def test_celebamask_mapping(celeb_id: int, ours: int) -> None:
    assert CELEBAMASK19_TO_11[celeb_id] == ours


@pytest.mark.parametrize(
    ("public_id", "ours"), [(2, L_BROW), (3, R_BROW), (4, L_EYE), (5, R_EYE), (10, 6), (11, 8), (17, 10), (14, 0)]
)
def test_public_checkpoint_mapping(public_id: int, ours: int) -> None:
    assert FACEPARSING19_TO_11[public_id] == ours


def test_flip_swaps_sides_and_mirrors() -> None:
    labels = np.array([[L_BROW, 0, R_EYE, 10]], dtype=np.uint8)
    assert flip_labels(labels).tolist() == [[10, L_EYE, 0, R_BROW]]
    assert np.array_equal(flip_labels(flip_labels(labels)), labels)


def test_lfw3_collapse() -> None:
    assert OURS_TO_LFW3[: len(CLASS_NAMES)].tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]


def test_colorize_shape() -> None:
    rgb = colorize(np.array([[0, 10], [255, 1]], dtype=np.uint8))
    assert rgb.shape == (2, 2, 3)
    assert rgb[1, 0].tolist() == [0, 0, 0]
