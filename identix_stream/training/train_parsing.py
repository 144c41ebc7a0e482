"""Train the 11-class BiSeNet face parser (``identix-stream train-parsing``).

Seeded and resumable: ``<out>/last.pt`` is written every few minutes and on exit, and a rerun with
the same ``--out`` continues from it. The learning rate follows a warm-up + cosine schedule over a
time budget (CPU runs) or a step budget (``--max-steps``), whichever is given. The best model by
held-out CelebAMask mean F1 is exported to ``<out>/best_model.pt`` in the shipping format.
``--init MODEL`` starts a new run from a parser file's weights (fine-tuning).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import queue
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from identix_stream.core.classes import CLASS_NAMES, F1_CLASSES, IGNORE_INDEX, NUM_CLASSES, OURS_TO_LFW3
from identix_stream.core.geometry import crop_window
from identix_stream.core.metrics import confusion, summarize
from identix_stream.errors import ModelError
from identix_stream.inference.bisenet import BiSeNet
from identix_stream.inference.model_file import (
    AUX_PREFIXES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ParserSpec,
    build_model,
    load_parser,
    save_parser,
)
from identix_stream.training.augment import occlude, photometric, random_crop
from identix_stream.training.data import Sample, load_celebamask, load_lfw_parts
from identix_stream.training.device import pick_device
from identix_stream.training.losses import parsing_loss
from identix_stream.training.options import add_arguments

log = logging.getLogger(__name__)


class BatchMaker:
    """Builds augmented batches on a background thread (OpenCV releases the GIL)."""

    def __init__(self, fine: list[Sample], coarse: list[Sample], args: argparse.Namespace, seed: int) -> None:
        self.fine, self.coarse, self.args = fine, coarse, args
        self.rng = np.random.default_rng(seed)
        self.queue: queue.Queue[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = queue.Queue(maxsize=3)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="batch-maker", daemon=True)
        self.thread.start()

    def _item(self, s: Sample) -> tuple[np.ndarray, np.ndarray]:
        img, lab = random_crop(s.image, s.labels, s.face_box, self.rng, self.args.size, sided_labels=not s.coarse)
        if not s.coarse and self.rng.random() < 0.15:
            occlude(img, lab, self.rng)
        return photometric(img, self.rng), lab

    def _run(self) -> None:
        n_coarse = self.args.coarse_per_batch if self.coarse else 0
        n_fine = self.args.batch - n_coarse
        while not self.stop.is_set():
            picks = [self.fine[i] for i in self.rng.integers(0, len(self.fine), n_fine)]
            picks += [self.coarse[i] for i in self.rng.integers(0, len(self.coarse), n_coarse)]
            items = [self._item(s) for s in picks]
            x = to_tensor(np.stack([im for im, _ in items]))
            y = torch.from_numpy(np.stack([lab for _, lab in items]))
            c = torch.tensor([s.coarse for s in picks])
            while not self.stop.is_set():
                try:
                    self.queue.put((x, y, c), timeout=0.5)
                    break
                except queue.Full:
                    continue

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.queue.get()

    def close(self) -> None:
        self.stop.set()


MEAN = np.array(IMAGENET_MEAN, np.float32) * 255
STD = np.array(IMAGENET_STD, np.float32) * 255


def to_tensor(bgr_batch: np.ndarray) -> torch.Tensor:
    rgb = bgr_batch[..., ::-1].astype(np.float32)
    return torch.from_numpy(((rgb - MEAN) / STD).transpose(0, 3, 1, 2).copy())


def lr_factor(progress: float, warmup: float = 0.03) -> float:
    if progress < warmup:
        return 0.05 + 0.95 * progress / warmup
    p = min(1.0, (progress - warmup) / (1 - warmup))
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p))


@torch.no_grad()
def evaluate(model: BiSeNet, samples: list[Sample], size: int, device: torch.device, batch: int = 16) -> dict[str, Any]:
    """Metrics in crop space with the service's crop window around the labelled face box."""
    model.eval()
    n = NUM_CLASSES
    coarse = bool(samples) and samples[0].coarse
    conf = np.zeros((3, 3) if coarse else (n, n), np.int64)
    for i in range(0, len(samples), batch):
        chunk = samples[i : i + batch]
        crops, labs = [], []
        for s in chunk:
            m = crop_window(s.face_box).affine(size)
            crops.append(cv2.warpAffine(s.image, m, (size, size), flags=cv2.INTER_LINEAR))
            labs.append(cv2.warpAffine(s.labels, m, (size, size), flags=cv2.INTER_NEAREST, borderValue=IGNORE_INDEX))
        logits = model(to_tensor(np.stack(crops)).to(device).contiguous(memory_format=torch.channels_last))
        pred = logits.max(1).indices.cpu().numpy().astype(np.uint8)
        if coarse:
            pred = OURS_TO_LFW3[pred]
        conf += confusion(pred, np.stack(labs), conf.shape[0])
    model.train()
    if coarse:
        return summarize(conf, ("background", "face", "hair"), (1, 2))
    return summarize(conf, CLASS_NAMES, F1_CLASSES)


