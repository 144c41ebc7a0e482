"""Fit the boundary-consistency factor: logistic regression on boundary_features of real faces vs
self-blends of the same faces (real data only, like the blend CNN). Crops are 256 px like the
parser's; labels are the ground-truth masks mapped to our 11 classes (the parser's at run time).
Train: CelebAMask-mini train split; validation: our held-out CelebAMask split.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from identix_stream.core.deepfake_metrics import roc_auc
from identix_stream.core.logistic import fit_logistic
from identix_stream.inference.deepfake_features import BOUNDARY_FEATURES, boundary_features
from identix_stream.training.data import Sample, load_celebamask
from identix_stream.training.sbi import crop_sample, degrade, face_region, self_blend

log = logging.getLogger(__name__)

BOUNDARY_FORMAT = "identix-boundary-v1"


def _pairs(samples: list[Sample], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x, y = [], []
    for s in samples:
        face = face_region(s.labels, s.coarse)
        # crop image and labels with the same window: labels travel as a channel-less image
        crop, lab = crop_sample(s.image, s.labels, s.face_box, 256, rng)
        msk = (np.isin(lab, np.arange(1, 10))).astype(np.uint8) if face.any() else face
        fake = self_blend(crop, msk, rng)
        for img, target in ((degrade(crop, rng), 0), (degrade(fake, rng), 1)):
            f = boundary_features(img, lab)
            if f is not None:
                x.append(f)
                y.append(target)
    return np.array(x), np.array(y)


def train_boundary(data_root: Path, out_dir: Path, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    root = data_root / "face_parsing" / "celebamask_mini"
    xt, yt = _pairs(load_celebamask(root, "train"), rng)
    xv, yv = _pairs(load_celebamask(root, "val"), np.random.default_rng(seed + 1))
    model = fit_logistic(xt, yt, l2=1.0)
    sv = model.logit(xv)
    metrics = {"train_pairs": int(len(yt) // 2), "val_pairs": int(len(yv) // 2),
               "val_auc_selfblend": round(roc_auc(sv[yv == 0], sv[yv == 1]), 4),
               "train_auc_selfblend": round(roc_auc(model.logit(xt[yt == 0]), model.logit(xt[yt == 1])), 4)}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "deepfake_boundary.json"
    path.write_text(json.dumps({"format": BOUNDARY_FORMAT, "features": list(BOUNDARY_FEATURES), **model.to_json(),
                                "metrics": metrics}))
    log.info("boundary model %s: %s", path, metrics)
    return {"path": str(path), **metrics}
