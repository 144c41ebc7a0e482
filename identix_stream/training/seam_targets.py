"""Where a training fake was blended, as coarse maps for the blend CNN's auxiliary seam head.

Face X-ray (Li et al., CVPR 2020) supervises a detector with the blending boundary, not only the
image label: the net is told where the evidence is, which pushes it towards the seam and away from
whole-image cues such as lighting or skin tone. Our CNN's last feature map is coarse (input / 16
per side), so the targets are per cell of that map:

- ``altered``: the mean blend weight in the cell (how much of it shows the perturbed or donor face);
- ``seam``: the mean of 4a(1-a) of the weights scaled to peak 1 (Face X-ray's boundary), divided by
  the largest cell's value, so the cells the seam runs through read ~1 whatever the feathering.

A real sample's maps are zero.
"""

from __future__ import annotations

import cv2
import numpy as np

from identix_stream.errors import DataError

SEAM_CHANNELS = 2  # altered, seam


def seam_targets(alpha: np.ndarray, cells: int) -> np.ndarray:
    """(2, cells, cells) float32 targets in 0-1 from an (S, S) blend-weight map (zeros: a real sample)."""
    if alpha.ndim != 2 or alpha.shape[0] != alpha.shape[1]:
        raise DataError(f"blend weights must be a square 2-D map, got shape {alpha.shape}")
    if not 1 <= cells <= alpha.shape[0]:
        raise DataError(f"cells must be 1-{alpha.shape[0]} (the map side), got {cells}")
    a = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    out = np.zeros((SEAM_CHANNELS, cells, cells), np.float32)
    peak = float(a.max())
    if peak <= 1e-3:
        return out
    out[0] = cv2.resize(a, (cells, cells), interpolation=cv2.INTER_AREA)
    unit = a / peak
    boundary = cv2.resize(4.0 * unit * (1.0 - unit), (cells, cells), interpolation=cv2.INTER_AREA)
    top = float(boundary.max())
    if top > 1e-3:
        out[1] = boundary / top
    return out
