"""Make tight-crop check photos: each photo cut so its frame ends 5-15% beyond the detected face box.

A face close to the camera (or a tight crop such as DFDC's) leaves the service's crop window, which the
service fills with black. Scoring tight copies of real and GAN photos with ``identix-stream eval-deepfake
--real <out_real> --fake <out_fake>`` shows how the factors read such faces (docs/deepfake.md, session 18).
Margins are drawn per side with a fixed seed, so the set is the same on every run.

Usage: python tools/tight_crops.py --out /tmp/tight_real DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from identix_stream.inference.detector import FaceDetector

log = logging.getLogger("tight_crops")


def tight_box(face_box: tuple[float, float, float, float], margins: np.ndarray, width: int, height: int
              ) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the face box grown by ``margins`` (left, top, right, bottom; share of its size),
    clipped to the image."""
    x1, y1, x2, y2 = face_box
    w, h = x2 - x1, y2 - y1
    return (int(max(0, x1 - margins[0] * w)), int(max(0, y1 - margins[1] * h)),
            int(min(width, x2 + margins[2] * w)), int(min(height, y2 + margins[3] * h)))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("dirs", type=Path, nargs="+", help="folders of photos")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    detector = FaceDetector()
    written = 0
    try:
        for folder in args.dirs:
            for path in sorted(folder.iterdir()):
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None:
                    continue
                faces = detector.detect(image)
                if not faces:
                    log.info("%s: no face, skipped", path.name)
                    continue
                best = max(faces, key=lambda d: d.score)
                x1, y1, x2, y2 = tight_box(best.face_box(), rng.uniform(0.05, 0.15, 4), image.shape[1], image.shape[0])
                cv2.imwrite(str(args.out / f"{path.stem}.png"), image[y1:y2, x1:x2])
                written += 1
    finally:
        detector.close()
    log.info("%d tight crops in %s", written, args.out)


if __name__ == "__main__":
    main()
