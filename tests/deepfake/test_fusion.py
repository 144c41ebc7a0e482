"""Fusion and running confidence (pure core): calibration direction, states, contributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from identix_stream.core.classes import L_EYE, MOUTH, NOSE, R_EYE, SKIN, U_LIP
from identix_stream.core.deepfake_fusion import (
    FRAME_LOGIT_CLIP,
    FUSION_GROUPS,
    MIN_FRAMES,
    TrackEvidence,
    eye_openness,
    frame_log_odds,
    group_log_odds,
    single_image_estimate,
)
from identix_stream.core.deepfake_metrics import eer, roc_auc
from identix_stream.core.logistic import Logistic, fit_logistic
from identix_stream.core.types import DeepfakeEstimate


def face_labels(eye_open: float = 1.0, mouth: float = 0.3, shift: int = 0) -> np.ndarray:
    """A synthetic 256 parse: skin oval, nose, two eyes of variable height, a mouth of variable height."""
    lab = np.zeros((256, 256), np.uint8)
    yy, xx = np.mgrid[:256, :256]
    lab[((xx - 128 - shift) / 70.0) ** 2 + ((yy - 130) / 95.0) ** 2 <= 1] = SKIN
    h = max(0, round(8 * eye_open))
    lab[105 - h // 2:105 + (h + 1) // 2, 90 + shift:115 + shift] = R_EYE
    lab[105 - h // 2:105 + (h + 1) // 2, 141 + shift:166 + shift] = L_EYE
    lab[120:160, 120 + shift:136 + shift] = NOSE
    lab[175:182, 105 + shift:151 + shift] = U_LIP
    mh = max(1, round(20 * mouth))
    lab[182:182 + mh, 108 + shift:148 + shift] = MOUTH
    return lab


# With every factor at 0.5 each group says its fitted bias (the heads' outputs are not centred on the
# fusion's fit data), and the frame says their equal-prior mixture.
NEUTRAL_LOGIT = math.log(sum(math.exp(bias) for bias, _ in FUSION_GROUPS.values()) / len(FUSION_GROUPS))
REAL = {"blend": 0.03, "gan_fingerprint": 0.01, "boundary": 0.1}
FAKE_SWAP = {"blend": 0.97, "gan_fingerprint": 0.2, "boundary": 0.8}
FAKE_GAN = {"blend": 0.05, "gan_fingerprint": 0.999, "boundary": 0.45}  # as measured on StyleGAN2 faces


@pytest.mark.parametrize(
    ("factors", "sign"),
    [(REAL, -1), (FAKE_SWAP, 1), (FAKE_GAN, 1), ({"blend": 0.5, "gan_fingerprint": 0.5, "boundary": 0.5}, 0)],
)
def test_frame_log_odds_direction(factors: dict[str, float], sign: int) -> None:
    logit, contrib = frame_log_odds(factors)
    assert set(contrib) == set(factors)
    if sign == 0:
        assert abs(logit - NEUTRAL_LOGIT) < 0.1
    else:
        assert logit * sign > 0.5


def test_a_clean_fingerprint_does_not_cancel_swap_evidence() -> None:
    """Fake = swap or synthetic: a confident "not synthetic" may cost swap evidence at most the
    mixture's log 2 (the synthetic kind's share of the prior), never overturn it."""
    swap_only = frame_log_odds({"blend": 0.97, "boundary": 0.8})[0]
    with_clean_fingerprint = frame_log_odds({"blend": 0.97, "boundary": 0.8, "gan_fingerprint": 1e-6})[0]
    assert swap_only > with_clean_fingerprint > 0
    assert swap_only - with_clean_fingerprint <= math.log(2.0) + 1e-6


@pytest.mark.parametrize("factors", [REAL, FAKE_SWAP, FAKE_GAN, {"blend": 0.6, "gan_fingerprint": 0.7}])
def test_frame_log_odds_lies_between_the_strongest_group_and_log_2_below(factors: dict[str, float]) -> None:
    groups = [found[0] for bias, weights in FUSION_GROUPS.values()
              if (found := group_log_odds(factors, bias, weights)) is not None]
    assert len(groups) == len(FUSION_GROUPS)
    logit = frame_log_odds(factors)[0]
    top = min(max(groups), FRAME_LOGIT_CLIP)  # one frame never says more than the clip
    assert top - math.log(2.0) - 1e-6 <= logit <= top + 1e-6


def test_an_unread_fingerprint_leaves_synthetic_faces_possible() -> None:
    """A face whose fingerprint could not be read (a frame smaller than its square) is not cleared of
    being generated: that group counts at even odds, so even a clean blend stays uncertain, in a photo
    and over a whole track; read and clean, the same face is likely_real."""
    unread = {"blend": 0.01, "boundary": 0.1}
    logit, contrib = frame_log_odds(unread)
    assert logit >= -math.log(2.0) - 1e-9  # p >= 1/3
    assert "gan_fingerprint" not in contrib
    assert single_image_estimate(unread).state == "uncertain"
    assert single_image_estimate({**unread, "gan_fingerprint": 0.01}).state == "likely_real"
    assert run_track([unread] * 75)[-1].state == "uncertain"
    assert run_track([{**unread, "gan_fingerprint": 0.01}] * 75)[-1].state == "likely_real"
    # swap evidence still decides on its own
    assert run_track([{"blend": 0.97, "boundary": 0.8}] * 75)[-1].state == "likely_fake"


def test_contributions_follow_the_group_that_decides() -> None:
    _, swap = frame_log_odds(FAKE_SWAP)
    assert max(swap, key=lambda k: swap[k]) == "blend"
    assert abs(swap["gan_fingerprint"]) < 0.2 * swap["blend"]
    _, gan = frame_log_odds(FAKE_GAN)
    assert max(gan, key=lambda k: abs(gan[k])) == "gan_fingerprint"


def test_single_image_is_marked_and_decides_only_when_strong() -> None:
    est = single_image_estimate(FAKE_GAN)
    assert est.single_image and est.frames == 1 and est.p_fake is not None
    assert est.p_fake >= 0.9 and est.state == "likely_fake"  # a near-certain GAN fingerprint decides
    weak = single_image_estimate({"blend": 0.6, "gan_fingerprint": 0.6, "boundary": 0.6})
    assert weak.state == "uncertain"
    assert set(est.to_json()) >= {"p_fake", "state", "factors", "contributions", "single_image", "observations"}
    seen = {"gan_fingerprint": {"text": "read", "squares": 9}}
    assert single_image_estimate(FAKE_GAN, observations=seen).observations == seen and est.observations == {}


def run_track(factors_seq: list[dict[str, float]], fps: float = 25.0, labels_seq: list[np.ndarray] | None = None
              ) -> list[DeepfakeEstimate]:
    ev = TrackEvidence()
    out = []
    for i, f in enumerate(factors_seq):
        lab = labels_seq[i] if labels_seq is not None else face_labels(1.0, 0.3 + 0.2 * math.sin(i / 3.0))
        out.append(ev.update(f, lab, (100.0 + i % 3, 100.0, 200.0, 230.0), i / fps))
    return out


def test_a_few_frames_never_decide() -> None:
    ests = run_track([FAKE_SWAP] * MIN_FRAMES)
    assert all(e.state == "collecting" and e.p_fake is None for e in ests[: MIN_FRAMES - 1])
    # and under a second of video is still collecting even with many frames (a 60 fps burst)
    fast = run_track([FAKE_SWAP] * 40, fps=60.0)
    assert fast[30].state == "collecting"


def test_consistent_real_and_fake_tracks() -> None:
    real = run_track([REAL] * 75)
    fake = run_track([FAKE_SWAP] * 75)
    assert real[-1].state == "likely_real"
    assert fake[-1].state == "likely_fake"
    assert (fake[-1].p_fake or 0.0) > 0.85 > (real[-1].p_fake or 1.0)
    assert "blend" in fake[-1].contributions


def test_conflicting_evidence_is_uncertain() -> None:
    seq = [FAKE_SWAP if i % 2 else REAL for i in range(100)]
    assert run_track(seq)[-1].state == "uncertain"


def test_eye_openness_and_blinks() -> None:
    assert eye_openness(np.zeros((256, 256), np.uint8)) is None
    open_, closed = eye_openness(face_labels(1.0)), eye_openness(face_labels(0.0))
    assert open_ is not None and closed is not None and open_ > 0.01 and closed == 0.0
    # 12 s at 25 fps with a blink every 3 s -> the blink factor is neutral
    labels = [face_labels(0.0 if i % 75 in (30, 31, 32) else 1.0, 0.3 + 0.2 * math.sin(i / 3.0)) for i in range(300)]
    est = run_track([REAL] * 300, labels_seq=labels)[-1]
    assert est.factors["blink"] == 0.5
    # the same without blinks and with a frozen mouth: evidence (capped) towards fake
    frozen = run_track([REAL] * 300, labels_seq=[face_labels(1.0, 0.3)] * 300)[-1]
    assert 0.5 < (frozen.factors["blink"] or 0.0) <= 0.7
    assert 0.5 < (frozen.factors["expression"] or 0.0) <= 0.75
    assert est.factors["expression"] == 0.5


def test_metrics() -> None:
    assert roc_auc([0.1, 0.2], [0.8, 0.9]) == 1.0
    assert roc_auc([0.8, 0.9], [0.1, 0.2]) == 0.0
    assert roc_auc([0.5], [0.5]) == 0.5
    e, t = eer([0.1, 0.2, 0.3, 0.6], [0.4, 0.7, 0.8, 0.9])
    assert e == pytest.approx(0.25) and 0.3 < t <= 0.7
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([], [0.1])


def test_logistic_fit_and_round_trip() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (400, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.normal(0, 0.3, 400) > 0).astype(float)
    head = fit_logistic(x, y)
    assert roc_auc(head.logit(x[y == 0]), head.logit(x[y == 1])) > 0.95
    again = Logistic.from_json(head.to_json())
    assert np.allclose(again.prob(x), head.prob(x))
    # each feature's share of the log-odds: they add up to it, and the noise feature's is the smallest
    parts = head.parts(x)
    assert np.allclose(parts.sum(1) + head.bias, head.logit(x))
    assert np.abs(parts[:, 2]).mean() < 0.2 * np.abs(parts[:, 0]).mean()
    with pytest.raises(ValueError):
        fit_logistic(x, np.zeros(400))
