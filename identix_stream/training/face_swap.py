"""Make face-swap test material: another person's face blended into real video frames.

The classic cheap swap: per frame, the target face is found (detector), cropped with the parser's
geometry and parsed; the donor face (a labelled photo) is aligned onto the target by a similarity
fitted to the centres of the parts both parses show (brows, eyes, nose, mouth; the face boxes when
fewer than 3 parts are shared), its colours are matched to the target skin (mean/std in Lab), and
it is blended in through the target's parsed face mask (eroded, feathered). Used by the tests (a
swap must become likely_fake within 3 s) and by training/fit_fusion.py; never by the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np

from identix_stream.core.classes import FACE_CLASSES, L_BROW, L_EYE, L_LIP, MOUTH, NOSE, R_BROW, R_EYE, U_LIP
from identix_stream.core.geometry import crop_window, face_box_from_labels, invert_affine, similarity_from_points
from identix_stream.core.label_sides import swap_sides

CROP = 256
# Parts whose centres anchor the alignment; the mouth is the union of the lips and the inner mouth.
ALIGN_PARTS: tuple[tuple[int, ...], ...] = ((L_BROW,), (R_BROW,), (L_EYE,), (R_EYE,), (NOSE,), (U_LIP, MOUTH, L_LIP))
MIN_PART_PIXELS = 12


def _box(labels: np.ndarray) -> tuple[float, float, float, float] | None:
    return face_box_from_labels(labels, FACE_CLASSES)


def colour_transfer(src: np.ndarray, src_mask: np.ndarray, dst: np.ndarray, dst_mask: np.ndarray) -> np.ndarray:
    """src recoloured so its masked Lab mean/std match dst's masked region."""
    s = cv2.cvtColor(src, cv2.COLOR_BGR2LAB).astype(np.float32)
    d = cv2.cvtColor(dst, cv2.COLOR_BGR2LAB).astype(np.float32)
    sm, dm = src_mask.astype(bool), dst_mask.astype(bool)
    mu_s, sd_s = s[sm].mean(0), s[sm].std(0) + 1e-3
    mu_d, sd_d = d[dm].mean(0), d[dm].std(0) + 1e-3
    out = (s - mu_s) / sd_s * sd_d + mu_d
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


