"""Face-parsing training data from ../shared/data: CelebAMask-HQ (fine, 19 -> 11 classes) and
LFW Part Labels (coarse: background / face / hair). Everything is decoded once into memory."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from identix_stream.core.classes import CELEBAMASK19_TO_11, IGNORE_INDEX, LFW3_FACE
from identix_stream.core.geometry import face_box_from_labels
from identix_stream.core.label_sides import canonical_sides
from identix_stream.errors import DataError

log = logging.getLogger(__name__)

# CelebAMask-HQ ids of the face box classes: skin, nose, eyes, brows, mouth, lips (not ears/hair).
CELEBAMASK_FACE_BOX_IDS = (1, 2, 4, 5, 6, 7, 10, 11, 12)
# LFW "face" runs down the neck; the face box stops at this multiple of its width below its top
# (CelebAMask face boxes are 1.39x taller than wide; LFW's "face" width includes the ears).
LFW_FACE_HEIGHT_PER_WIDTH = 1.25
# LFW pool photos (sorted by name) kept out of blend-CNN training for the fusion fit.
LFW_POOL_FUSION_RESERVE = (1500, 1600)
# Share of CelebAMask-mini held out for validation (by name hash: 104 of the 900).
CELEBAMASK_VAL_FRACTION = 0.11


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    image: np.ndarray  # BGR uint8
    labels: np.ndarray  # uint8: our 11 classes (fine) or LFW3 ids (coarse); IGNORE_INDEX = unknown
    face_box: tuple[float, float, float, float]
    coarse: bool


def read_label_png(path: Path) -> np.ndarray:
    """Label PNGs are palette or grey images whose pixel values are class ids."""
    with Image.open(path) as im:
        arr = np.array(im)
    if arr.ndim != 2:
        raise DataError(f"label image {path} is not single-channel (shape {arr.shape})")
    return arr.astype(np.uint8)


def read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot decode image {path}")
    return img


def is_validation(name: str, fraction: float) -> bool:
    """A stable split by name hash, independent of file order and machine."""
    return (zlib.crc32(name.encode()) % 1000) < fraction * 1000


def load_celebamask(root: Path, split: str, val_fraction: float = CELEBAMASK_VAL_FRACTION) -> list[Sample]:
    """CelebAMask-mini pairs; split is 'train' or 'val' (our own held-out split of the 900). Masks that
    name the sides from the viewer's point of view are corrected (``core/label_sides.py``)."""
    img_dir, mask_dir = root / "images", root / "masks"
    if not img_dir.is_dir():
        raise DataError(f"no CelebAMask images under {img_dir}")
    samples = []
    for img_path in sorted(img_dir.glob("*.jpg")):
        name = img_path.stem
        if is_validation(name, val_fraction) != (split == "val"):
            continue
        raw = read_label_png(mask_dir / f"{name}.png")
        box = face_box_from_labels(raw, CELEBAMASK_FACE_BOX_IDS)
        if box is None:
            log.warning("skipping %s: no face pixels", name)
            continue
        labels = canonical_sides(CELEBAMASK19_TO_11[raw])
        samples.append(Sample(name, read_image(img_path), labels, box, coarse=False))
    return samples


def lfw_face_box(labels: np.ndarray) -> tuple[float, float, float, float] | None:
    box = face_box_from_labels(labels, (LFW3_FACE,))
    if box is None:
        return None
    x1, y1, x2, y2 = box
    return x1, y1, x2, min(y2, y1 + LFW_FACE_HEIGHT_PER_WIDTH * (x2 - x1))


def load_lfw_parts(root: Path, split: str) -> list[Sample]:
    """LFW Part Labels; face pixels below the estimated chin (the neck) are ignored."""
    img_dir, mask_dir = root / split / "images", root / split / "masks"
    if not img_dir.is_dir():
        raise DataError(f"no LFW Part Labels images under {img_dir}")
    samples = []
    for img_path in sorted(img_dir.glob("*.jpg")):
        labels = read_label_png(mask_dir / f"{img_path.stem}.png")
        box = lfw_face_box(labels)
        if box is None:
            continue
        chin = int(np.ceil(box[3] + 0.02 * (box[2] - box[0])))
        neck = labels[chin:] == LFW3_FACE
        labels[chin:][neck] = IGNORE_INDEX
        samples.append(Sample(img_path.stem, read_image(img_path), labels, box, coarse=True))
    return samples


def lfw_pool_paths(data_root: Path) -> list[Path]:
    return sorted((data_root / "faces" / "lfw_pool").glob("*.jpg"))


def lfw_pool_training_paths(data_root: Path, count: int) -> list[Path]:
    """The first ``count`` LFW pool photos outside the fusion reserve (blend-CNN training)."""
    lo, hi = LFW_POOL_FUSION_RESERVE
    paths = lfw_pool_paths(data_root)
    return (paths[:lo] + paths[hi:])[:count]


def lfw_pool_fusion_paths(data_root: Path) -> list[Path]:
    """The reserved LFW pool photos: real stills no blend CNN trained on (fusion fit)."""
    lo, hi = LFW_POOL_FUSION_RESERVE
    return lfw_pool_paths(data_root)[lo:hi]
