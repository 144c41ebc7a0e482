"""What each deepfake factor saw: a short note next to its 0-1 score (``DeepfakeEstimate.observations``).

A score alone does not say why a factor leans one way, or why a factor is missing from a result. Each
note holds a human-readable ``text`` and the measurements behind it (counts, ratios, where the blend
evidence peaks, why a factor was not read). Pure: the scorer and the track evidence hand in numbers,
this module words them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from identix_stream.core.classes import (
    BACKGROUND,
    CLASS_NAMES,
    FACE_CLASSES,
    L_LIP,
    MOUTH,
    NUM_CLASSES,
    U_LIP,
)

Note = dict[str, Any]  # JSON: text, numbers, a [x, y] point

# A blend-map cell with between these shares of face pixels straddles the face's edge.
OUTLINE_SHARE = (0.15, 0.85)
OUTLINE = "face outline"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _name(class_id: int) -> str:
    if class_id in (U_LIP, MOUTH, L_LIP):
        return "mouth"
    return CLASS_NAMES[class_id].replace("_", " ")


def cell_region(cell_labels: np.ndarray) -> str:
    """Where a patch of the parse lies: on the face outline (face and non-face both well present) or
    inside one region (its most common class; lips and inner mouth are one "mouth")."""
    counts = np.bincount(cell_labels.ravel(), minlength=256)[:NUM_CLASSES].astype(np.float64)
    total = counts.sum()
    if total <= 0:
        return _name(BACKGROUND)
    face = counts[list(FACE_CLASSES)].sum() / total
    if OUTLINE_SHARE[0] < face < OUTLINE_SHARE[1]:
        return OUTLINE
    return _name(int(counts.argmax()))


def blend_note(p: float, region: str) -> Note:
    """The blend CNN's reading and the region of the crop where its evidence for "blended" peaks
    (the cell of its spatial logit map with the highest value; a coarse 8x8 map, not a seam outline)."""
    where = f"strongest on the {region}"
    text = f"blend-seam evidence, {where}" if p >= 0.5 else f"no clear blend seam ({where})"
    return {"text": text, "region": region}


def fingerprint_note(p: float, squares: int, square_px: int) -> Note:
    what = "pixel statistics like a generator's upsampling" if p >= 0.5 else "camera-like pixel statistics"
    where = (f"the mean reading of {squares} squares of {square_px} px" if squares > 1
             else f"one {square_px}-px square")
    return {"text": f"{what} ({where} at the image's own resolution)", "squares": squares, "square_px": square_px}


def fingerprint_small_frame(frame_px: int, square_px: int) -> Note:
    return {"text": f"not read: the image is {frame_px} px on its short side, under the {square_px}-px square "
                    "it needs without resampling (upscaling leaves the very traces it looks for)",
            "reason": "small_image", "image_px": frame_px}


def fingerprint_enlarged(factor: float) -> Note:
    return {"text": f"not counted: reads real at this size but generated once the photo is shrunk {factor:g}x, "
                    "as an enlarged generated image does",
            "reason": "maybe_enlarged", "shrink": factor}


def turned_notes(factors: Sequence[str]) -> dict[str, Note]:
    note: Note = {"text": "not read: the parse shows the face turned sideways or upside down in its crop, and "
                          "every model reads upright faces", "reason": "face_turned"}
    return {name: dict(note) for name in factors}


# boundary_features order (inference/deepfake_features.py: BOUNDARY_FEATURES) and how to word each
_BOUNDARY_WORDS = ("face noise vs its surroundings", "noise of the face's edge band vs the inner face",
                   "colour gap at the face edge", "gradient of the face's edge band vs the inner face",
                   "face sharpness vs its surroundings")


def boundary_note(features: np.ndarray, parts: np.ndarray) -> Note:
    """``features``: boundary_features (log ratios except the colour gap, in Lab a/b units / 10);
    ``parts``: each feature's share of the head's log-odds (standardised value x weight)."""
    f = np.asarray(features, dtype=np.float64)
    noise, band, gap, grad, sharp = (float(v) for v in f[:5])
    top = int(np.argmax(np.abs(parts)))
    towards = "fake" if parts[top] > 0 else "real"
    return {
        "text": (f"face noise {np.exp(noise):.2f}x its surroundings, sharpness {np.exp(sharp):.2f}x, colour gap at "
                 f"the face edge {10 * gap:.1f}; strongest sign: {_BOUNDARY_WORDS[top]} (towards {towards})"),
        "noise_ratio": round(float(np.exp(noise)), 3),
        "sharpness_ratio": round(float(np.exp(sharp)), 3),
        "edge_noise_ratio": round(float(np.exp(band)), 3),
        "edge_gradient_ratio": round(float(np.exp(grad)), 3),
        "colour_gap": round(10 * gap, 2),
    }


def boundary_unread() -> Note:
    return {"text": "not read: the parse holds too little face, or too little neck and background around it",
            "reason": "too_little_face"}


def blink_note(blinks: int, seconds: float, needs_s: float) -> Note:
    per_min = 60.0 * blinks / seconds if seconds > 0 else 0.0
    if seconds < needs_s:
        text = f"{_count(blinks, 'blink')} in {seconds:.1f} s; speaks after {needs_s:g} s"
    else:
        text = f"{_count(blinks, 'blink')} in {seconds:.1f} s ({per_min:.0f} a minute; people blink about 15-20)"
    return {"text": text, "blinks": blinks, "seconds": round(seconds, 2)}


def jump_note(jumps: int, steps: int, needs_steps: int, speaks_above: float) -> Note:
    if steps < needs_steps:
        text = (f"{_count(jumps, 'sudden jump')} of the brow/eye/nose layout in {steps} frame steps; "
                f"speaks after {needs_steps}")
    else:
        text = (f"{_count(jumps, 'sudden jump')} of the brow/eye/nose layout in {steps} frame steps "
                f"({100 * jumps / steps:.1f}%; speaks above {100 * speaks_above:g}%)")
    return {"text": text, "jumps": jumps, "steps": steps}


def jitter_note(box: float | None, area: float | None, frames: int, needs_frames: int, speaks_above: float) -> Note:
    if box is None or area is None:
        return {"text": f"needs {needs_frames} frames ({frames} so far)", "frames": frames}
    return {"text": (f"box wobble {100 * box:.1f}% of the face size per frame, face-area wobble {100 * area:.1f}% "
                     f"(speaks above {100 * speaks_above:g}%)"),
            "box": round(box, 4), "area": round(area, 4)}


def expression_note(mouth_cv: float | None, eye_cv: float | None, seconds: float, needs_s: float,
                    frozen_below: float) -> Note:
    if seconds < needs_s or (mouth_cv is None and eye_cv is None):
        return {"text": f"needs {needs_s:g} s of a visible mouth or eyes ({seconds:.1f} s so far)"}
    shown = [f"{name} area varies {100 * cv:.0f}%" for name, cv in (("mouth", mouth_cv), ("eye", eye_cv))
             if cv is not None]
    note: Note = {"text": ", ".join(shown) + f" (a frozen, pasted face varies under {100 * frozen_below:g}%)"}
    if mouth_cv is not None:
        note["mouth_variation"] = round(mouth_cv, 3)
    if eye_cv is not None:
        note["eye_variation"] = round(eye_cv, 3)
    return note

