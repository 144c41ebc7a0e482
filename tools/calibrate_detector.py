"""Fit the detector-box -> parser-face-box calibration in inference/detector.py.

Runs the detector on CelebAMask-mini images, takes the face box from each mask (classes skin,
nose, eyes, brows, mouth, lips) and prints the median offsets/ratios measured in the eye-aligned
frame. Usage: python tools/calibrate_detector.py ../shared/data/face_parsing/celebamask_mini
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np

from identix_stream.inference.detector import FaceDetector
from identix_stream.training.data import CELEBAMASK_FACE_BOX_IDS, read_image, read_label_png


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    det = FaceDetector()
    rows = []
    paths = sorted((args.root / "images").glob("*.jpg"))
    if args.limit:
        paths = paths[: args.limit]
    misses = 0
    for p in paths:
        img = read_image(p)
        labels = read_label_png(args.root / "masks" / f"{p.stem}.png")
        if labels.shape != img.shape[:2]:
            labels = cv2.resize(labels, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
        dets = det.detect(img)
        if not dets:
            misses += 1
            continue
        d = dets[0]
        theta = math.radians(d.roll_deg)
        # rotate the mask's face pixels into the eye-aligned frame around the detector centre
        x1, y1, x2, y2 = d.box
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        ys, xs = np.nonzero(np.isin(labels, CELEBAMASK_FACE_BOX_IDS))
        if xs.size == 0:
            continue
        u = (xs + 0.5 - cx) * math.cos(theta) + (ys + 0.5 - cy) * math.sin(theta)
        v = -(xs + 0.5 - cx) * math.sin(theta) + (ys + 0.5 - cy) * math.cos(theta)
        # min/max like the training face box (training/data.py), pixel edges rather than centres
        fu1, fu2, fv1, fv2 = u.min() - 0.5, u.max() + 0.5, v.min() - 0.5, v.max() + 0.5
        rows.append(((fu1 + fu2) / 2 / w, (fv1 + fv2) / 2 / h, (fu2 - fu1) / w, (fv2 - fv1) / h, d.roll_deg))
    arr = np.array(rows)
    med = np.median(arr, axis=0)
    q = np.percentile(arr, [10, 90], axis=0)
    print(json.dumps({
        "images": len(paths), "detected": len(rows), "missed": misses,
        "CAL_DX": round(float(med[0]), 4), "CAL_DY": round(float(med[1]), 4),
        "CAL_SW": round(float(med[2]), 4), "CAL_SH": round(float(med[3]), 4),
        "p10": [round(float(v), 3) for v in q[0]], "p90": [round(float(v), 3) for v in q[1]],
    }, indent=1))


if __name__ == "__main__":
    main()
