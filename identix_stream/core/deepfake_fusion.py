"""Fusing deepfake factors into a calibrated per-frame probability and a running per-track verdict.

Pure (numpy + stdlib). Per frame, each factor from the scorer is a calibrated probability (its own
head was fitted with equal class priors); each group of factors (swap, synthetic) gives log-odds as
a weighted sum of its factors' log-odds (``FUSION_GROUPS``, fitted by ``training/fit_fusion.py``, see
docs/deepfake.md for the data), scaled down for faces small in the source (``RESOLUTION_RELIABILITY``),
and the frame is their swap-or-synthetic mixture. Each factor's
weighted log-odds, times its group's share of the mixture, is reported as its contribution.

Per track, ``TrackEvidence`` adds temporal factors (blinks from the eye-class pixels, sudden
appearance jumps of the parse, box/mask jitter) and keeps a running confidence: the mean frame
log-odds over a window, shrunk towards 0 while there is little evidence, so a few frames never
decide. Video frames are strongly correlated, so evidence is counted by time as well as frames.
The states are biased against false alarms (flagging real people is the costliest mistake):
``likely_fake`` needs a high running probability *and* most frames agreeing.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from identix_stream.core import deepfake_notes as notes
from identix_stream.core.classes import FACE_CLASSES, L_BROW, L_EYE, L_LIP, MOUTH, NOSE, R_BROW, R_EYE, U_LIP
from identix_stream.core.geometry import box_centre, box_side
from identix_stream.core.types import DeepfakeEstimate, DeepfakeStateName

# Frame factors from inference/deepfake_scorer.py, grouped by the kind of fake they detect: face
# swaps (blend seams, boundary statistics) and fully synthetic faces (generator fingerprints). Each
# group is a logistic head fitted on its own kind of fake vs the same reals (``FUSION_GROUPS``:
# bias and weights on the factors' log-odds). A fake is a swap *or* a synthetic face, so the groups
# combine as a mixture with equal priors: frame odds = (odds_swap + odds_synthetic) / 2. Adding the
# groups' log-odds instead (the first rule) let a confident "not synthetic" cancel swap evidence:
# on the fusion's fit data the mixture ranks reals vs all fakes at 0.922 vs 0.874 for the sum, and
# puts reals and fakes on either side of 0 (medians -1.65 / +2.46 for swaps, +2.76 for StyleGAN3)
# where the sum put reals at -4.19; see docs/deepfake.md. Weights fitted by `identix-stream
# train-deepfake fusion` (training/fit_fusion.py) for the luma-equalised blend CNN, refitted
# 2026-11-29 when the swap tool began aligning donors by their parts, on 170 real faces (58 H.264
# talking-head faces, 60 unseen LFW photos, 52 CelebAMask) vs 170 part-aligned swaps/self-blends of
# them and 30 held-out StyleGAN3 faces, the fingerprint reading each face at its source resolution
# as the service does. The boundary factor keeps a small weight (0.225 on the box-aligned swaps).
# The synthetic group was refitted in session 16 for the fingerprint head trained on more views and
# read as the mean over a photo's squares (fit AUC 0.955 on these reals vs the 30 StyleGAN3 faces);
# the swap group was left as shipped (the same fit now gives (0.818, blend 0.999, boundary 0.504)
# because the parser's labels changed in session 10; session 11 found no gain in refitting it).
FRAME_FACTORS = ("blend", "gan_fingerprint", "boundary")
FUSION_GROUPS: dict[str, tuple[float, dict[str, float]]] = {  # group -> (bias, {factor: weight})
    "swap": (0.742, {"blend": 1.024, "boundary": 0.053}),
    "synthetic": (-0.078, {"gan_fingerprint": 1.884}),
}
# In video tracks the synthetic group's evidence *for* fake counts a quarter: no GAN video set exists
# to calibrate it, and the fingerprint reads one real check clip's H.264 face (source_s13) as 0.73
# "generated" on average (0.71 with the session-16 head): at a half that clip ended at p 0.83, next to
# the 0.85 of likely_fake; at a quarter 0.75 (about what the weaker pre-native-square head gave at a
# half). Its evidence against "synthetic" counts fully.
VIDEO_GROUP_SCALE: dict[str, float] = {"synthetic": 0.25}
# How far each group's log-odds can be trusted for a face of a given size in the source (face-box
# side in pixels, knots interpolated linearly, flat beyond the ends). A small face reaches the
# factors upsampled, after the camera or codec compressed it at its own small size, and the blend
# CNN reads those block and ringing artefacts as seams: many real 40-100 px faces in group photos and
# in multi_face/short_hamilton_clip.mp4 scored blend 0.5-0.99. Fitted by `train-deepfake fusion`
# (training/fit_resolution.py): the fusion's fit faces shrunk to each size, H.264-compressed there
# and upsampled as the service does; per size the maximum-likelihood scale of each group's log-odds,
# relative to full size, never rising as faces shrink. At and above the face size of the service crop
# (SERVICE_CROP / SERVICE_CROP_SCALE = 177 px) nothing is resampled, so the scale is 1.
RESOLUTION_RELIABILITY: dict[str, tuple[tuple[float, float], ...]] = {
    "swap": ((28.0, 0.239), (40.0, 0.477), (56.0, 0.761), (72.0, 0.761), (96.0, 0.977), (128.0, 1.0), (177.0, 1.0)),
    "synthetic": ((28.0, 0.369), (40.0, 0.369), (56.0, 0.385), (72.0, 0.462), (96.0, 0.8), (128.0, 1.0),
                  (177.0, 1.0)),
}
TEMPORAL_FACTORS = ("blink", "appearance_jump", "jitter", "expression")
# How much each temporal factor's log-odds counts in the running confidence (and its contribution).
# No video set here has real swap flicker, so none of these was fitted. Over our 6 swap videos vs
# the 12 real talking heads (2026-11-29) jitter ranked at chance (AUC 0.50) and appearance jumps
# below it (0.42), and both fired on real footage: a fast-moving real head (driving_d12) at the
# jitter cap, a real stage performer in multi_face/short_hamilton_clip.mp4 at the jump cap, which
# pushed that person to likely_fake. Until a real swap set shows they work they count a quarter:
# at their caps 0.27 and 0.35 of log-odds, never enough to decide a track.
TEMPORAL_WEIGHTS: dict[str, float] = {"blink": 1.0, "expression": 1.0, "appearance_jump": 0.25, "jitter": 0.25}
EXPRESSION_MIN_S = 2.0  # seconds of a track before the expression factor speaks
EXPRESSION_CV0 = 0.15  # variation (std/mean) of mouth+eye areas at or above which it says nothing
BLINK_MIN_S = 10.0  # seconds of a track before a missing blink speaks
JUMP_MIN_STEPS = 25  # compared frame steps before the jump rate speaks
JUMP_RATE0 = 0.02  # jump rate at or below which it says nothing
JITTER_MIN_FRAMES = 10
JITTER0 = 0.04  # box / area wobble at or below which it says nothing

FACTOR_LOGIT_CLIP = 6.0  # one factor can never say more than p = 0.9975
FRAME_LOGIT_CLIP = 4.0  # nor one frame more than p = 0.982

# Running confidence (see module docstring); times in seconds.
MIN_FRAMES = 6
MIN_SPAN_S = 1.0
WINDOW_S = 10.0
WINDOW_FRAMES = 300
PRIOR_STRENGTH = 4.0  # evidence units that pull the running log-odds halfway to 0
EVIDENCE_PER_S = 4.0  # at most this many evidence units per second of video (frames are correlated)
FAKE_AT = 0.85
REAL_AT = 0.30
MIN_AGREEMENT = 0.65  # share of frames on the side of the verdict
SINGLE_FAKE_AT = 0.90
SINGLE_REAL_AT = 0.10


def factor_logit(p: float) -> float:
    """Log-odds of a 0-1 factor, clipped to ±FACTOR_LOGIT_CLIP."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return max(-FACTOR_LOGIT_CLIP, min(FACTOR_LOGIT_CLIP, math.log(p / (1 - p))))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, x))))


