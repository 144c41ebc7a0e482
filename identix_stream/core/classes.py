"""The 11-class face-parsing label set and the mappings from the label sets we read.

"left" is always the person's own left, which appears on the right of an unmirrored image.
"""

from __future__ import annotations

from typing import Final

import numpy as np

CLASS_NAMES: Final[tuple[str, ...]] = (
    "background",
    "skin",
    "left_eyebrow",
    "right_eyebrow",
    "left_eye",
    "right_eye",
    "nose",
    "upper_lip",
    "inner_mouth",
    "lower_lip",
    "hair",
)
NUM_CLASSES: Final[int] = len(CLASS_NAMES)
BACKGROUND, SKIN, L_BROW, R_BROW, L_EYE, R_EYE, NOSE, U_LIP, MOUTH, L_LIP, HAIR = range(NUM_CLASSES)
FACE_CLASSES: Final[tuple[int, ...]] = tuple(range(1, 10))
# mean F1 is reported over the ten non-background classes
F1_CLASSES: Final[tuple[int, ...]] = tuple(range(1, NUM_CLASSES))
IGNORE_INDEX: Final[int] = 255

# Colours (RGB) for overlays and legends.
PALETTE: Final[np.ndarray] = np.array(
    [
        [0, 0, 0],
        [255, 204, 153],
        [153, 51, 255],
        [102, 0, 204],
        [0, 204, 255],
        [0, 102, 255],
        [255, 153, 0],
        [255, 51, 102],
        [153, 0, 51],
        [204, 0, 102],
        [102, 51, 0],
    ],
    dtype=np.uint8,
)

# Horizontal flip swaps the sides: index i of this table is the label i becomes after a flip.
FLIP_PERMUTATION: Final[np.ndarray] = np.array(
    [BACKGROUND, SKIN, R_BROW, L_BROW, R_EYE, L_EYE, NOSE, U_LIP, MOUTH, L_LIP, HAIR], dtype=np.int64
)


def _lut(pairs: dict[int, int], size: int = 256, default: int = IGNORE_INDEX) -> np.ndarray:
    lut = np.full(size, default, dtype=np.uint8)
    for src, dst in pairs.items():
        lut[src] = dst
    return lut


# CelebAMask-HQ 19-class order as stored in ../shared/data (measured there):
# 0 bg, 1 skin, 2 nose, 3 eyeglasses, 4 l_eye, 5 r_eye, 6 l_brow, 7 r_brow, 8 l_ear, 9 r_ear,
# 10 mouth, 11 u_lip, 12 l_lip, 13 hair, 14 hat, 15 earring, 16 necklace, 17 neck, 18 cloth.
CELEBAMASK19_TO_11: Final[np.ndarray] = _lut(
    {
        0: BACKGROUND,
        1: SKIN,
        2: NOSE,
        3: SKIN,  # eyeglass frames sit on the face; eyes under lenses keep their own label
        4: L_EYE,
        5: R_EYE,
        6: L_BROW,
        7: R_BROW,
        8: SKIN,
        9: SKIN,
        10: MOUTH,
        11: U_LIP,
        12: L_LIP,
        13: HAIR,
        14: BACKGROUND,
        15: BACKGROUND,
        16: BACKGROUND,
        17: BACKGROUND,
        18: BACKGROUND,
    }
)

# The public face-parsing.PyTorch checkpoints (e.g. 79999_iter.pth) use another 19-class order:
# 0 bg, 1 skin, 2 l_brow, 3 r_brow, 4 l_eye, 5 r_eye, 6 eye_g, 7 l_ear, 8 r_ear, 9 ear_r,
# 10 nose, 11 mouth, 12 u_lip, 13 l_lip, 14 neck, 15 neck_l, 16 cloth, 17 hair, 18 hat.
FACEPARSING19_TO_11: Final[np.ndarray] = _lut(
    {
        0: BACKGROUND,
        1: SKIN,
        2: L_BROW,
        3: R_BROW,
        4: L_EYE,
        5: R_EYE,
        6: SKIN,
        7: SKIN,
        8: SKIN,
        9: BACKGROUND,
        10: NOSE,
        11: MOUTH,
        12: U_LIP,
        13: L_LIP,
        14: BACKGROUND,
        15: BACKGROUND,
        16: BACKGROUND,
        17: HAIR,
        18: BACKGROUND,
    }
)

# LFW Part Labels: 0 background, 1 face (skin and every facial feature, neck included), 2 hair.
LFW3_BACKGROUND, LFW3_FACE, LFW3_HAIR = 0, 1, 2
OURS_TO_LFW3: Final[np.ndarray] = _lut(
    {c: LFW3_FACE if c in FACE_CLASSES else LFW3_HAIR if c == HAIR else LFW3_BACKGROUND for c in range(NUM_CLASSES)},
    default=LFW3_BACKGROUND,
)

# LaPa 11 classes use the same order as ours.
LAPA11_TO_11: Final[np.ndarray] = _lut({c: c for c in range(NUM_CLASSES)})

LABEL_SETS: Final[dict[str, np.ndarray]] = {
    "celebamask19": CELEBAMASK19_TO_11,
    "lapa11": LAPA11_TO_11,
}


def flip_labels(labels: np.ndarray) -> np.ndarray:
    """Mirror a label map left-right and swap the sided classes, so "left" stays the person's left."""
    flipped = labels[:, ::-1]
    table = np.arange(256, dtype=np.uint8)
    table[: NUM_CLASSES] = FLIP_PERMUTATION.astype(np.uint8)
    return table[flipped]


def colorize(labels: np.ndarray) -> np.ndarray:
    """RGB image of a label map (ignored/unknown ids are black)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:NUM_CLASSES] = PALETTE
    return palette[labels]
