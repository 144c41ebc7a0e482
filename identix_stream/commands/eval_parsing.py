"""``identix-stream eval-parsing``: face-parsing accuracy on a folder of images and label masks.

Runs the service's own path by default (detect -> crop -> parse -> paste back into the image);
``--crop whole`` treats each whole image as one face crop (aligned crops, or no detector).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from identix_stream.config import PRECISIONS
from identix_stream.core.classes import CLASS_NAMES, F1_CLASSES, LABEL_SETS, NUM_CLASSES, OURS_TO_LFW3
from identix_stream.core.label_sides import swap_sides, viewer_sided
from identix_stream.core.metrics import confusion, summarize
from identix_stream.errors import DataError, InvalidInput

log = logging.getLogger(__name__)

LFW3_NAMES = ("background", "face", "hair")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

Predictor = Callable[[np.ndarray], np.ndarray]  # BGR image -> (H, W) uint8 labels in our classes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-parsing", help="face-parsing accuracy on labelled images", description=__doc__)
    p.add_argument("--images", type=Path, required=True, help="folder of images")
    p.add_argument("--masks", type=Path, required=True, help="folder of label PNGs with the same stems")
    p.add_argument("--labels", choices=["celebamask19", "lfw3", "lapa11"], required=True, help="label set of the masks")
    p.add_argument("--crop", choices=["detect", "whole"], default="detect")
    p.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    p.add_argument("--precision", choices=("auto", *PRECISIONS), default="fp32",
                   help="parser precision (fp32 is the reference; auto = what the service picks here)")
    p.add_argument("--limit", type=int, default=0, help="evaluate only the first N pairs")
    p.add_argument("--fix-sides", action="store_true",
                   help="grade masks that name left/right from the viewer's side (some CelebAMask-HQ masks) "
                        "with their sides swapped; the count is reported as sides_fixed")
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.set_defaults(func=run)


def pairs(images: Path, masks: Path) -> Iterator[tuple[Path, Path]]:
    if not images.is_dir():
        raise DataError(f"--images {images} is not a folder")
    if not masks.is_dir():
        raise DataError(f"--masks {masks} is not a folder")
    found = 0
    for img in sorted(images.iterdir()):
        if img.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        mask = masks / f"{img.stem}.png"
        if not mask.is_file():
            log.warning("no mask for %s", img.name)
            continue
        found += 1
        yield img, mask
    if not found:
        raise DataError(f"no image/mask pairs in {images} and {masks}")


def to_eval_space(pred: np.ndarray, truth: np.ndarray, label_set: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Map predictions (our ids) and raw ground truth into one label space for scoring."""
    if label_set == "lfw3":
        return OURS_TO_LFW3[pred], truth, 3
    return pred, LABEL_SETS[label_set][truth], NUM_CLASSES


def evaluate(predict: Predictor, images: Path, masks: Path, label_set: str, limit: int = 0,
             fix_sides: bool = False) -> dict[str, object]:
    from identix_stream.training.data import read_image, read_label_png

    n = 3 if label_set == "lfw3" else NUM_CLASSES
    conf = np.zeros((n, n), np.int64)
    count = fixed = 0
    started = time.monotonic()
    for img_path, mask_path in pairs(images, masks):
        image, truth = read_image(img_path), read_label_png(mask_path)
        if truth.shape != image.shape[:2]:
            raise DataError(f"{mask_path.name}: mask {truth.shape} does not match image {image.shape[:2]}")
        pred, truth_ours, _ = to_eval_space(predict(image), truth, label_set)
        if fix_sides and label_set != "lfw3" and viewer_sided(truth_ours):
            truth_ours = swap_sides(truth_ours)
            fixed += 1
        conf += confusion(pred, truth_ours, n)
        count += 1
        if limit and count >= limit:
            break
    names = LFW3_NAMES if label_set == "lfw3" else CLASS_NAMES
    f1_classes = (1, 2) if label_set == "lfw3" else F1_CLASSES
    summary = summarize(conf, names, f1_classes)
    summary["n_images"] = count
    summary["sides_fixed"] = fixed if fix_sides else None
    summary["labels"] = label_set
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def run(args: argparse.Namespace) -> int:
    from identix_stream.pipeline.image_parsing import image_parser

    if args.limit < 0:
        raise InvalidInput(f"--limit must be >= 0, got {args.limit}")
    with image_parser(model_path=args.model, crop=args.crop, precision=args.precision) as predict:
        result = evaluate(predict, args.images, args.masks, args.labels, args.limit, args.fix_sides)
    result["crop"] = args.crop
    result["precision"] = args.precision
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        per_class: dict[str, dict[str, float]] = result["per_class"]  # type: ignore[assignment]
        for name, vals in per_class.items():
            sys.stdout.write(f"{name:14s} F1 {vals['f1']}  IoU {vals['iou']}\n")
        sys.stdout.write(
            f"mean F1 {result['mean_f1']}  mIoU {result['miou']}  pixel acc {result['pixel_acc']}"
            f"  ({result['n_images']} images)\n"
        )
    return 0