def mixture_log_odds(group_logits: np.ndarray) -> np.ndarray:
    """Log-odds of "fake of one of these kinds" with equal priors over the kinds (axis 0):
    odds = mean of the kinds' odds."""
    return np.asarray(np.logaddexp.reduce(group_logits, axis=0) - math.log(len(group_logits)))


def group_log_odds(factors: dict[str, float], bias: float, weights: dict[str, float]
                   ) -> tuple[float, dict[str, float]] | None:
    """One group's log-odds (bias + weighted factor log-odds) and each factor's part; None when the
    group has none of its factors."""
    parts: dict[str, float] = {}
    for name, w in weights.items():
        p = factors.get(name)
        if p is not None and math.isfinite(p):
            parts[name] = w * factor_logit(float(p))
    return (bias + sum(parts.values()), parts) if parts else None


def reliability(group: str, face_px: float | None) -> float:
    """Scale of a group's log-odds for a face ``face_px`` pixels across in the source (1 = full trust;
    1 when the size is unknown)."""
    knots = RESOLUTION_RELIABILITY.get(group)
    if not knots or face_px is None or not math.isfinite(face_px):
        return 1.0
    return float(np.interp(face_px, [k[0] for k in knots], [k[1] for k in knots]))


def frame_log_odds(factors: dict[str, float], video: bool = False,
                   face_px: float | None = None) -> tuple[float, dict[str, float]]:
    """(clipped frame log-odds, each factor's contribution). Unknown keys are ignored. ``face_px``
    (face-box side in source pixels) scales each group by its RESOLUTION_RELIABILITY. A group none of
    whose factors is present (the fingerprint of a face in a frame smaller than its square) counts at
    even odds: that kind of fake is not ruled out, so the frame's p_fake stays >= 1/3 and the face can
    be ``uncertain`` at best, never ``likely_real``."""
    groups: list[tuple[float, dict[str, float]]] = []
    for group, (bias, weights) in FUSION_GROUPS.items():
        r = reliability(group, face_px)
        found = group_log_odds(factors, bias, weights)
        if found is None:  # none of its factors could be read: even odds, never "ruled out"
            groups.append((0.0, {}))
            continue
        g, parts = r * found[0], {k: r * v for k, v in found[1].items()}
        scale = VIDEO_GROUP_SCALE.get(group, 1.0) if video else 1.0
        if g > 0 and scale != 1.0:  # only its evidence *for* fake is discounted
            g *= scale
            parts = {k: v * scale for k, v in parts.items()}
        groups.append((g, parts))
    if not groups:
        return 0.0, {}
    logits = np.array([g for g, _ in groups])
    total = float(mixture_log_odds(logits))
    # each factor's contribution is its additive part scaled by its group's share of the mixture
    share = np.exp(logits - logits.max())
    share /= share.sum()
    contributions = {name: float(sh) * c for sh, (_, parts) in zip(share, groups, strict=True)
                     for name, c in parts.items()}
    return max(-FRAME_LOGIT_CLIP, min(FRAME_LOGIT_CLIP, total)), contributions


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in d.items()}


