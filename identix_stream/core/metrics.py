"""Segmentation metrics from a confusion matrix (pure numpy)."""

from __future__ import annotations

import numpy as np


def confusion(pred: np.ndarray, target: np.ndarray, n_classes: int, ignore: int = 255) -> np.ndarray:
    """n_classes x n_classes counts, rows = target, columns = prediction."""
    keep = target != ignore
    t = target[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    if t.size and (t.max() >= n_classes or p.max() >= n_classes):
        raise ValueError(f"label id out of range for {n_classes} classes")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def summarize(conf: np.ndarray, names: tuple[str, ...], f1_classes: tuple[int, ...]) -> dict[str, object]:
    """Per-class F1/IoU, mean F1 over ``f1_classes``, mIoU over classes present, pixel accuracy."""
    tp = np.diag(conf).astype(np.float64)
    fp = conf.sum(0) - tp
    fn = conf.sum(1) - tp
    present = conf.sum(1) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
    per_class = {
        names[i]: {"f1": _r(f1[i]), "iou": _r(iou[i]), "pixels": int(conf[i].sum())} for i in range(len(names))
    }
    f1_sel = [f1[i] for i in f1_classes if present[i]]
    return {
        "per_class": per_class,
        "mean_f1": _r(float(np.mean(f1_sel))) if f1_sel else None,
        "miou": _r(float(np.nanmean(iou[present]))) if present.any() else None,
        "pixel_acc": _r(float(tp.sum() / max(conf.sum(), 1))),
    }


def _r(v: float) -> float | None:
    return None if np.isnan(v) else round(float(v), 4)
