"""Reading and writing face-parsing model files.

Our format (``identix-bisenet/1``) is a torch.save'd dict with the architecture, the crop
geometry, the input normalisation, the metrics it shipped with and an fp16 state dict without the
training-only auxiliary heads. Public face-parsing.PyTorch checkpoints (a bare state dict with
19 CelebAMask-HQ outputs, e.g. ``79999_iter.pth``) load too, with their classes mapped to ours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from identix_stream.core.classes import FACEPARSING19_TO_11, NUM_CLASSES
from identix_stream.core.geometry import CROP_SCALE, CROP_SHIFT_Y
from identix_stream.errors import ModelError
from identix_stream.inference.bisenet import BiSeNet

log = logging.getLogger(__name__)

FORMAT = "identix-bisenet/1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
AUX_PREFIXES = ("conv_out16.", "conv_out32.")


@dataclass(frozen=True)
class ParserSpec:
    """Everything needed to run a parsing model the way it was trained."""

    backbone: str = "resnet18"
    spatial_path: bool = True
    n_outputs: int = NUM_CLASSES
    input_size: int = 256
    crop_scale: float = CROP_SCALE
    crop_shift_y: float = CROP_SHIFT_Y
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    # maps model output ids to our 11 classes (None: outputs already are our classes)
    output_to_ours: tuple[int, ...] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def build_model(spec: ParserSpec) -> BiSeNet:
    if spec.backbone not in ("resnet18", "resnet50"):
        raise ModelError(f"unknown backbone {spec.backbone!r}")
    return BiSeNet(spec.n_outputs, backbone=spec.backbone, spatial_path=spec.spatial_path)  # type: ignore[arg-type]


def save_parser(model: BiSeNet, spec: ParserSpec, path: Path, extra: dict[str, Any] | None = None) -> None:
    state = {k: v.detach().to("cpu", torch.float16 if v.is_floating_point() else v.dtype)
             for k, v in model.state_dict().items() if not k.startswith(AUX_PREFIXES)}
    payload = {
        "format": FORMAT,
        "spec": {
            "backbone": spec.backbone,
            "spatial_path": spec.spatial_path,
            "n_outputs": spec.n_outputs,
            "input_size": spec.input_size,
            "crop_scale": spec.crop_scale,
            "crop_shift_y": spec.crop_shift_y,
            "mean": list(spec.mean),
            "std": list(spec.std),
            "metrics": spec.metrics,
        },
        "extra": extra or {},
        "state_dict": state,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def _load_state(model: BiSeNet, state: dict[str, torch.Tensor], path: Path) -> None:
    state = {k.removeprefix("module."): v.float() if v.is_floating_point() else v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(AUX_PREFIXES)]
    unexpected = [k for k in unexpected if not k.startswith(AUX_PREFIXES)]
    if missing or unexpected:
        raise ModelError(
            f"{path}: state dict does not match the architecture "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]})"
        )


def load_parser(path: Path) -> tuple[BiSeNet, ParserSpec]:
    """Load a model file (ours or a public 19-class checkpoint) on the CPU in eval mode."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"cannot read model file {path}: {exc}") from exc
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        raw = payload["spec"]
        spec = ParserSpec(
            backbone=raw["backbone"],
            spatial_path=bool(raw["spatial_path"]),
            n_outputs=int(raw["n_outputs"]),
            input_size=int(raw["input_size"]),
            crop_scale=float(raw["crop_scale"]),
            crop_shift_y=float(raw["crop_shift_y"]),
            mean=tuple(raw["mean"]),
            std=tuple(raw["std"]),
            metrics=dict(raw.get("metrics", {})),
            source=str(path),
        )
        model = build_model(spec)
        _load_state(model, payload["state_dict"], path)
    elif isinstance(payload, dict) and "cp.resnet.conv1.weight" in {k.removeprefix("module.") for k in payload}:
        spec = _public_checkpoint_spec(payload, path)
        model = build_model(spec)
        _load_state(model, payload, path)
    else:
        raise ModelError(f"{path} is neither an identix-stream model nor a face-parsing.PyTorch checkpoint")
    model.eval()
    return model, spec


def _public_checkpoint_spec(state: dict[str, torch.Tensor], path: Path) -> ParserSpec:
    keys = {k.removeprefix("module."): v for k, v in state.items()}
    head = keys.get("conv_out.conv_out.weight")
    if head is None:
        raise ModelError(f"{path}: no conv_out.conv_out.weight in checkpoint")
    n_out = int(head.shape[0])
    if n_out != 19:
        raise ModelError(f"{path}: expected a 19-class CelebAMask-HQ checkpoint, found {n_out} outputs")
    backbone = "resnet50" if "cp.resnet.layer1.0.conv3.weight" in keys else "resnet18"
    log.info("loading public face-parsing.PyTorch checkpoint %s (%s, 19 -> 11 classes)", path, backbone)
    return ParserSpec(
        backbone=backbone,
        spatial_path="sp.conv1.conv.weight" in keys,
        n_outputs=19,
        input_size=512,
        output_to_ours=tuple(int(v) for v in FACEPARSING19_TO_11[:19]),
        source=str(path),
    )


def outputs_to_ours(logits: torch.Tensor, spec: ParserSpec) -> torch.Tensor:
    """Turn model logits (N, n_outputs, H, W) into log-probability-like scores over our 11 classes."""
    if spec.output_to_ours is None:
        return logits
    probs = logits.softmax(1)
    index = torch.as_tensor(np.asarray(spec.output_to_ours), device=logits.device)
    out = torch.zeros(logits.shape[0], NUM_CLASSES, *logits.shape[2:], dtype=probs.dtype, device=logits.device)
    out.index_add_(1, index, probs)
    return out.clamp_min(1e-6).log()
