"""A small L2-regularised logistic regression (Newton's method) with standardised inputs: the
calibrated heads of the hand-made deepfake features and the fusion. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Logistic:
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Log-odds for rows of x (or one row)."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return z @ self.weights + self.bias

    def prob(self, x: np.ndarray) -> np.ndarray:
        return sigmoid(self.logit(x))

    def parts(self, x: np.ndarray) -> np.ndarray:
        """Each feature's share of the log-odds (without the bias) for rows of x (or one row)."""
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.std * self.weights

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "weights": self.weights.tolist(),
                "bias": float(self.bias)}

    @classmethod
    def from_json(cls, blob: dict[str, Any]) -> Logistic:
        mean = np.asarray(blob["mean"], dtype=np.float64)
        std = np.asarray(blob["std"], dtype=np.float64)
        weights = np.asarray(blob["weights"], dtype=np.float64)
        if not (mean.shape == std.shape == weights.shape and mean.ndim == 1):
            raise ValueError(f"inconsistent logistic shapes {mean.shape} {std.shape} {weights.shape}")
        return cls(mean, std, weights, float(blob["bias"]))


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40.0, 40.0)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, balanced: bool = True, iters: int = 40) -> Logistic:
    """Fit by Newton steps; ``balanced`` weighs both classes equally (prior 0.5)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],) or not ((y == 0).any() and (y == 1).any()):
        raise ValueError(f"need 2-D features and 0/1 labels of both classes, got {x.shape} {y.shape}")
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    cw = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())) if balanced else np.ones_like(y)
    w = np.zeros(z.shape[1])
    reg = l2 * np.eye(z.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(iters):
        p = sigmoid(z @ w)
        grad = z.T @ (cw * (p - y)) + reg @ w
        hess = (z * (cw * p * (1 - p))[:, None]).T @ z + reg + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Logistic(mean, std, w[:-1], float(w[-1]))