def init_weights(model: BiSeNet, spec: ParserSpec, path: Path) -> None:
    """Start from a shipped parser file (fine-tuning). Its auxiliary heads were not shipped, so those
    start fresh; the architecture and framing must match the run's."""
    source, source_spec = load_parser(path)
    fields = ("backbone", "input_size", "n_outputs", "crop_scale", "crop_shift_y", "output_to_ours")
    if any(getattr(source_spec, f) != getattr(spec, f) for f in fields):
        raise ModelError(f"--init {path}: a {source_spec.backbone} {source_spec.input_size}-px model does not "
                         f"match this run ({spec.backbone}, {spec.input_size} px, crop {spec.crop_scale})")
    model.load_state_dict(source.state_dict())
    log.info("initialised from %s (auxiliary heads %s start fresh)", path, ", ".join(AUX_PREFIXES))


def run(args: argparse.Namespace) -> dict[str, Any]:
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    celeb_root = args.data / "face_parsing" / "celebamask_mini"
    lfw_root = args.data / "face_parsing" / "lfw_parts"
    t0 = time.monotonic()
    fine_train = load_celebamask(celeb_root, "train")
    fine_val = load_celebamask(celeb_root, "val")
    coarse_train = load_lfw_parts(lfw_root, "train") if args.coarse_per_batch > 0 else []
    coarse_val = load_lfw_parts(lfw_root, "val")[:200]
    log.info("data: %d/%d CelebAMask train/val, %d LFW train, %d LFW val (%.0fs)",
             len(fine_train), len(fine_val), len(coarse_train), len(coarse_val), time.monotonic() - t0)

    spec = ParserSpec(backbone=args.backbone, input_size=args.size)
    model = build_model(spec)
    last = args.out / "last.pt"
    if args.init is not None and not last.is_file():
        init_weights(model, spec, args.init)
    model = model.to(device).to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    state: dict[str, Any] = {"step": 0, "train_seconds": 0.0, "best_f1": -1.0, "history": []}
    if last.is_file():
        ckpt = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        state = ckpt["state"]
        log.info("resumed from %s at step %d (%.0f min trained)", last, state["step"], state["train_seconds"] / 60)

    def save_checkpoint() -> None:
        tmp = last.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state, "args": vars(args)}, tmp)
        tmp.replace(last)

    budget = args.hours * 3600.0
    maker = BatchMaker(fine_train, coarse_train, args, seed=args.seed + state["step"])
    log_file = (args.out / "train_log.jsonl").open("a")
    last_ckpt = last_eval = time.monotonic()
    running = 0.0
    try:
        while True:
            progress = state["step"] / args.max_steps if args.max_steps else state["train_seconds"] / budget
            if progress >= 1.0:
                break
            step_start = time.monotonic()
            for group in opt.param_groups:
                group["lr"] = args.lr * lr_factor(progress)
            x, y, coarse = maker.next()
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            y, coarse = y.to(device), coarse.to(device)
            out, out16, out32 = model(x)
            loss = parsing_loss(out, y, coarse, args.dice_weight)
            loss = loss + 0.4 * (parsing_loss(out16, y, coarse, 0.0) + parsing_loss(out32, y, coarse, 0.0))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] += 1
            state["train_seconds"] += time.monotonic() - step_start
            running = 0.98 * running + 0.02 * loss.item() if state["step"] > 1 else loss.item()
            if state["step"] % 25 == 0:
                log.info("step %d  %.1f min  lr %.2e  loss %.4f", state["step"], state["train_seconds"] / 60,
                         opt.param_groups[0]["lr"], running)
            now = time.monotonic()
            if now - last_eval > args.eval_every_min * 60:
                _evaluate_and_export(model, spec, fine_val, coarse_val, args, device, state, log_file, running)
                last_eval = time.monotonic()
            if now - last_ckpt > args.checkpoint_every_min * 60:
                save_checkpoint()
                last_ckpt = time.monotonic()
        _evaluate_and_export(model, spec, fine_val, coarse_val, args, device, state, log_file, running)
    finally:
        maker.close()
        save_checkpoint()
        log_file.close()
    return state


def _evaluate_and_export(
    model: BiSeNet, spec: ParserSpec, fine_val: list[Sample], coarse_val: list[Sample],
    args: argparse.Namespace, device: torch.device, state: dict[str, Any], log_file: Any, loss: float,
) -> None:
    celeb = evaluate(model, fine_val, args.size, device)
    lfw = evaluate(model, coarse_val, args.size, device) if coarse_val else {}
    record = {
        "step": state["step"], "minutes": round(state["train_seconds"] / 60, 1), "loss": round(loss, 4),
        "celebamask_val_mean_f1": celeb["mean_f1"], "celebamask_val_miou": celeb["miou"],
        "lfw_val_pixel_acc": lfw.get("pixel_acc"),
        "per_class_f1": {k: v["f1"] for k, v in celeb["per_class"].items()},
    }
    state["history"].append(record)
    log_file.write(json.dumps(record) + "\n")
    log_file.flush()
    log.info("eval: %s", json.dumps(record))
    f1 = float(celeb["mean_f1"] or 0.0)
    if f1 > state["best_f1"]:
        state["best_f1"] = f1
        metrics = {"celebamask_val": {"mean_f1": celeb["mean_f1"], "miou": celeb["miou"], "n": len(fine_val)},
                   "lfw_val_subset": {"pixel_acc": lfw.get("pixel_acc"), "n": len(coarse_val)},
                   "step": state["step"], "train_minutes": record["minutes"]}
        save_parser(model, replace(spec, metrics=metrics), args.out / "best_model.pt",
                    extra={"seed": args.seed, "args": {k: str(v) for k, v in vars(args).items()}})
        log.info("new best model (mean F1 %.4f) -> %s", f1, args.out / "best_model.pt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="identix-stream train-parsing", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
