"""Train the blend-artifact model on self-blended images of real faces only.

Resumable (``<out>/sbi_last.pt``), time-boxed, one torch thread by default so it can run beside
the parser training. Data: CelebAMask-mini (fine masks) and LFW Part Labels (coarse face masks)
from ../shared/data; our held-out CelebAMask split (the parser's validation names) is the
validation set, as self-blends vs the untouched images.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from identix_stream.core.deepfake_metrics import roc_auc
from identix_stream.errors import ConfigError
from identix_stream.inference.deepfake_nets import (
    LUMA_EQUALIZED,
    SBI_INPUT,
    SBINet,
    equalizes_input,
    feature_side,
    input_size,
    load_sbi,
    resize_for_sbi,
    save_sbi,
    sbi_input,
)
from identix_stream.training.data import Sample, lfw_pool_training_paths, load_celebamask, load_lfw_parts
from identix_stream.training.device import pick_device
from identix_stream.training.sbi import (
    crop_sample,
    cross_blend_with_alpha,
    degrade_flipped,
    face_parts,
    self_blend_with_alpha,
)
from identix_stream.training.seam_targets import SEAM_CHANNELS, seam_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    data_root: Path
    out_dir: Path
    minutes: float = 20.0
    batch: int = 32
    lr: float = 2e-3
    threads: int = 1
    width: int = 16
    seed: int = 0
    parser: Path | None = None  # with a parser model, frames of the "fit" talking heads join the data
    video_share: float = 0.33  # share of each batch drawn from those video faces
    pool_faces: int = 0  # with a parser, this many unlabelled LFW pool photos join the data (parsed)
    init: Path | None = None  # start a new run from these blend-model weights (fine-tuning)
    cross_share: float = 0.0  # share of fakes that blend in another training face instead of the same one
    hard_real_weight: float = 0.0  # pool photo sampling weight 1 + this x the starting model's blend score
    equalize_luma: bool = False  # train (and mark the file) for histogram-equalised luma input
    input_size: int = SBI_INPUT  # square CNN input side (marked in the file; --init files of any size load)
    small_codec: float = 0.0  # share of downscaled training samples compressed at their small size (sbi.degrade)
    frame_edges: float = 0.0  # > 0: crops black outside the frame, this share cut at a frame edge (sbi.crop_sample)
    seam_weight: float = 0.0  # > 0: loss weight of an auxiliary head that learns where fakes were blended
    device: str = "cpu"  # "auto": CUDA when there is one
    workers: int = 0  # > 0: processes that build the batches (a GPU outruns one core's blending)


def _prepare(samples: list[Sample]) -> list[tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]]:
    return [(s.image, face_parts(s.labels, s.coarse), s.face_box) for s in samples]


Item = tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]


def _parsed_items(crops: list[np.ndarray], runtime: Any) -> list[Item]:
    """(crop, face part map, face box) for each crop our parser finds a face in."""
    from identix_stream.core.classes import FACE_CLASSES
    from identix_stream.core.geometry import face_box_from_labels

    items: list[Item] = []
    for crop, lab in zip(crops, runtime.labels(crops), strict=True):
        box = face_box_from_labels(lab, FACE_CLASSES)
        if box is not None:
            items.append((crop, face_parts(lab, coarse=False), box))
    return items


def parsed_real_items(data_root: Path, parser: Path, pool_faces: int) -> tuple[list[Item], list[Item]]:
    """Real faces our parser labels: the fit half of the talking heads (H.264, framed like the service)
    and ``pool_faces`` unlabelled LFW pool photos outside the fusion reserve (many more identities,
    cameras and occluders than CelebAMask). Returns (video items, pool items)."""
    from identix_stream.inference.detector import FaceDetector
    from identix_stream.inference.parser_runtime import ParserRuntime
    from identix_stream.training.video_crops import TALKING_HEADS_FIT, photo_faces, video_faces

    runtime = ParserRuntime.load(parser, "cpu", "fp32")
    spec = runtime.spec
    detector = FaceDetector()
    video: list[Item] = []
    pool: list[Item] = []
    try:
        for name in TALKING_HEADS_FIT:
            path = data_root / "videos" / "talking_heads" / f"{name}.mp4"
            faces = video_faces(path, detector, every=5, limit=40, scale=spec.crop_scale, shift_y=spec.crop_shift_y)
            video += _parsed_items([f.crop for f in faces], runtime)
        photos = photo_faces(lfw_pool_training_paths(data_root, pool_faces), detector,
                             scale=spec.crop_scale, shift_y=spec.crop_shift_y)
        pool = _parsed_items([f.crop for f in photos], runtime)
    finally:
        detector.close()
    return video, pool


def make_pair(item: Item, rng: np.random.Generator, donor: Item | None = None, size: int = SBI_INPUT,
              small_codec: float = 0.0, frame_edges: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(real, fake) RGB ``size`` px crops of one face (see ``make_pair_with_alpha``)."""
    real, fake, _ = make_pair_with_alpha(item, rng, donor, size, small_codec, frame_edges)
    return real, fake


