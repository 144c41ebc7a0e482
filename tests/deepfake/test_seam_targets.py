"""The auxiliary seam-head targets: where a training fake was blended, per cell of the CNN's last map."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from identix_stream.errors import DataError
from identix_stream.training.seam_targets import seam_targets


def _feathered_disc(size: int = 128, radius: int = 40, sigma: float = 4.0, ratio: float = 1.0) -> np.ndarray:
    disc = np.zeros((size, size), np.float32)
    cv2.circle(disc, (size // 2, size // 2), radius, 1.0, -1)
    return cv2.GaussianBlur(disc, (0, 0), sigma) * ratio


def test_a_real_sample_has_empty_maps() -> None:
    out = seam_targets(np.zeros((128, 128), np.float32), 8)
    assert out.shape == (2, 8, 8) and out.dtype == np.float32
    assert not out.any()


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_altered_covers_the_blend_and_seam_peaks_on_its_edge(ratio: float) -> None:
    out = seam_targets(_feathered_disc(ratio=ratio), 8)
    altered, seam = out
    assert altered[3:5, 3:5].min() > 0.95 * ratio  # the disc's centre cells are fully blended
    assert altered[0, 0] == 0.0 and seam[0, 0] == 0.0  # a corner far from the disc: nothing
    assert seam.max() == pytest.approx(1.0)
    # the ring of radius 40 px crosses the cells 2.5 cells from the centre, not the centre itself
    assert seam[3:5, 3:5].max() < 0.2
    assert seam[1, 4] > 0.5 and seam[4, 1] > 0.5


def test_a_weaker_blend_keeps_its_seam_where_the_edge_is() -> None:
    """A blend ratio of 0.5 halves what is altered but not where the seam runs."""
    full, half = seam_targets(_feathered_disc(ratio=1.0), 8), seam_targets(_feathered_disc(ratio=0.5), 8)
    np.testing.assert_allclose(half[0], 0.5 * full[0], atol=1e-5)
    np.testing.assert_allclose(half[1], full[1], atol=1e-5)


def test_cells_need_not_divide_the_side() -> None:
    """A 100-px input gives a 7x7 feature map; its cells still get the disc's centre and corners right."""
    out = seam_targets(_feathered_disc(size=100, radius=30, sigma=3.0), 7)
    assert out.shape == (2, 7, 7)
    assert out[0, 3, 3] > 0.95 and out[0, 0, 0] == 0.0


@pytest.mark.parametrize(("shape", "cells"), [((128, 96), 8), ((128,), 8), ((128, 128), 129), ((128, 128), 0)])
def test_bad_maps_are_refused(shape: tuple[int, ...], cells: int) -> None:
    with pytest.raises(DataError):
        seam_targets(np.zeros(shape, np.float32), cells)


def test_the_seam_loss_trains_a_head_that_finds_the_blend() -> None:
    """_batch_loss adds the seam head's loss to the image loss; a few steps on blends of a known region
    teach the head where they are."""
    import torch
    from torch import nn

    from identix_stream.inference.deepfake_nets import SBINet
    from identix_stream.training.seam_targets import SEAM_CHANNELS
    from identix_stream.training.train_deepfake import _batch_loss

    torch.manual_seed(0)
    model, head = SBINet(8), nn.Conv2d(128, SEAM_CHANNELS, 1)
    rng = np.random.default_rng(0)
    real = rng.normal(0, 0.3, (4, 3, 64, 64)).astype(np.float32)
    fake = real.copy()
    fake[:, :, 8:40, 8:40] += 1.0  # a blended square, top left
    alpha = np.zeros((64, 64), np.float32)
    alpha[8:40, 8:40] = 1.0
    targets = torch.from_numpy(np.stack([seam_targets(a, 4) for a in [np.zeros_like(alpha)] * 4 + [alpha] * 4]))
    x, y = torch.from_numpy(np.concatenate([real, fake])), torch.tensor([0.0] * 4 + [1.0] * 4)
    image_only = _batch_loss(model, None, x, y, targets, 0.0)
    with_seams = _batch_loss(model, head, x, y, targets, 1.0)
    assert with_seams.item() > image_only.item()
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=1e-2)
    for _ in range(40):
        loss = _batch_loss(model, head, x, y, targets, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        altered = torch.sigmoid(head(model.body(model.stem(x[4:]))))[:, 0].mean(0).numpy()  # 4x4 cells
    assert altered[:2, :2].mean() > 0.7 and altered[2:, 2:].mean() < 0.3, altered