def donor_crop(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A whole aligned face image (e.g. CelebAMask) and its 11-class labels as a CROP-sized donor."""
    return (cv2.resize(image, (CROP, CROP), interpolation=cv2.INTER_AREA),
            cv2.resize(labels, (CROP, CROP), interpolation=cv2.INTER_NEAREST))


def box_to_box(src: tuple[float, float, float, float], dst: tuple[float, float, float, float]) -> np.ndarray:
    """2x3 scale + shift that puts the centre of box ``src`` on ``dst``'s, at their mean size ratio."""
    s = 0.5 * ((dst[2] - dst[0]) / max(src[2] - src[0], 1e-6) + (dst[3] - dst[1]) / max(src[3] - src[1], 1e-6))
    dcx, dcy = (dst[0] + dst[2]) / 2, (dst[1] + dst[3]) / 2
    scx, scy = (src[0] + src[2]) / 2, (src[1] + src[3]) / 2
    return np.array([[s, 0, dcx - s * scx], [0, s, dcy - s * scy]], dtype=np.float64)


def part_centres(labels: np.ndarray) -> dict[int, tuple[float, float]]:
    """Centre (x, y) of each of ``ALIGN_PARTS`` the parse shows with at least ``MIN_PART_PIXELS``, by part index."""
    out: dict[int, tuple[float, float]] = {}
    for i, ids in enumerate(ALIGN_PARTS):
        ys, xs = np.nonzero(np.isin(labels, ids))
        if xs.size >= MIN_PART_PIXELS:
            out[i] = (float(xs.mean()), float(ys.mean()))
    return out


MAX_ALIGN_ROTATION_DEG = 60.0


def _fit_parts(donor: dict[int, tuple[float, float]], target: dict[int, tuple[float, float]]
               ) -> tuple[np.ndarray, float] | None:
    """Similarity donor -> target on shared parts and its RMS residual in pixels; None with fewer
    than 3 shared parts."""
    shared = sorted(set(donor) & set(target))
    if len(shared) < 3:
        return None
    a, b = np.array([donor[i] for i in shared]), np.array([target[i] for i in shared])
    m = similarity_from_points(a, b)
    residual = float(np.sqrt(np.mean(np.sum((a @ m[:, :2].T + m[:, 2] - b) ** 2, axis=1))))
    return m, residual


def donor_alignment(donor_labels: np.ndarray, target_labels: np.ndarray) -> np.ndarray | None:
    """2x3 map of the donor crop onto the target crop: a similarity on the shared part centres when
    at least 3 are shared, else the face boxes' scale + shift; None without a face in both.

    A donor's labels may name the sides from the viewer's point of view (raw CelebAMask masks, see
    ``core/label_sides.py``; a parse can get them wrong too), so its parts are also tried with left
    and right swapped and the closer fit wins; a fit that would turn the donor by more than
    ``MAX_ALIGN_ROTATION_DEG`` falls back to the boxes."""
    ts = part_centres(target_labels)
    fits = [f for labels in (donor_labels, swap_sides(donor_labels))
            if (f := _fit_parts(part_centres(labels), ts)) is not None]
    if fits:
        m, _ = min(fits, key=lambda f: f[1])
        if abs(np.degrees(np.arctan2(m[1, 0], m[0, 0]))) <= MAX_ALIGN_ROTATION_DEG:
            return m
    tb, db = _box(target_labels), _box(donor_labels)
    if tb is None or db is None:
        return None
    return box_to_box(db, tb)


def swap_crop(target: np.ndarray, target_labels: np.ndarray, donor: np.ndarray, donor_labels: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """(swapped crop, blend alpha) for 256 crops and their labels; None if a face is missing."""
    m = donor_alignment(donor_labels, target_labels)
    if m is None:
        return None
    warped = cv2.warpAffine(donor, m, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    warped_face = cv2.warpAffine(np.isin(donor_labels, FACE_CLASSES).astype(np.uint8), m, (CROP, CROP),
                                 flags=cv2.INTER_NEAREST)
    target_face = np.isin(target_labels, FACE_CLASSES).astype(np.uint8)
    if warped_face.sum() < 500 or target_face.sum() < 500:
        return None
    warped = colour_transfer(warped, warped_face, target, target_face)
    both = np.logical_and(target_face > 0, warped_face > 0).astype(np.uint8)
    alpha: np.ndarray = cv2.erode(both, np.ones((7, 7), np.uint8)).astype(np.float32)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 4.0)[..., None]
    out = alpha * warped.astype(np.float32) + (1 - alpha) * target.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), alpha[..., 0]


def swap_frames(frames: Iterable[np.ndarray], donor: np.ndarray, donor_labels: np.ndarray, detector: Any,
                runtime: Any) -> Iterator[np.ndarray]:
    """Each frame with its largest face replaced by the donor (frames without a face pass as they are).

    ``detector``: inference.detector.FaceDetector; ``runtime``: inference.parser_runtime.ParserRuntime.
    ``donor`` is a 256 crop framed like the parser's (e.g. a CelebAMask image resized) with labels.
    """
    for frame in frames:
        dets = detector.detect(frame)
        if not dets:
            yield frame
            continue
        det = dets[0]
        window = crop_window(det.face_box(), runtime.spec.crop_scale, runtime.spec.crop_shift_y, det.roll_deg)
        m = window.affine(CROP)
        crop = cv2.warpAffine(frame, m, (CROP, CROP), flags=cv2.INTER_LINEAR)
        labels = runtime.labels([crop])[0]
        swapped = swap_crop(crop, labels, donor, donor_labels)
        if swapped is None:
            yield frame
            continue
        face, alpha = swapped
        h, w = frame.shape[:2]
        inv = invert_affine(m)
        face_f = cv2.warpAffine(face, inv, (w, h), flags=cv2.INTER_LINEAR)
        alpha_f = cv2.warpAffine(alpha, inv, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        out = alpha_f * face_f.astype(np.float32) + (1 - alpha_f) * frame.astype(np.float32)
        yield np.clip(out + 0.5, 0, 255).astype(np.uint8)