def single_image_estimate(factors: dict[str, float], face_px: float | None = None,
                          observations: dict[str, notes.Note] | None = None) -> DeepfakeEstimate:
    """One-frame evidence (a photo): decided only at stronger probabilities, and marked as such.
    ``observations``: the scorer's notes on what each factor saw, passed through."""
    logit, contributions = frame_log_odds(factors, face_px=face_px)
    p = _sigmoid(logit)
    state: DeepfakeStateName = "uncertain"
    if p >= SINGLE_FAKE_AT:
        state = "likely_fake"
    elif p <= SINGLE_REAL_AT:
        state = "likely_real"
    shown: dict[str, float | None] = {k: float(factors[k]) for k in FRAME_FACTORS if k in factors}
    return DeepfakeEstimate(p_fake=p, state=state, frame_p_fake=p, factors=shown, frames=1, single_image=True,
                            contributions=_rounded(contributions), observations=dict(observations or {}))


EYES = (L_EYE, R_EYE)
MOUTH_PARTS = (U_LIP, MOUTH, L_LIP)
MIN_FACE_PIXELS = 500  # below this the part ratios say nothing


def part_ratio(counts: np.ndarray, parts: tuple[int, ...]) -> float | None:
    """Pixels of these classes per face pixel, from per-class counts; None for too small a face."""
    face_px = int(counts[list(FACE_CLASSES)].sum())
    return float(counts[list(parts)].sum()) / face_px if face_px >= MIN_FACE_PIXELS else None


