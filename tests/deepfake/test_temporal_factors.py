"""Temporal deepfake factors of a track (pure core): what counts as an appearance jump, and how much
the factors nobody could validate on real swap videos weigh in the running confidence."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from identix_stream.core.classes import L_BROW, L_EYE, MOUTH, NOSE, R_BROW, R_EYE, SKIN, U_LIP
from identix_stream.core.deepfake_fusion import (
    FAKE_AT,
    TEMPORAL_WEIGHTS,
    TrackEvidence,
    class_moments,
    face_layout,
    factor_logit,
    layout_distance,
)
from identix_stream.core.types import DeepfakeEstimate

NEUTRAL = {"blend": 0.5, "gan_fingerprint": 0.5, "boundary": 0.5}
BOX = (100.0, 100.0, 200.0, 230.0)


def parse(eye_open: float = 1.0, mouth: float = 0.3, eye_gap: int = 0, nose_drop: int = 0) -> np.ndarray:
    """A 256 parse: skin oval, brows, eyes (height ``eye_open``, pushed apart by ``eye_gap``), nose
    (moved down by ``nose_drop``), lips and an inner mouth of height ``mouth`` (0 = closed)."""
    lab = np.zeros((256, 256), np.uint8)
    yy, xx = np.mgrid[:256, :256]
    lab[((xx - 128) / 70.0) ** 2 + ((yy - 130) / 95.0) ** 2 <= 1] = SKIN
    lab[88:94, 88 - eye_gap:116 - eye_gap] = R_BROW
    lab[88:94, 140 + eye_gap:168 + eye_gap] = L_BROW
    h = round(8 * eye_open)
    if h:
        lab[105 - h // 2:105 + (h + 1) // 2, 90 - eye_gap:115 - eye_gap] = R_EYE
        lab[105 - h // 2:105 + (h + 1) // 2, 141 + eye_gap:166 + eye_gap] = L_EYE
    lab[120 + nose_drop:160 + nose_drop, 120:136] = NOSE
    lab[175:182, 105:151] = U_LIP
    mh = round(20 * mouth)
    if mh:
        lab[182:182 + mh, 108:148] = MOUTH
    return lab


def run(labels: list[np.ndarray], boxes: list[tuple[float, float, float, float]] | None = None,
        factors: dict[str, float] | None = None) -> DeepfakeEstimate:
    ev = TrackEvidence()
    est = DeepfakeEstimate()
    for i, lab in enumerate(labels):
        est = ev.update(factors or NEUTRAL, lab, boxes[i] if boxes else BOX, i / 25.0)
    return est


def test_the_layout_ignores_blinks_and_speech_but_not_other_proportions() -> None:
    base = face_layout(*class_moments(parse()))
    blink = face_layout(*class_moments(parse(eye_open=0.0)))
    talking = face_layout(*class_moments(parse(mouth=1.0)))
    other = face_layout(*class_moments(parse(eye_gap=12, nose_drop=14)))
    assert base is not None and blink is not None and talking is not None and other is not None
    assert np.isnan(blink[2:4]).all()  # closed eyes are not compared, not read as "moved to 0"
    d_blink, d_talking, d_other = (layout_distance(base, x) for x in (blink, talking, other))
    assert d_blink is not None and d_talking is not None and d_other is not None
    assert d_blink < 0.01 and d_talking < 0.01 and d_other > 0.03
    assert face_layout(*class_moments(np.zeros((256, 256), np.uint8))) is None


def test_blinks_and_speech_are_not_appearance_jumps() -> None:
    # 12 s: a blink every 3 s and a mouth that snaps open and shut while talking
    labels = [parse(eye_open=0.0 if i % 75 in (30, 31) else 1.0, mouth=0.0 if (i // 4) % 2 else 0.9)
              for i in range(300)]
    est = run(labels)
    assert est.factors["appearance_jump"] == 0.5
    assert est.factors["blink"] == 0.5
    # and what they saw: the four blinks, no jump, a mouth that moves
    seen = est.observations
    assert (seen["blink"]["blinks"], seen["blink"]["seconds"]) == (4, 11.96)
    assert seen["blink"]["text"] == "4 blinks in 12.0 s (20 a minute; people blink about 15-20)"
    assert seen["appearance_jump"]["jumps"] == 0 and seen["appearance_jump"]["steps"] >= 290
    assert seen["expression"]["mouth_variation"] > 0.15


def test_notes_say_what_is_still_missing_and_carry_the_image_factors_notes() -> None:
    ev = TrackEvidence()
    image_notes: dict[str, dict[str, Any]] = {
        "blend": {"text": "no clear blend seam (strongest on the skin)", "region": "skin"}}
    est = DeepfakeEstimate()
    for i in range(5):
        est = ev.update(NEUTRAL, parse(), BOX, i / 25.0, image_notes)
    assert est.state == "collecting" and est.observations["blend"] == image_notes["blend"]
    assert est.observations["jitter"] == {"text": "needs 10 frames (5 so far)", "frames": 5}
    assert "speaks after 10 s" in str(est.observations["blink"]["text"])
    assert "needs 2 s" in str(est.observations["expression"]["text"])
    assert "observations" in est.to_json() and est.to_json()["observations"]["blend"] == image_notes["blend"]


def test_a_face_whose_proportions_flicker_is_reported() -> None:
    # every 10th frame shows a face of other proportions (a swap failing for one frame)
    labels = [parse(eye_gap=12, nose_drop=14) if i % 10 == 5 else parse(mouth=0.3 + 0.2 * math.sin(i / 3))
              for i in range(150)]
    assert (run(labels).factors["appearance_jump"] or 0.0) > 0.6


def test_unvalidated_temporal_factors_count_a_quarter_and_cannot_decide() -> None:
    # neutral frame evidence; the box shakes and the proportions jump back and forth: jitter and
    # appearance_jump at their caps
    labels = [parse(eye_gap=12, nose_drop=14) if i % 5 == 0 else parse(mouth=0.3 + 0.2 * math.sin(i / 3))
              for i in range(200)]
    boxes = [(100.0 + (25.0 if i % 2 else -25.0), 100.0, 200.0 + (25.0 if i % 2 else -25.0), 230.0)
             for i in range(200)]
    est = run(labels, boxes)
    for name in ("jitter", "appearance_jump"):
        p = est.factors[name]
        assert p is not None and p >= 0.75
        assert est.observations[name]["text"]
        assert TEMPORAL_WEIGHTS[name] == 0.25
        assert math.isclose(est.contributions[name], round(0.25 * factor_logit(p), 4), abs_tol=1e-4)
    assert est.state != "likely_fake"
    assert (est.p_fake or 1.0) < FAKE_AT
    assert est.observations["jitter"]["box"] > 0.04  # the shaking box, per face size and frame
    assert est.observations["appearance_jump"]["jumps"] >= 0.1 * est.observations["appearance_jump"]["steps"]