def make_pair_with_alpha(item: Item, rng: np.random.Generator, donor: Item | None = None, size: int = SBI_INPUT,
                         small_codec: float = 0.0,
                         frame_edges: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(real, fake) RGB ``size`` px crops of one face, each degraded independently (``small_codec``:
    see sbi.degrade; ``frame_edges``: see sbi.crop_sample), and the fake's blend weights (size x size,
    mirrored with the fake). The fake is a self-blend, or with a ``donor`` face another person's face
    blended in (when both face regions are usable)."""
    img, mask, box = item
    crop, msk = crop_sample(img, mask, box, size, rng, frame_edges)
    blended = None
    if donor is not None:
        d_crop, d_msk = crop_sample(donor[0], donor[1], donor[2], size, rng)
        blended = cross_blend_with_alpha(crop, msk, d_crop, d_msk, rng)
    if blended is None:
        blended = self_blend_with_alpha(crop, msk, rng)
    fake, alpha = blended
    if frame_edges > 0:
        # where the frame ended the crop is black; the blend's perturbed, feathered source would tint it in
        # the fake only, a cue no real swap has
        outside = crop.max(axis=2) == 0
        fake[outside] = 0
        alpha = np.where(outside, 0.0, alpha).astype(np.float32)
    real, _ = degrade_flipped(crop, rng, small_codec)
    fake, flipped = degrade_flipped(fake, rng, small_codec)
    if flipped:
        alpha = alpha[:, ::-1]
    return (cv2.cvtColor(real, cv2.COLOR_BGR2RGB), cv2.cvtColor(fake, cv2.COLOR_BGR2RGB),
            np.ascontiguousarray(alpha, dtype=np.float32))


def validation_set(items: list, seed: int = 1234, size: int = SBI_INPUT,
                   frame_edges: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for it in items:
        r, f = make_pair(it, rng, size=size, frame_edges=frame_edges)
        xs += [r, f]
        ys += [0, 1]
    return np.stack(xs), np.array(ys)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def blend_scores(model: SBINet, crops_bgr: list[np.ndarray], equalize: bool = False,
                 size: int = SBI_INPUT) -> np.ndarray:
    """The model's blend probability for each crop, resized the way the service's scorer does."""
    model.eval()
    out = []
    for k in range(0, len(crops_bgr), 64):
        small = resize_for_sbi(crops_bgr[k:k + 64], size)
        out.append(torch.sigmoid(model(sbi_input(small, equalize).to(_device_of(model)))).float().cpu().numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def sampling_weights(n_labelled: int, pool_scores: np.ndarray, hard_real_weight: float) -> np.ndarray:
    """Cumulative sampling weights over labelled faces then pool photos: a real pool photo the model
    already mistakes for a blend is drawn ``1 + hard_real_weight x score`` times as often (hard-negative
    mining; every pool photo is real, so this can only teach "this look is real")."""
    weights = np.concatenate([np.ones(n_labelled), 1.0 + hard_real_weight * np.asarray(pool_scores, np.float64)])
    return np.cumsum(weights)


@torch.inference_mode()
def evaluate(model: SBINet, x: np.ndarray, y: np.ndarray, equalize: bool = False) -> dict[str, float]:
    model.eval()
    device = _device_of(model)
    logits = torch.cat([model(sbi_input(x[i:i + 64], equalize).to(device)).float().cpu()
                        for i in range(0, len(x), 64)]).numpy()
    model.train()
    return {"auc": roc_auc(logits[y == 0], logits[y == 1]), "acc": float(((logits > 0) == (y == 1)).mean())}


def _batch_loss(model: SBINet, seam_head: nn.Module | None, x: torch.Tensor, y: torch.Tensor,
                targets: torch.Tensor | None, seam_weight: float) -> torch.Tensor:
    """Image-level BCE, plus with a seam head ``seam_weight`` x the BCE of its per-cell maps against
    ``targets`` (``seam_targets`` of each sample: where a fake was blended; zeros for the reals)."""
    features = model.body(model.stem(x))
    loss = F.binary_cross_entropy_with_logits(model.head(features.mean((2, 3))).squeeze(1), y)
    if seam_head is None or targets is None:
        return loss
    return loss + seam_weight * F.binary_cross_entropy_with_logits(seam_head(features), targets)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]  # CNN input, labels, seam targets (or None)


@dataclass
class PairSampler:
    """Draws training batches: real faces and a blend of each (module doc), as CNN-ready tensors."""

    items: list[Item]  # labelled faces, then pool photos (``cum_weights`` over them)
    video_items: list[Item]
    cum_weights: np.ndarray
    cfg: TrainConfig

    def batch(self, rng: np.random.Generator) -> Batch:
        cfg = self.cfg
        xs, ys, alphas = [], [], []
        for _ in range(cfg.batch // 2):
            if self.video_items and rng.random() < cfg.video_share:
                item = self.video_items[int(rng.integers(0, len(self.video_items)))]
            else:
                pick = rng.random() * self.cum_weights[-1]
                item = self.items[int(np.searchsorted(self.cum_weights, pick, side="right"))]
            donor = self.items[int(rng.integers(0, len(self.items)))] if rng.random() < cfg.cross_share else None
            r, f, alpha = make_pair_with_alpha(item, rng, donor, cfg.input_size, cfg.small_codec, cfg.frame_edges)
            xs += [r, f]
            ys += [0.0, 1.0]
            alphas += [np.zeros_like(alpha), alpha]
        targets = None
        if cfg.seam_weight > 0:
            cells = feature_side(cfg.input_size)
            targets = torch.from_numpy(np.stack([seam_targets(a, cells) for a in alphas]))
        return sbi_input(np.stack(xs), cfg.equalize_luma), torch.tensor(ys), targets


class _SampledBatches(IterableDataset):
    """Endless batches from one worker process, each worker with its own random stream."""

    def __init__(self, sampler: PairSampler, seed: int) -> None:
        self.sampler = sampler
        self.seed = seed

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        torch.set_num_threads(1)  # the workers share the cores with the training process
        rng = np.random.default_rng([self.seed, info.id if info is not None else 0])
        while True:
            yield self.sampler.batch(rng)


def batch_stream(sampler: PairSampler, seed: int, workers: int) -> Generator[Batch, None, None]:
    """Batches built in this process (``workers`` 0: the same random stream as before this option) or by
    ``workers`` processes, several batches ahead."""
    if workers == 0:
        rng = np.random.default_rng(seed)
        while True:
            yield sampler.batch(rng)
    loader = DataLoader(_SampledBatches(sampler, seed), batch_size=None, num_workers=workers, prefetch_factor=4,
                        persistent_workers=True)
    yield from loader


def train(cfg: TrainConfig) -> dict[str, float]:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    fp = cfg.data_root / "face_parsing"
    train_items = _prepare(load_celebamask(fp / "celebamask_mini", "train"))
    train_items += _prepare(load_lfw_parts(fp / "lfw_parts", "train"))
    val_x, val_y = validation_set(_prepare(load_celebamask(fp / "celebamask_mini", "val")),
                                  size=cfg.input_size, frame_edges=cfg.frame_edges)
    vid_items: list[Item] = []
    pool_items: list[Item] = []
    if cfg.parser is not None:
        vid_items, pool_items = parsed_real_items(cfg.data_root, cfg.parser, cfg.pool_faces)
    n_labelled = len(train_items)
    train_items += pool_items
    log.info("SBI training on %d faces + %d video faces, validating on %d pairs", len(train_items), len(vid_items),
             len(val_y) // 2)

    model = SBINet(cfg.width)
    if cfg.init is not None:
        init_model, init_meta = load_sbi(cfg.init)
        if int(init_meta.get("width", 16)) != cfg.width:
            raise ConfigError(f"--init model width {init_meta.get('width')} != --width {cfg.width}")
        model.load_state_dict(init_model.state_dict())
    pool_scores = np.zeros(len(pool_items))
    if cfg.hard_real_weight > 0 and pool_items:
        pool_scores = blend_scores(model, [it[0] for it in pool_items], cfg.equalize_luma, cfg.input_size)
        log.info("starting model on the %d real pool photos: mean blend score %.3f, %d above 0.5",
                 len(pool_items), float(pool_scores.mean()), int((pool_scores > 0.5).sum()))
    cum_weights = sampling_weights(n_labelled, pool_scores, cfg.hard_real_weight)
    device = pick_device(cfg.device)
    model = model.to(device)
    seam_head = nn.Conv2d(16 * cfg.width, SEAM_CHANNELS, 1).to(device) if cfg.seam_weight > 0 else None
    params = list(model.parameters()) + (list(seam_head.parameters()) if seam_head is not None else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    last = cfg.out_dir / "sbi_last.pt"
    elapsed, step, best = 0.0, 0, -1.0
    if last.is_file():
        blob = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(blob["model"])
        if (seam_head is not None) != ("seam_head" in blob):
            raise ConfigError(f"{last} was saved {'with' if 'seam_head' in blob else 'without'} a seam head; "
                              "resume it with the --seam-weight it was started with")
        if seam_head is not None:
            seam_head.load_state_dict(blob["seam_head"])
        opt.load_state_dict(blob["opt"])
        elapsed, step, best = blob["elapsed"], blob["step"], blob["best"]
        log.info("resumed at step %d after %.1f min", step, elapsed / 60)
    batches = batch_stream(PairSampler(train_items, vid_items, cum_weights, cfg), cfg.seed + step, cfg.workers)
    log.info("training on %s with %d batch worker(s)", device, cfg.workers)
    budget = cfg.minutes * 60.0
    t0 = time.monotonic() - elapsed
    last_ckpt = time.monotonic()
    log_path = cfg.out_dir / "sbi_log.jsonl"
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    while (elapsed := time.monotonic() - t0) < budget:
        x, y, targets = next(batches)
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = _batch_loss(model, seam_head, x.to(device, non_blocking=True), y.to(device),
                               None if targets is None else targets.to(device), cfg.seam_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 20 == 0:
            log.info("step %d %.1f min loss %.4f lr %.2e", step, elapsed / 60, loss.item(), lr)
        if time.monotonic() - last_ckpt > 120 or (elapsed := time.monotonic() - t0) >= budget:
            metrics = evaluate(model, val_x, val_y, cfg.equalize_luma)
            rec = {"step": step, "minutes": round(elapsed / 60, 2), "loss": round(loss.item(), 4), **metrics}
            with log_path.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            log.info("val %s", rec)
            if metrics["auc"] > best:
                best = metrics["auc"]
                meta: dict[str, Any] = {"width": cfg.width, "input_size": cfg.input_size, "step": step, **metrics,
                                        "minutes": rec["minutes"]}
                if cfg.equalize_luma:
                    meta["input_norm"] = LUMA_EQUALIZED
                if cfg.frame_edges > 0:
                    meta["frame_edges"] = cfg.frame_edges
                if cfg.seam_weight > 0:
                    meta["seam_weight"] = cfg.seam_weight
                save_sbi(model, cfg.out_dir / "sbi_best.pt", meta)
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "elapsed": elapsed, "step": step,
                     "best": best}
            if seam_head is not None:
                state["seam_head"] = seam_head.state_dict()
            torch.save(state, last.with_suffix(".tmp"))
            last.with_suffix(".tmp").replace(last)
            last_ckpt = time.monotonic()
    batches.close()  # stops the worker processes
    final = evaluate(model, val_x, val_y, cfg.equalize_luma)
    return {"step": step, "best_auc": best, **final}


def check_model(path: Path, data_root: Path) -> dict[str, float]:
    """Validation AUC of a saved model file (self-blends of the held-out CelebAMask faces)."""
    model, meta = load_sbi(path)
    val_x, val_y = validation_set(_prepare(load_celebamask(data_root / "face_parsing" / "celebamask_mini", "val")),
                                  size=input_size(meta))
    return evaluate(model, val_x, val_y, equalizes_input(meta))
