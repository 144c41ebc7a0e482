"""Binary detection metrics for deepfake scores (pure numpy): ROC AUC and equal error rate."""

from __future__ import annotations

import numpy as np


def roc_auc(neg: np.ndarray | list[float], pos: np.ndarray | list[float]) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    n = np.asarray(neg, dtype=np.float64).ravel()
    p = np.asarray(pos, dtype=np.float64).ravel()
    if n.size == 0 or p.size == 0:
        raise ValueError(f"AUC needs both classes, got {n.size} negatives and {p.size} positives")
    greater = (p[:, None] > n[None, :]).sum()
    ties = (p[:, None] == n[None, :]).sum()
    return float((greater + 0.5 * ties) / (n.size * p.size))


def eer(neg: np.ndarray | list[float], pos: np.ndarray | list[float]) -> tuple[float, float]:
    """Equal error rate and its threshold: where the false-positive and false-negative rates meet."""
    n = np.asarray(neg, dtype=np.float64).ravel()
    p = np.asarray(pos, dtype=np.float64).ravel()
    if n.size == 0 or p.size == 0:
        raise ValueError(f"EER needs both classes, got {n.size} negatives and {p.size} positives")
    best = (2.0, 0.0, 0.5)
    for t in np.unique(np.concatenate([n, p, [np.inf]])):
        fpr = float((n >= t).mean())
        fnr = float((p < t).mean())
        gap = abs(fpr - fnr)
        if gap < best[0]:
            best = (gap, (fpr + fnr) / 2.0, float(t))
    return best[1], best[2]
