"""Orientation search for faces in photos: find the crop roll at which the parser sees the face upright.

BlazeFace reads a face's roll from its eye keypoints, which are guesses on a face turned by a
quarter or half turn (a photo stored sideways with no EXIF orientation, a person lying down), so
such a face was cut sideways and parsed and scored wrongly. Every face of a photo is also cut at the
detector's roll plus 90, 180 and 270 degrees and at its detections in turned copies of the photo
(``FaceDetector.detect_turned``); the view whose parse is most made of face parts wins, and up to
two steps along its parsed eye line straighten it. Numbers in ``core/face_upright.py``. Photos only:
the search costs 3-6 more parser passes per face, which a stream cannot spend on every frame.

A crop at a roll far from the detector's also needs a new face box: BlazeFace frames turned faces
badly, so ``face_box_at`` detects again in an upright patch cut at that roll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from identix_stream.core.face_upright import (
    QUARTER_TURNS_DEG,
    REDETECT_BEYOND_DEG,
    REFINE_KEEP_SHARE,
    REFINE_KEPT_MIN_DEG,
    REFINE_MIN_DEG,
    REFINE_STEPS,
    choose_view,
    eye_line_residual_deg,
    is_level_face,
    part_ratio,
    part_share,
)
from identix_stream.core.geometry import box_centre, crop_window, invert_affine, wrap_deg
from identix_stream.inference.detector import Detection, calibrate_box, same_face
from identix_stream.pipeline.paste import crop_face

Box = tuple[float, float, float, float]
# (roll, face box or None to find one for that roll) -> (face box, crop, affine)
CutFn = Callable[[float, Box | None], tuple[Box, np.ndarray, np.ndarray]]
ParseFn = Callable[[list[np.ndarray]], list[torch.Tensor]]  # crops -> per-crop class probabilities
DetectFn = Callable[[np.ndarray], list[Detection]]  # BGR image -> faces

PATCH_SCALE = 2.0  # the re-detection patch, in face-box sides: room for the detector's own margin
PATCH_SIZE = 256


def _angle_gap(a: float, b: float) -> float:
    return abs(wrap_deg(a - b))


def face_box_at(image: np.ndarray, detect: DetectFn, detector_box: Box, detector_roll: float, roll: float) -> Box:
    """The face box (sides along the face's axes) for a crop of the face at ``roll``.

    Close to the detector's roll it is the detector's calibrated box. Further off, the face is
    detected again in a patch cut upright at ``roll`` and the nearest face's calibrated box is mapped
    back; the detector's box is kept when the patch shows no face near its centre."""
    fallback = calibrate_box(detector_box, roll)
    if _angle_gap(roll, detector_roll) <= REDETECT_BEYOND_DEG:
        return fallback
    window = crop_window(fallback, PATCH_SCALE, 0.0, roll)
    patch, m = crop_face(image, window, PATCH_SIZE)
    half = PATCH_SIZE / 2.0

    def offset(b: Box) -> tuple[float, float]:
        cx, cy = box_centre(b)
        return cx - half, cy - half

    near = [b for b in (d.face_box() for d in detect(patch)) if max(map(abs, offset(b))) <= PATCH_SIZE / 4.0]
    if not near:
        return fallback
    x1, y1, x2, y2 = best = min(near, key=lambda b: offset(b)[0] ** 2 + offset(b)[1] ** 2)
    ix, iy = invert_affine(m) @ np.array([*box_centre(best), 1.0])
    k = window.side / PATCH_SIZE
    w, h = (x2 - x1) * k, (y2 - y1) * k
    return float(ix - w / 2.0), float(iy - h / 2.0), float(ix + w / 2.0), float(iy + h / 2.0)


@dataclass(frozen=True, slots=True)
class FaceView:
    """One crop of a face: the roll it was cut at, its face box, the crop, its affine and its parse."""

    roll: float
    box: Box
    crop: np.ndarray
    affine: np.ndarray
    probs: torch.Tensor
    labels: np.ndarray

    @classmethod
    def parsed(cls, roll: float, box: Box, crop: np.ndarray, affine: np.ndarray, probs: torch.Tensor) -> FaceView:
        return cls(roll, box, crop, affine, probs, probs.argmax(0).to(torch.uint8).numpy())

    @property
    def share(self) -> float:
        return part_share(self.labels)

    @property
    def ratio(self) -> float:
        return part_ratio(self.labels)


def _views(requests: list[tuple[float, Box | None]], cuts: list[CutFn], parse: ParseFn) -> list[FaceView]:
    """Cut and parse one crop per ((roll, box), cut) pair, in one parser call."""
    pieces = [cut(roll, box) for (roll, box), cut in zip(requests, cuts, strict=True)]
    probs = parse([crop for _, crop, _ in pieces]) if pieces else []
    return [FaceView.parsed(roll, box, crop, m, p)
            for (roll, _), (box, crop, m), p in zip(requests, pieces, probs, strict=True)]


def group_turned(per_turn: Sequence[Sequence[Detection]]) -> list[tuple[Detection, tuple[Detection, ...], bool]]:
    """One entry per face from ``FaceDetector.detect_turned``: its primary detection, the same face's
    detections in the other turns, and whether the upright image found it. The primary is the upright
    image's detection, or for a face found only in turned copies the best-scoring one."""
    groups: list[tuple[Detection, list[Detection], bool]] = [(d, [], True) for d in per_turn[0]]
    for d in sorted((d for dets in per_turn[1:] for d in dets), key=lambda d: d.score, reverse=True):
        for primary, alternates, _ in groups:
            if same_face(d.box, primary.box):
                alternates.append(d)
                break
        else:
            groups.append((d, [], False))
    return [(primary, tuple(alternates), upright) for primary, alternates, upright in groups]


def _keep_best(out: list[FaceView], requests: dict[int, list[tuple[float, Box | None]]], cuts: Sequence[CutFn],
               parse: ParseFn) -> list[int]:
    """Cut and parse every face's requested views (one parser call) and keep, per face, the view
    ``choose_view`` picks: the one whose parsed face is most made of parts (``part_ratio``: a crop's
    framing does not change it) if it beats the current view by SWITCH_MARGIN, or a level view at least
    as rich in parts when the current one is not level; returns the faces whose view changed."""
    order = [i for i, wanted in requests.items() if wanted]
    tried = _views([r for i in order for r in requests[i]], [cuts[i] for i in order for _ in requests[i]], parse)
    changed: list[int] = []
    start = 0
    for i in order:
        candidates = [out[i], *tried[start : start + len(requests[i])]]
        start += len(requests[i])
        best = choose_view([v.ratio for v in candidates], [is_level_face(v.labels) for v in candidates])
        if best:
            out[i] = candidates[best]
            changed.append(i)
    return changed


def orient_faces(first: Sequence[FaceView], cuts: Sequence[CutFn], parse: ParseFn,
                 alternates: Sequence[Sequence[tuple[float, Box]]]) -> list[FaceView]:
    """The upright view of every face.

    1. Each face is also cut at quarter turns of its first view and at ``alternates`` (roll, face box),
       its detections in turned copies of the photo, at rolls more than REDETECT_BEYOND_DEG from the
       first; the view whose parsed face is most made of parts wins by SWITCH_MARGIN (a level view
       needs no margin over a view that is not level: ``choose_view``). Every face is tried: the parser
       can hallucinate an upright-looking layout in a turned crop.
    2. Up to REFINE_STEPS steps along the parsed eye line straighten a face that changed view, and a
       face that kept the detector's view only when its eyes are REFINE_KEPT_MIN_DEG off level: small
       differences are left to the detector's roll, the one every deepfake model's fit data had."""
    out = list(first)
    requests: dict[int, list[tuple[float, Box | None]]] = {}
    for i, view in enumerate(out):
        turned: list[tuple[float, Box | None]] = [
            (r, b) for r, b in alternates[i] if _angle_gap(r, view.roll) > REDETECT_BEYOND_DEG]
        quarter_turns: list[tuple[float, Box | None]] = [(view.roll + t, None) for t in QUARTER_TURNS_DEG]
        requests[i] = quarter_turns + turned
    changed = set(_keep_best(out, requests, cuts, parse))
    todo = list(range(len(out)))
    for _ in range(REFINE_STEPS):
        steps: list[tuple[int, tuple[float, Box | None]]] = []
        for i in todo:
            residual = eye_line_residual_deg(out[i].labels)
            least = REFINE_MIN_DEG if i in changed else REFINE_KEPT_MIN_DEG
            if residual is not None and abs(residual) >= least:
                steps.append((i, (out[i].roll + residual, out[i].box)))
        if not steps:
            break
        refined = _views([r for _, r in steps], [cuts[i] for i, _ in steps], parse)
        todo = []
        for (i, _), view in zip(steps, refined, strict=True):
            if view.share >= REFINE_KEEP_SHARE * out[i].share:
                out[i] = view
                changed.add(i)
                todo.append(i)
    return out
