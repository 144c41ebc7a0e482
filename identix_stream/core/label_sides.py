"""Left/right consistency of labelled face masks.

Our classes name the sides from the person's point of view: the person's left eye appears on the
right of an unmirrored photo. Some CelebAMask-HQ masks name them from the viewer's side instead
(49 of the 796 CelebAMask-mini training masks, 10 of our 104 held-out ones). Trained or scored as
they are, those masks teach and grade the sided classes backwards; ``canonical_sides`` corrects them.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from identix_stream.core.classes import L_BROW, L_EYE, R_BROW, R_EYE

SIDED_PAIRS: Final[tuple[tuple[int, int], ...]] = ((L_EYE, R_EYE), (L_BROW, R_BROW))
# Fewer pixels than this and a part's centre says little (a sliver of a far brow on a turned head).
MIN_SIDE_PIXELS: Final[int] = 12

_SWAP_SIDES: Final[np.ndarray] = np.arange(256, dtype=np.uint8)
for _a, _b in SIDED_PAIRS:
    _SWAP_SIDES[_a], _SWAP_SIDES[_b] = _b, _a


def _mean_x(labels: np.ndarray, cls: int) -> float | None:
    xs = np.nonzero(labels == cls)[1]
    return float(xs.mean()) if xs.size >= MIN_SIDE_PIXELS else None


def viewer_sided(labels: np.ndarray) -> bool:
    """True when the "left" parts lie left of the "right" ones in the image, i.e. the mask names the
    sides from the viewer's point of view. Eyes decide when both are visible, else brows; a mask
    without such a pair is taken as correct."""
    for left, right in SIDED_PAIRS:
        lx, rx = _mean_x(labels, left), _mean_x(labels, right)
        if lx is not None and rx is not None and lx != rx:
            return lx < rx
    return False


def swap_sides(labels: np.ndarray) -> np.ndarray:
    """The same mask with every sided class renamed to its other side (pixels stay where they are)."""
    return _SWAP_SIDES[labels]


def canonical_sides(labels: np.ndarray) -> np.ndarray:
    """The mask with sides named from the person's point of view (a copy only when it changes)."""
    return swap_sides(labels) if viewer_sided(labels) else labels
