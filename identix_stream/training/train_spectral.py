"""Fit the generator-fingerprint factor: logistic regression on fingerprint_features.

Fakes: deepfake/stylegan3_fake (StyleGAN3). Reals: faces/lfw_pool, CelebAMask-mini and face crops of
the "fit" half of the talking-head videos (each face's square at the frame's resolution, as the service
reads it; H.264 video faces otherwise look "generated" to the head).
Validation, never trained on: deepfake/gan_vs_real_val (StyleGAN2 vs real photos), read like the
service reads a face (the detected face's square at the photo's own resolution). The last 30
StyleGAN3 faces and 100 lfw_pool faces are held out from this fit for the fusion fit.
Training images are rescaled at random (x0.75-1.3) and JPEG- or H.264-compressed (both classes) so
the head does not learn one source's resolution or codec; then the central square is taken without
further resampling.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from identix_stream.core.deepfake_metrics import eer, roc_auc
from identix_stream.core.logistic import fit_logistic
from identix_stream.errors import DataError
from identix_stream.inference.deepfake_features import FP_SIZE, center_square, fingerprint_features
from identix_stream.training.video_crops import (
    TALKING_HEADS_FIT,
    h264_roundtrip,
    jpeg_roundtrip,
    photo_faces,
    video_faces,
)

log = logging.getLogger(__name__)

SPECTRAL_FORMAT = "identix-spectral-v1"
N_SG3_HOLDOUT = 30
N_LFW_TRAIN = 300
N_LFW_HOLDOUT = 100
H264_SHARE = 0.3  # share of training stills sent through an H.264 round trip (the rest: JPEG or none)


def _images(folder: Path, pattern: str = "*") -> list[Path]:
    files = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise DataError(f"no images in {folder}")
    return files


def read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot decode {path}")
    return img


def augmented_square(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = float(rng.uniform(0.75, 1.3))
    if rng.random() < H264_SHARE:
        h, w = img.shape[:2]
        img = cv2.resize(img, (round(w * s) // 2 * 2, round(h * s) // 2 * 2),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        return center_square(h264_roundtrip(img, int(rng.integers(18, 33))))
    h, w = img.shape[:2]
    img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    h, w = img.shape[:2]
    if min(h, w) >= FP_SIZE + 20:
        y = int(rng.integers(max(0, (h - FP_SIZE) // 2 - 30), min(h - FP_SIZE, (h - FP_SIZE) // 2 + 30) + 1))
        x = int(rng.integers(max(0, (w - FP_SIZE) // 2 - 30), min(w - FP_SIZE, (w - FP_SIZE) // 2 + 30) + 1))
        img = img[y:y + FP_SIZE, x:x + FP_SIZE]
    if rng.random() < 0.8:
        img = jpeg_roundtrip(img, int(rng.integers(70, 98)))
    return np.ascontiguousarray(img)


def train_spectral(data_root: Path, out_dir: Path, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    df = data_root / "deepfake"
    sg3 = _images(df / "stylegan3_fake")[:-N_SG3_HOLDOUT]
    real = _images(data_root / "faces" / "lfw_pool")[:N_LFW_TRAIN]
    celeb = [p for p in _images(data_root / "face_parsing" / "celebamask_mini" / "images")]
    real += celeb[: len(celeb) // 3]
    x, y = [], []
    for p in sg3:
        for _ in range(2):
            x.append(fingerprint_features(augmented_square(read(p), rng)))
            y.append(1)
    for p in real:
        x.append(fingerprint_features(augmented_square(read(p), rng)))
        y.append(0)
    from identix_stream.inference.detector import FaceDetector

    detector = FaceDetector()
    n_video = 0
    try:
        for name in TALKING_HEADS_FIT:
            for face in video_faces(data_root / "videos" / "talking_heads" / f"{name}.mp4", detector, every=7,
                                    limit=15):
                features = fingerprint_features(face.square)
                x += [features, features]  # each video face counts twice (unchanged weighting), computed once
                y += [0, 0]
                n_video += 1
        model = fit_logistic(np.array(x), np.array(y), l2=3.0)
        # validated as the service reads a face: the detected face's square at the photo's resolution
        val = df / "gan_vs_real_val"
        val_f, val_r = (model.logit(np.array([fingerprint_features(f.square)
                                              for f in photo_faces(_images(val / cls), detector)]))
                        for cls in ("fake", "real"))
    finally:
        detector.close()
    e, _ = eer(val_r, val_f)
    acc = float(((val_f > 0).sum() + (val_r <= 0).sum()) / (val_f.size + val_r.size))
    metrics = {"train_fake": len(sg3), "train_real": len(real), "train_real_video_faces": n_video,
               "val_auc_gan_vs_real": round(roc_auc(val_r, val_f), 4),
               "val_eer": round(e, 4), "val_acc_at_0.5": round(acc, 4)}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "deepfake_spectral.json"
    path.write_text(json.dumps({"format": SPECTRAL_FORMAT, "features": "fingerprint_features/v1", **model.to_json(),
                                "metrics": metrics}))
    log.info("spectral model %s: %s", path, metrics)
    return {"path": str(path), **metrics}
