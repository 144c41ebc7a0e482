"""The small CNN of the blend-artifact factor (self-blended images, Shiohara & Yamasaki 2022).

Trained from scratch on 2 CPU cores in minutes, so it is small: five stages, ~1.2 M parameters,
one logit (fake), 128x128 input unless the file says otherwise (``meta["input_size"]``: the network
is fully convolutional, so a file fine-tuned at another size loads the same way). The model file
holds ``{"format", "state_dict", "meta"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from identix_stream.errors import ModelError
from identix_stream.inference.sbi_spec import SBI_INPUT, SBI_INPUT_RANGE, is_valid_input_size

SBI_FORMAT = "identix-sbi-v1"
SBI_MEAN = 0.5
SBI_STD = 0.25
LUMA_EQUALIZED = "luma-equalized"  # meta["input_norm"] of a model trained on histogram-equalised luma


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def feature_side(input_side: int) -> int:
    """Side of SBINet's last feature map (and ``logit_map``) for a square input: four stride-2 stages,
    each rounding up."""
    side = input_side
    for _ in range(4):
        side = (side + 1) // 2
    return side


class SBINet(nn.Module):
    """Full-resolution stem (blend seams are a few pixels wide), then stride-2 stages and a linear head."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        self.body = nn.Sequential(_stage(w, 2 * w), _stage(2 * w, 4 * w), _stage(4 * w, 8 * w), _stage(8 * w, 16 * w))
        self.head = nn.Linear(16 * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(self.stem(x))
        return self.head(f.mean((2, 3))).squeeze(1)

    def logit_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, h, w) logits of each position of the last feature map (``feature_side``). The head is
        linear after the mean pool, so their mean is exactly ``forward``'s logit; the map shows where
        the evidence comes from (class activation map, Zhou et al. 2016)."""
        f = self.body(self.stem(x))
        return torch.einsum("nchw,c->nhw", f, self.head.weight[0]) + self.head.bias


def equalize_luma(crops_rgb: np.ndarray) -> np.ndarray:
    """Histogram-equalise each crop's luma (YCrCb Y), keeping its chroma.

    Takes exposure, contrast and skin tone out of what the blend CNN can key on: the CNN without it
    scored a dark-skinned, flatly lit real face as blended (docs/deepfake.md)."""
    out = np.empty_like(crops_rgb)
    for i, crop in enumerate(crops_rgb):
        ycc = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2YCrCb)
        ycc[..., 0] = cv2.equalizeHist(ycc[..., 0])
        out[i] = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
    return out


def sbi_input(crops_rgb: np.ndarray, equalize: bool = False) -> torch.Tensor:
    """(N, S, S, 3) uint8 RGB -> normalised NCHW float tensor (luma equalised first when ``equalize``)."""
    if equalize:
        crops_rgb = equalize_luma(crops_rgb)
    x = torch.from_numpy(np.ascontiguousarray(crops_rgb)).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - SBI_MEAN) / SBI_STD


def equalizes_input(meta: dict[str, Any]) -> bool:
    """Whether a model file's input must be luma-equalised (files before this option: no)."""
    return meta.get("input_norm") == LUMA_EQUALIZED


def input_size(meta: dict[str, Any]) -> int:
    """The square input side a model file was trained at (files before this option: 128)."""
    size = meta.get("input_size", SBI_INPUT)
    if not is_valid_input_size(size):
        raise ModelError(f"deepfake blend model input_size must be an int in {SBI_INPUT_RANGE}, got {size!r}")
    return size


def resize_for_sbi(crops_bgr: Sequence[np.ndarray], size: int) -> np.ndarray:
    """BGR face crops -> (N, size, size, 3) RGB uint8, resized the way the scorer and training agree on."""
    return np.stack([cv2.cvtColor(cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
                     for c in crops_bgr])


def save_sbi(model: SBINet, path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}  # a file trained on a GPU loads anywhere
    torch.save({"format": SBI_FORMAT, "state_dict": weights, "meta": meta}, tmp)
    tmp.replace(path)


def load_sbi(path: Path) -> tuple[SBINet, dict[str, Any]]:
    """The blend-artifact model in eval mode on the CPU."""
    if not path.is_file():
        raise ModelError(f"deepfake blend model not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"cannot read deepfake blend model {path}: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("format") != SBI_FORMAT:
        raise ModelError(f"{path} is not an {SBI_FORMAT} model file")
    meta = dict(blob.get("meta", {}))
    input_size(meta)  # a bad value fails at load, not on the first frame
    model = SBINet(int(meta.get("width", 16)))
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not match SBINet: {exc}") from exc
    return model.eval(), meta