def eye_openness(crop_labels: np.ndarray) -> float | None:
    """Eye pixels per face pixel in the parser crop; None when the face is too small to tell."""
    return part_ratio(class_moments(crop_labels)[0], EYES)


_COORDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def class_moments(crop_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel count and summed x / y per class id (0..255), in one pass each."""
    h, w = crop_labels.shape
    if (h, w) not in _COORDS:
        _COORDS[(h, w)] = (np.tile(np.arange(w, dtype=np.float64), h), np.repeat(np.arange(h, dtype=np.float64), w))
    xs, ys = _COORDS[(h, w)]
    flat = crop_labels.ravel()
    return (np.bincount(flat, minlength=256).astype(np.float64), np.bincount(flat, xs, minlength=256),
            np.bincount(flat, ys, minlength=256))


# Parts whose layout is a trait of the face, not of its expression: blinking hides the eyes and
# talking opens the mouth, so mouth parts are left out and a part missing from either frame is not
# compared (the first descriptor zero-filled missing parts, and blinks and speech counted as jumps).
LAYOUT_PARTS = (L_BROW, R_BROW, L_EYE, R_EYE, NOSE)
MIN_LAYOUT_PARTS = 3


def face_layout(n: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray | None:
    """Centre of each LAYOUT_PARTS class relative to the face's centre, per face scale (rows; NaN
    where the part is not visible); None for too small a face."""
    face = list(FACE_CLASSES)
    total = float(n[face].sum())
    if total < MIN_FACE_PIXELS:
        return None
    cx, cy = float(sx[face].sum()) / total, float(sy[face].sum()) / total
    scale = math.sqrt(total)
    out = np.full((len(LAYOUT_PARTS), 2), np.nan)
    for row, cls in enumerate(LAYOUT_PARTS):
        if n[cls] > 0:
            out[row] = ((sx[cls] / n[cls] - cx) / scale, (sy[cls] / n[cls] - cy) / scale)
    return out


def layout_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean absolute difference over the parts both layouts show; None when fewer than
    MIN_LAYOUT_PARTS are shared."""
    both = ~(np.isnan(a).any(axis=1) | np.isnan(b).any(axis=1))
    if int(both.sum()) < MIN_LAYOUT_PARTS:
        return None
    return float(np.abs(a[both] - b[both]).mean())


@dataclass(frozen=True, slots=True)
class _Frame:
    t: float
    logit: float
    openness: float | None
    box_centre: tuple[float, float]
    box_size: float
    face_px: int
    mouth: float | None


