"""Command-line options of ``identix-stream train-parsing`` (argparse only: building the CLI must
not import torch)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="shared data root")
    p.add_argument("--out", type=Path, default=Path("runs/parsing"), help="checkpoints and logs")
    p.add_argument("--backbone", choices=["resnet18", "resnet50"], default="resnet18")
    p.add_argument("--size", type=int, choices=[256, 512], default=256)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--coarse-per-batch", type=int, default=3, help="LFW Part Labels items per batch")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--dice-weight", type=float, default=0.5)
    p.add_argument("--hours", type=float, default=2.0, help="time budget for the LR schedule")
    p.add_argument("--max-steps", type=int, default=0, help="step budget instead of time (GPU runs)")
    p.add_argument("--eval-every-min", type=float, default=12.0)
    p.add_argument("--checkpoint-every-min", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--init", type=Path, default=None,
                   help="parser model file to start from (fine-tuning: its weights, a fresh optimizer and schedule); "
                        "ignored when <out>/last.pt exists")
