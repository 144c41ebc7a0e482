"""Fit the fusion weights of core/deepfake_fusion.py (FUSION_GROUPS) on data none of the factor
heads was trained on, group by group, and print them to paste into that module.

- "swap" group (blend, boundary): real = faces of the fit half of the talking heads (H.264, framed
  as the service frames them: SERVICE_CROP_SCALE) and the held-out CelebAMask split; fake = the same
  video faces with another person's face swapped in (training/face_swap.py, donors from the held-out
  CelebAMask split, H.264 round trip), and self-blends of the held-out CelebAMask faces. (That
  CelebAMask split also chose the blend CNN's best checkpoint: mildly optimistic.)
- "synthetic" group (gan_fingerprint): the same reals vs the 30 StyleGAN3 faces held out of the
  spectral fit.
Then, on the same faces, how far each group can be trusted for smaller faces (training/fit_resolution.py:
RESOLUTION_RELIABILITY). The check sets (gan_vs_real_val, dfdc_crops, the other half of the talking
heads) are not used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from identix_stream.core.deepfake_fusion import FUSION_GROUPS, factor_logit, mixture_log_odds
from identix_stream.core.deepfake_metrics import roc_auc
from identix_stream.core.geometry import SERVICE_CROP_SCALE, box_centre
from identix_stream.core.logistic import fit_logistic
from identix_stream.inference.deepfake_features import native_square
from identix_stream.training.data import lfw_pool_fusion_paths, load_celebamask
from identix_stream.training.face_swap import donor_crop, swap_crop
from identix_stream.training.fit_resolution import ScoredSet, fit_resolution
from identix_stream.training.sbi import crop_sample, face_region, self_blend
from identix_stream.training.train_spectral import N_SG3_HOLDOUT, _images
from identix_stream.training.video_crops import TALKING_HEADS_FIT, h264_roundtrip, photo_faces, video_faces

log = logging.getLogger(__name__)

SWAP_FACTORS = ("blend", "boundary")
N_FIT_PHOTOS = 60


def fit_fusion(data_root: Path, parser: Path, models_dir: Path, seed: int = 0,
               resolution_for_shipped: bool = False) -> dict[str, Any]:
    """Fit the groups and the resolution reliability. With ``resolution_for_shipped`` the reliability
    is fitted for the groups in core/deepfake_fusion.py (FUSION_GROUPS) instead of the new fit."""
    from identix_stream.inference.deepfake_scorer import DeepfakeScorer
    from identix_stream.inference.detector import FaceDetector
    from identix_stream.inference.parser_runtime import ParserRuntime

    rng = np.random.default_rng(seed)
    runtime = ParserRuntime.load(parser, "cpu", "fp32")
    scorer = DeepfakeScorer.load(models_dir, "cpu")

    detector = FaceDetector()
    try:
        vid_faces = [f for n in TALKING_HEADS_FIT for f in video_faces(
            data_root / "videos" / "talking_heads" / f"{n}.mp4", detector, every=10, limit=10,
            scale=SERVICE_CROP_SCALE, shift_y=runtime.spec.crop_shift_y)]
        # LFW pool photos no blend CNN trained on: real stills from many cameras, so the swap head is
        # not calibrated on video and CelebAMask alone
        pool_paths = lfw_pool_fusion_paths(data_root)[:N_FIT_PHOTOS]
        pool_faces = photo_faces(pool_paths, detector, scale=SERVICE_CROP_SCALE, shift_y=runtime.spec.crop_shift_y)
        sg3_faces = photo_faces(_images(data_root / "deepfake" / "stylegan3_fake")[-N_SG3_HOLDOUT:], detector,
                                scale=SERVICE_CROP_SCALE, shift_y=runtime.spec.crop_shift_y)
    finally:
        detector.close()
    vid = [f.crop for f in vid_faces]
    photos = [f.crop for f in pool_faces]
    vid_labels = runtime.labels(vid)
    photo_labels = runtime.labels(photos)
    celeb = load_celebamask(data_root / "face_parsing" / "celebamask_mini", "val")[:60]
    donors = [donor_crop(s.image, s.labels) for s in celeb[:8]]
    # reals keep their source frame, read by the fingerprint as the service reads it (a video frame's
    # one square, a photo's grid of squares); swaps and self-blends exist only as crops, so theirs is
    # the crop's central square
    real_c, real_l = list(vid), list(vid_labels)
    real_src, real_still = [f.source for f in vid_faces], [False] * len(vid_faces)
    swap_c: list[np.ndarray] = []
    swap_l: list[np.ndarray] = []
    for i, (crop, lab) in enumerate(zip(vid, vid_labels, strict=True)):
        donor, donor_lab = donors[i % len(donors)]
        swapped = swap_crop(crop, lab, donor, donor_lab)
        if swapped is not None:
            swap_c.append(h264_roundtrip(swapped[0], int(rng.integers(18, 28))))
            swap_l.append(lab)
    for face, lab in zip(pool_faces, photo_labels, strict=True):
        real_c.append(face.crop)
        real_l.append(lab)
        real_src.append(face.source)
        real_still.append(True)
        swap_c.append(self_blend(face.crop, face_region(lab, False), rng))
        swap_l.append(lab)
    for s in celeb[8:]:
        crop, lab = crop_sample(s.image, s.labels, s.face_box, 256, rng)
        real_c.append(crop)
        real_l.append(lab)
        real_src.append((s.image, box_centre(s.face_box)))
        real_still.append(True)
        swap_c.append(self_blend(crop, face_region(lab, False), rng))
        swap_l.append(lab)
    sg3 = [f.crop for f in sg3_faces]
    sg3_l = runtime.labels(sg3)

    fr = scorer.score(real_c, real_l, real_src, real_still)
    fs = scorer.score(swap_c, swap_l)
    fg = scorer.score(sg3, sg3_l, [f.source for f in sg3_faces], [True] * len(sg3_faces))

    def mat(rows: list[dict[str, float]], names: tuple[str, ...]) -> np.ndarray:
        return np.array([[factor_logit(r.get(n, 0.5)) for n in names] for r in rows])

    swap_names: tuple[str, ...] = SWAP_FACTORS
    ys = np.r_[np.zeros(len(fr)), np.ones(len(fs))]
    while True:  # every factor is evidence *for* fake: one fitted against it (collinear) is dropped
        xs = np.vstack([mat(fr, swap_names), mat(fs, swap_names)])
        swap_head = fit_logistic(xs, ys, l2=1.0)
        if len(swap_names) == 1 or (swap_head.weights > 0).all():
            break
        swap_names = tuple(n for n, w in zip(swap_names, swap_head.weights, strict=True) if w > 0)
    syn_names = ("gan_fingerprint",)
    xg = np.vstack([mat(fr, syn_names), mat(fg, syn_names)])
    yg = np.r_[np.zeros(len(fr)), np.ones(len(fg))]
    syn_head = fit_logistic(xg, yg, l2=1.0)

    def raw(head: Any, names: tuple[str, ...]) -> tuple[float, dict[str, float]]:
        # fold the standardisation into weights on the factors' log-odds
        w = head.weights / head.std
        bias = head.bias - float((head.mean * w).sum())
        return round(bias, 3), {n: round(float(v), 3) for n, v in zip(names, w, strict=True)}

    swap_bias, swap_weights = raw(swap_head, swap_names)
    swap_weights.update({n: 0.0 for n in SWAP_FACTORS if n not in swap_names})  # dropped: reported, weight 0
    groups = {"swap": (swap_bias, swap_weights), "synthetic": raw(syn_head, syn_names)}
    # How the two groups' log-odds combine, on all fit reals vs all fit fakes (swaps and SG3 faces):
    # "sum" adds them (a strong "not synthetic" then cancels swap evidence); "mixture" treats fake as
    # swap OR synthetic with equal priors: odds = (odds_swap + odds_synthetic) / 2.
    all_rows = {"real": fr, "swap": fs, "sg3": fg}
    group_logits = {k: (swap_head.logit(mat(v, swap_names)), syn_head.logit(mat(v, syn_names)))
                    for k, v in all_rows.items()}
    rules = {"sum": lambda a, b: a + b, "mixture": lambda a, b: mixture_log_odds(np.stack([a, b]))}
    combined = {rule: {k: f(*group_logits[k]) for k in all_rows} for rule, f in rules.items()}
    rule_report = {
        rule: {"auc_real_vs_all_fakes": round(roc_auc(c["real"], np.r_[c["swap"], c["sg3"]]), 4),
               "auc_real_vs_swap": round(roc_auc(c["real"], c["swap"]), 4),
               "auc_real_vs_sg3": round(roc_auc(c["real"], c["sg3"]), 4),
               "median_logit": {k: round(float(np.median(v)), 3) for k, v in c.items()}}
        for rule, c in combined.items()}
    report = {
        "groups": groups,
        "counts": {"real": len(fr), "real_video": len(vid), "real_photo": len(photos), "swap": len(fs), "sg3": len(fg)},
        "auc_swap_fit": round(roc_auc(swap_head.logit(xs[ys == 0]), swap_head.logit(xs[ys == 1])), 4),
        "auc_synthetic_fit": round(roc_auc(syn_head.logit(xg[yg == 0]), syn_head.logit(xg[yg == 1])), 4),
        "factor_auc_swap": {n: round(roc_auc(xs[ys == 0, i], xs[ys == 1, i]), 4) for i, n in enumerate(swap_names)},
        "group_rules": rule_report,
    }
    sets = [ScoredSet(real_c, [native_square(*src) for src in real_src]), ScoredSet(swap_c, None, ("swap",)),
            ScoredSet(sg3, [f.square for f in sg3_faces], ("synthetic",))]
    report["resolution_for"] = "shipped FUSION_GROUPS" if resolution_for_shipped else "the groups fitted above"
    report["resolution"] = fit_resolution(scorer, runtime, dict(FUSION_GROUPS) if resolution_for_shipped else groups,
                                          sets, seed)
    log.info("fusion fit: %s", report)
    return report