class TrackEvidence:
    """Running deepfake evidence of one track; ``update`` once per analysed frame of that track."""

    def __init__(self, fps_hint: float = 25.0) -> None:
        self._frames: deque[_Frame] = deque(maxlen=WINDOW_FRAMES)
        self._fps_hint = fps_hint
        self._n = 0
        self._t0: float | None = None
        self._t_last: float | None = None
        self._blinks = 0
        self._closed_run = 0
        self._open_ref: deque[float] = deque(maxlen=90)
        self._desc_prev: np.ndarray | None = None
        self._desc_steps: deque[float] = deque(maxlen=120)
        self._jumps = 0
        self._desc_n = 0
        self._factor_sums: dict[str, tuple[float, int]] = {}  # frame factor -> (sum, frames it was read in)
        self._estimate = DeepfakeEstimate()

    @property
    def estimate(self) -> DeepfakeEstimate:
        return self._estimate

    def _time(self, timestamp: float | None) -> float:
        if timestamp is not None and math.isfinite(timestamp):
            return float(timestamp)
        return self._n / self._fps_hint  # no clock: assume the hinted frame rate

    def _update_blinks(self, openness: float | None) -> None:
        if openness is None:
            return
        ref = float(np.median(self._open_ref)) if len(self._open_ref) >= 10 else None
        closed = ref is not None and ref > 0.004 and openness < 0.45 * ref
        if closed:
            self._closed_run += 1
        else:
            if 1 <= self._closed_run <= 12:  # a blink lasts ~0.1-0.4 s; longer is eyes shut / looking down
                self._blinks += 1
            self._closed_run = 0
            self._open_ref.append(openness)

    def _update_jumps(self, desc: np.ndarray | None) -> None:
        if desc is None:
            return
        step = layout_distance(desc, self._desc_prev) if self._desc_prev is not None else None
        if step is not None:
            if len(self._desc_steps) >= 15:
                med = float(np.median(self._desc_steps))
                if step > 6.0 * med + 0.02:
                    self._jumps += 1
            self._desc_steps.append(step)
            self._desc_n += 1
        self._desc_prev = desc

    def _temporal(self, span: float) -> tuple[dict[str, float], dict[str, notes.Note]]:
        """Temporal factors as 0-1 probabilities (0.5 = no information; absent until they can speak)
        and what each saw so far."""
        out: dict[str, float] = {}
        seen: dict[str, notes.Note] = {"blink": notes.blink_note(self._blinks, span, BLINK_MIN_S)}
        if span >= BLINK_MIN_S:
            # people blink ~15-20 times a minute; long stretches without a blink are weak evidence
            expected = span / 4.0
            out["blink"] = 0.5 if self._blinks >= 1 else min(0.7, 0.5 + 0.02 * (expected - 2.5))
        seen["appearance_jump"] = notes.jump_note(self._jumps, self._desc_n, JUMP_MIN_STEPS, JUMP_RATE0)
        if self._desc_n >= JUMP_MIN_STEPS:
            rate = self._jumps / self._desc_n
            out["appearance_jump"] = min(0.8, 0.5 + 3.0 * max(0.0, rate - JUMP_RATE0))
        fr = list(self._frames)
        jit_box = jit_mask = None
        if len(fr) >= JITTER_MIN_FRAMES:
            c = np.array([f.box_centre for f in fr])
            s = np.array([f.box_size for f in fr])
            a = np.array([f.face_px for f in fr], dtype=np.float64)
            jit_box = float(np.median(np.linalg.norm(c[2:] - 2 * c[1:-1] + c[:-2], axis=1) / s[1:-1]))
            rel = a / max(float(np.median(a)), 1.0)
            jit_mask = float(np.median(np.abs(rel[2:] - 2 * rel[1:-1] + rel[:-2])))
            jitter = max(jit_box, jit_mask)
            out["jitter"] = min(0.75, 0.5 + max(0.0, jitter - JITTER0) * 2.5)
        seen["jitter"] = notes.jitter_note(jit_box, jit_mask, len(fr), JITTER_MIN_FRAMES, JITTER0)
        variation: dict[str, float | None] = {"mouth": None, "eye": None}
        if span >= EXPRESSION_MIN_S and len(fr) >= 10:
            # a pasted still face keeps its eyes and mouth frozen while the head moves; a live face
            # does not (talking, blinking). Only ever evidence towards fake, and capped.
            for name, series in (("mouth", [f.mouth for f in fr]), ("eye", [f.openness for f in fr])):
                v = np.array([x for x in series if x is not None])
                if v.size >= 10 and v.mean() > 1e-3:
                    variation[name] = float(v.std() / v.mean())
            cvs = [cv for cv in variation.values() if cv is not None]
            if cvs:
                cv = max(cvs)
                out["expression"] = 0.5 + 0.25 * min(1.0, max(0.0, (EXPRESSION_CV0 - cv) / EXPRESSION_CV0))
        seen["expression"] = notes.expression_note(variation["mouth"], variation["eye"], span, EXPRESSION_MIN_S,
                                                   EXPRESSION_CV0)
        return out, seen

    def update(self, factors: dict[str, float], crop_labels: np.ndarray, box: tuple[float, float, float, float],
               timestamp: float | None, observations: dict[str, notes.Note] | None = None) -> DeepfakeEstimate:
        """``observations``: the scorer's notes on this frame's image factors (shown with the temporal
        factors' own)."""
        t = self._time(timestamp)
        self._n += 1
        if self._t0 is None:
            self._t0 = t
        self._t_last = t
        side = box_side(box)
        logit, contributions = frame_log_odds(factors, video=True, face_px=side)
        moments = class_moments(crop_labels)
        counts = moments[0]
        face_px = int(counts[list(FACE_CLASSES)].sum())
        openness, mouth = part_ratio(counts, EYES), part_ratio(counts, MOUTH_PARTS)
        self._frames.append(_Frame(t, logit, openness, box_centre(box), max(1.0, side),
                                   face_px, mouth))
        while self._frames and self._frames[0].t < t - WINDOW_S:
            self._frames.popleft()
        self._update_blinks(openness)
        self._update_jumps(face_layout(*moments))
        for k in FRAME_FACTORS:
            if k in factors:
                total, n = self._factor_sums.get(k, (0.0, 0))
                self._factor_sums[k] = (total + float(factors[k]), n + 1)

        span = t - self._t0
        temporal, temporal_seen = self._temporal(span)
        seen = {**(observations or {}), **temporal_seen}
        weighted = {k: TEMPORAL_WEIGHTS.get(k, 1.0) * factor_logit(p) for k, p in temporal.items()}
        temporal_logit = sum(weighted.values())
        logits = np.array([f.logit for f in self._frames])
        window_span = self._frames[-1].t - self._frames[0].t
        evidence = min(float(len(logits)), EVIDENCE_PER_S * max(window_span, 1.0 / self._fps_hint))
        shrink = evidence / (evidence + PRIOR_STRENGTH)
        mean = float(logits.mean())
        running = shrink * mean + temporal_logit
        p_run = _sigmoid(running)
        frame_p = _sigmoid(logit)

        shown: dict[str, float | None] = {k: float(factors[k]) for k in FRAME_FACTORS if k in factors}
        shown.update(temporal)
        contrib = dict(contributions)
        contrib.update(weighted)
        if self._n < MIN_FRAMES or span < MIN_SPAN_S:
            self._estimate = DeepfakeEstimate(None, "collecting", frame_p, shown, self._n, False, _rounded(contrib),
                                              seen)
            return self._estimate
        agree_fake = float((logits > 0).mean())
        state: DeepfakeStateName
        if p_run >= FAKE_AT and agree_fake >= MIN_AGREEMENT:
            state = "likely_fake"
        elif p_run <= REAL_AT and 1.0 - agree_fake >= MIN_AGREEMENT:
            state = "likely_real"
        else:
            state = "uncertain"
        self._estimate = DeepfakeEstimate(p_run, state, frame_p, shown, self._n, False, _rounded(contrib), seen)
        return self._estimate

    def mean_factors(self) -> dict[str, float]:
        """Each frame factor averaged over the track's frames it was read in (per-person summaries)."""
        return {k: total / n for k, (total, n) in self._factor_sums.items()}
