"""The device a training run uses (``--device`` of train-parsing and train-deepfake)."""

from __future__ import annotations

import torch

from identix_stream.errors import ConfigError


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when there is one, else the CPU; otherwise the named device, which must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name!r}: {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device here")
    return device
