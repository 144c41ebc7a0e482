from __future__ import annotations

import numpy as np
import pytest

from identix_stream.core.metrics import confusion, summarize


def test_confusion_ignores_and_counts() -> None:
    target = np.array([0, 1, 1, 2, 255])
    pred = np.array([0, 1, 2, 2, 1])
    conf = confusion(pred, target, 3)
    assert conf.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_summary_values() -> None:
    conf = np.array([[10, 0, 0], [0, 3, 1], [0, 1, 5]])
    s = summarize(conf, ("bg", "a", "b"), (1, 2))
    per_class = s["per_class"]
    assert isinstance(per_class, dict)
    assert per_class["a"]["f1"] == pytest.approx(2 * 3 / (6 + 1 + 1), abs=1e-4)
    assert s["pixel_acc"] == pytest.approx(18 / 20)
    assert s["mean_f1"] == pytest.approx((0.75 + 2 * 5 / 12) / 2, abs=1e-4)


def test_out_of_range_label_is_rejected() -> None:
    with pytest.raises(ValueError, match="out of range"):
        confusion(np.array([5]), np.array([0]), 3)
