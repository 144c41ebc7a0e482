"""``identix-stream train-deepfake``: train the deepfake models (blend CNN, spectral fingerprint)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from identix_stream.inference.sbi_spec import SBI_INPUT, SBI_INPUT_RANGE, is_valid_input_size

log = logging.getLogger(__name__)
T = TypeVar("T", int, float)


def _sbi_input_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input-size must be an integer, got {text!r}") from None
    if not is_valid_input_size(size):
        lo, hi = SBI_INPUT_RANGE
        raise argparse.ArgumentTypeError(f"--input-size must be in {lo}-{hi}, got {size}")
    return size


def _ranged(parse: Callable[[str], T], low: T, high: T | None, wanted: str) -> Callable[[str], T]:
    """An argparse type: ``parse`` the text and keep it within [low, high] (no upper bound for None),
    else refuse it as "expected <wanted>, got <value>"."""

    def check(text: str) -> T:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not (low <= value and (high is None or value <= high)):  # NaN fails too
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return check


_probability = _ranged(float, 0.0, 1.0, "a number in 0-1")
_non_negative = _ranged(float, 0.0, None, "a number >= 0")
_count = _ranged(int, 0, None, "a whole number >= 0")
_width = _ranged(int, 4, 64, "a whole number in 4-64")


def _run(args: argparse.Namespace) -> int:
    if args.what == "sbi":
        from identix_stream.training.train_deepfake import TrainConfig, train

        cfg = TrainConfig(Path(args.data), Path(args.out), minutes=args.minutes, batch=args.batch,
                          lr=args.lr, threads=args.threads, parser=Path(args.parser) if args.parser else None,
                          pool_faces=args.pool_faces, init=Path(args.init) if args.init else None,
                          cross_share=args.cross_share, hard_real_weight=args.hard_real_weight,
                          equalize_luma=args.equalize_luma, input_size=args.input_size,
                          small_codec=args.small_codec, frame_edges=args.frame_edges,
                          seam_weight=args.seam_weight, device=args.device, workers=args.workers,
                          width=args.width)
        result = train(cfg)
    elif args.what == "fusion":
        from identix_stream.training.fit_fusion import fit_fusion

        if not args.parser:
            raise SystemExit("train-deepfake fusion needs --parser")
        result = fit_fusion(Path(args.data), Path(args.parser), Path(args.models_dir),
                            resolution_for_shipped=args.resolution_for_shipped)
    elif args.what == "boundary":
        from identix_stream.training.train_boundary import train_boundary

        result = train_boundary(Path(args.data), Path(args.out))
    else:
        from identix_stream.training.train_spectral import train_spectral

        result = train_spectral(Path(args.data), Path(args.out))
    print(json.dumps(result, indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-deepfake", help="train a deepfake evidence model",
                       description="Train the self-blended-image CNN (sbi), the spectral fingerprint model "
                                   "(spectral) or the boundary-consistency head (boundary) from ../shared/data. "
                                   "Outputs go to --out; copy the chosen file to models/.")
    p.add_argument("what", choices=("sbi", "spectral", "boundary", "fusion"))
    p.add_argument("--data", default="../shared/data", help="shared data root")
    p.add_argument("--out", default="runs/deepfake", help="output folder (checkpoints, logs)")
    p.add_argument("--minutes", type=float, default=20.0, help="training time budget (sbi)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--models-dir", default="models", help="deepfake model files to fit the fusion on (fusion)")
    p.add_argument("--small-codec", type=_probability, default=0.0,
                   help="share of downscaled training samples JPEG/H.264-compressed at their small size, "
                        "real and fake alike (sbi)")
    p.add_argument("--frame-edges", type=_probability, default=0.0,
                   help="cut training crops black outside the image, as the service does, and this share of "
                        "them at a frame edge that clips the face (sbi)")
    p.add_argument("--seam-weight", type=_non_negative, default=0.0,
                   help="> 0: an auxiliary head learns where each fake was blended (Face X-ray style), with "
                        "this weight on its loss; the shipped file keeps only the image head (sbi)")
    p.add_argument("--device", default="cpu",
                   help="where the blend CNN trains: cpu, cuda, cuda:N or auto (CUDA when there is one; sbi)")
    p.add_argument("--workers", type=_count, default=0,
                   help="processes that build the training batches; a GPU needs several (sbi, default 0: this one)")
    p.add_argument("--width", type=_width, default=16,
                   help="channels of the blend CNN's first stage (16: the shipped 1.2 M parameters; 32: 4x; sbi)")
    p.add_argument("--resolution-for-shipped", action="store_true",
                   help="fit the resolution reliability for the shipped FUSION_GROUPS, not the new fit (fusion)")
    p.add_argument("--parser", help="parser model: adds parsed faces of the fit half of the talking heads (sbi)")
    p.add_argument("--pool-faces", type=int, default=0,
                   help="with --parser: parse this many unlabelled LFW pool photos into the training faces (sbi)")
    p.add_argument("--cross-share", type=float, default=0.0,
                   help="share of fakes that blend another training face in (Face X-ray style) instead of a self-blend")
    p.add_argument("--init", help="blend model file to start a new run from (sbi fine-tuning)")
    p.add_argument("--hard-real-weight", type=float, default=0.0,
                   help="draw a pool photo 1 + this x (starting model's blend score) times as often: real photos the "
                        "model mistakes for blends are seen more (sbi)")
    p.add_argument("--equalize-luma", action="store_true",
                   help="histogram-equalise the luma of every CNN input, in training and (marked in the model "
                        "file) in the service: exposure and skin tone stop being cues (sbi)")
    p.add_argument("--input-size", type=_sbi_input_size, default=SBI_INPUT,
                   help=f"square CNN input side in pixels, {SBI_INPUT_RANGE[0]}-{SBI_INPUT_RANGE[1]} (marked in the "
                        f"model file; the 256-px parser crop is resized to it; sbi, default {SBI_INPUT})")
    p.set_defaults(func=_run)
