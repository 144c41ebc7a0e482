"""Self-blended images (Shiohara & Yamasaki, CVPR 2022) from labelled real faces.

A face is blended back into itself: the source copy gets a colour, sharpness and small geometry
perturbation, the blend mask is the face region of the parsing labels, deformed and blurred. The
result has the seams of a face swap but no identity change, so a classifier trained on it learns
the blending traces rather than who the person is. Real and blended samples share the same
post-processing (JPEG, down/up-scaling, flips), so those never tell the classes apart.
"""

from __future__ import annotations

import cv2
import numpy as np

from identix_stream.core.classes import FACE_CLASSES, IGNORE_INDEX, LFW3_FACE
from identix_stream.core.geometry import crop_window
from identix_stream.training.video_crops import h264_roundtrip, jpeg_roundtrip


def face_region(labels: np.ndarray, coarse: bool) -> np.ndarray:
    """Binary face mask (skin and inner facial parts; no hair, ears or neck) from training labels."""
    if coarse:
        return (labels == LFW3_FACE).astype(np.uint8)
    return (np.isin(labels, list(FACE_CLASSES)) & (labels != IGNORE_INDEX)).astype(np.uint8)


def face_parts(labels: np.ndarray, coarse: bool) -> np.ndarray:
    """The face region keeping its part ids (0 outside; coarse labels give 1 = skin for the whole face),
    so a blend can align a donor by its parts and still read the region as ``parts > 0``."""
    region = face_region(labels, coarse)
    return region if coarse else np.where(region > 0, labels, 0).astype(np.uint8)


def frame_edge_cut(
    image: np.ndarray, mask: np.ndarray, face_box: tuple[float, float, float, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Copies of ``image`` and ``mask`` black (0) outside a random rectangle whose chosen sides fall from
    10% inside the face box to 35% of the face's size beyond it: the face as a frame's edge cuts it
    (a webcam user close to the camera, a face at the side of a video, a tight crop such as DFDC's),
    so the service's crop of it holds black where the frame ends."""
    x1, y1, x2, y2 = face_box
    fw, fh = x2 - x1, y2 - y1
    sides = rng.random(4) < 0.5
    if not sides.any():
        sides[int(rng.integers(0, 4))] = True
    reach = rng.uniform(-0.1, 0.35, 4)
    h, w = image.shape[:2]
    left = round(float(x1 - reach[0] * fw)) if sides[0] else 0
    top = round(float(y1 - reach[1] * fh)) if sides[1] else 0
    right = round(float(x2 + reach[2] * fw)) if sides[2] else w
    bottom = round(float(y2 + reach[3] * fh)) if sides[3] else h
    keep = np.zeros((h, w), bool)
    keep[max(0, top):max(0, min(h, bottom)), max(0, left):max(0, min(w, right))] = True
    img = np.where(keep[..., None] if image.ndim == 3 else keep, image, 0).astype(image.dtype)
    return img, np.where(keep, mask, 0).astype(mask.dtype)


def crop_sample(
    image: np.ndarray,
    mask: np.ndarray,
    face_box: tuple[float, float, float, float],
    size: int,
    rng: np.random.Generator,
    frame_edges: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A jittered crop around the face box: framing from tight (DFDC-like) to the parser's 1.35x.

    ``frame_edges`` > 0 cuts the crop the way the service does, black outside the image (else the image is
    mirrored there, as the shipped blend CNN was trained), and that share of crops first loses part of the
    frame around the face (``frame_edge_cut``) and gets up to 25 degrees of roll, so black corners and
    edges come with real and blended faces alike."""
    scale = float(rng.uniform(1.05, 1.6))
    x1, y1, x2, y2 = face_box
    w, h = x2 - x1, y2 - y1
    dx, dy = rng.uniform(-0.05, 0.05, 2) * (w, h)
    angle = float(rng.uniform(-8, 8))
    border = cv2.BORDER_REFLECT
    if frame_edges > 0:
        border = cv2.BORDER_CONSTANT
        if rng.random() < frame_edges:
            image, mask = frame_edge_cut(image, mask, face_box, rng)
            angle = float(rng.uniform(-25, 25))
    win = crop_window((x1 + dx, y1 + dy, x2 + dx, y2 + dy), scale=scale, angle_deg=angle)
    m = win.affine(size)
    # bilinear, like the service's crop (pipeline/paste.crop_face); warpAffine has no area mode (INTER_AREA,
    # which this asked for on large faces until 2026-11-29, is silently bilinear), so the shipped files were
    # trained on exactly these pixels
    img = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
    msk = cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
    return img, msk


def _perturb_colour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img.astype(np.float32)
    if rng.random() < 0.8:
        out += rng.uniform(-20, 20, 3).astype(np.float32)  # per-channel shift
    if rng.random() < 0.6:
        c = rng.uniform(0.85, 1.15)
        out = (out - out.mean()) * c + out.mean() + rng.uniform(-15, 15)
    if rng.random() < 0.4:
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.8, 1.2), 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    return np.clip(out, 0, 255)


def _perturb_sharpness(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r = rng.random()
    if r < 0.45:
        return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.6, 1.6)))
    if r < 0.8:
        blur = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.8, 1.5)))
        return np.clip(img + rng.uniform(0.4, 1.2) * (img - blur), 0, 255)
    return img


def _perturb_geometry(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = img.shape[0]
    s = rng.uniform(0.95, 1.05)
    m = cv2.getRotationMatrix2D((n / 2, n / 2), float(rng.uniform(-2, 2)), s)
    m[:, 2] += rng.uniform(-0.025, 0.025, 2) * n
    return cv2.warpAffine(img, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _deform_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = mask.shape[0]
    m: np.ndarray = mask.astype(np.float32)
    # smooth random displacement field: the seam wanders like a swap's hull, not the exact parse
    grid = rng.normal(0, 1, (2, 5, 5)).astype(np.float32) * rng.uniform(1.0, 0.04 * n)
    flow = [cv2.resize(g, (n, n), interpolation=cv2.INTER_CUBIC) for g in grid]
    xs, ys = np.meshgrid(np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32))
    m = cv2.remap(m, xs + flow[0], ys + flow[1], cv2.INTER_LINEAR, borderValue=0)
    k = int(rng.integers(0, max(2, n // 20)))
    if k > 0:
        kernel = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
        m = cv2.erode(m, kernel) if rng.random() < 0.5 else cv2.dilate(m, kernel)
    sigma = float(rng.uniform(0.01, 0.06) * n)
    m = cv2.GaussianBlur(m, (0, 0), sigma)
    m = m / max(float(m.max()), 1e-6)
    ratio = float(rng.choice([0.5, 0.75, 1.0, 1.0, 1.0]))
    return np.clip(m * ratio, 0.0, 1.0)


def _blend(src: np.ndarray, img: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = alpha[..., None] * src + (1.0 - alpha[..., None]) * img.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def self_blend_with_alpha(img: np.ndarray, mask: np.ndarray,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``self_blend`` and its blend weights (float32 0-1 per pixel, where the perturbed copy shows)."""
    src = _perturb_geometry(_perturb_sharpness(_perturb_colour(img, rng), rng), rng)
    alpha = _deform_mask((mask > 0).astype(np.uint8), rng)
    return _blend(src, img, alpha), alpha


def self_blend(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One self-blended fake from a BGR uint8 crop and its face mask (same size; any id > 0 is face)."""
    return self_blend_with_alpha(img, mask, rng)[0]


MIN_CROSS_FACE_PIXELS = 50  # a smaller face region gives no box worth moving a donor onto


def cross_blend(img: np.ndarray, mask: np.ndarray, donor: np.ndarray, donor_mask: np.ndarray,
                rng: np.random.Generator) -> np.ndarray | None:
    """Another real person's face blended in (see ``cross_blend_with_alpha``); None when a face region is
    too small."""
    blended = cross_blend_with_alpha(img, mask, donor, donor_mask, rng)
    return None if blended is None else blended[0]


def cross_blend_with_alpha(img: np.ndarray, mask: np.ndarray, donor: np.ndarray, donor_mask: np.ndarray,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """Another real person's face blended in (Face X-ray's "blended images", Li et al. CVPR 2020):
    the donor crop is aligned onto the target like ``training/face_swap.py`` does (a similarity on the
    part centres both show, else the face boxes), moved by up to 2% of the crop, colour-matched to the
    target's face (Lab mean/std) most of the time, given the same sharpness perturbation as a
    self-blend, and blended through the target's deformed, feathered face mask. Masks are face part
    maps (``face_parts``; any id > 0 is face). Self-blends teach subtle seams of the same face; these
    teach the identity/texture change inside a seam that real swaps have. Until 2026-11-29 donors were
    only box-aligned, so most cross blends showed misplaced eyes and brows, a cue real swaps lack.
    Returns the fake and its blend weights, or None when a face region is too small."""
    from identix_stream.training.face_swap import colour_transfer, donor_alignment

    face, donor_face = mask > 0, donor_mask > 0
    if min(np.count_nonzero(face), np.count_nonzero(donor_face)) < MIN_CROSS_FACE_PIXELS:
        return None
    m = donor_alignment(donor_mask, mask)
    if m is None:
        return None
    n = img.shape[0]
    m[:, 2] += rng.uniform(-0.02, 0.02, 2) * n
    src = cv2.warpAffine(donor, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    src_face = cv2.warpAffine(donor_face.astype(np.uint8), m, (n, n), flags=cv2.INTER_NEAREST)
    region = face & (src_face > 0)
    if region.sum() < 200:
        return None
    if rng.random() < 0.75:
        src = colour_transfer(src, region, img, face)
    else:
        src = np.clip(_perturb_colour(src, rng), 0, 255).astype(np.uint8)
    src = _perturb_sharpness(src.astype(np.float32), rng)
    alpha = _deform_mask(region.astype(np.uint8), rng)
    return _blend(src, img, alpha), alpha


def _global_colour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Whole-image exposure / white balance / saturation change: skin tone, lighting and camera vary
    far more in the wild than in CelebAMask, and must not read as "fake" (measured: the under-trained
    net scored the dark-skinned real DFDC faces against a green wall 0.89)."""
    x = img.astype(np.float32) / 255.0
    x = np.power(x, float(rng.uniform(0.6, 1.6)))  # gamma: darker / lighter faces
    x = x * rng.uniform(0.85, 1.15, 3).astype(np.float32) * float(rng.uniform(0.7, 1.2))  # white balance, exposure
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * float(rng.uniform(0.5, 1.4))  # saturation
    return np.asarray(np.clip(x * 255.0 + 0.5, 0, 255), dtype=np.uint8)


def _occlude(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A flat dark or coloured band or blob over part of the face (sunglasses, a cap's brim, a hand):
    real photos have them, self-blends of CelebAMask rarely do, and the net must not learn "occluded
    means fake" (measured: sunglasses and caps were among the real photos it scored highest)."""
    n = img.shape[0]
    out = img.copy()
    colour = tuple(int(c) for c in (rng.integers(0, 60, 3) if rng.random() < 0.6 else rng.integers(0, 256, 3)))
    if rng.random() < 0.5:  # horizontal band (glasses, brim)
        y = int(rng.uniform(0.15, 0.55) * n)
        h = int(rng.uniform(0.08, 0.2) * n)
        cv2.rectangle(out, (int(rng.uniform(0, 0.2) * n), y), (int(rng.uniform(0.8, 1.0) * n), y + h), colour, -1)
    else:
        centre = (int(rng.uniform(0.2, 0.8) * n), int(rng.uniform(0.2, 0.9) * n))
        axes = (int(rng.uniform(0.08, 0.25) * n), int(rng.uniform(0.08, 0.25) * n))
        cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    return cv2.GaussianBlur(out, (0, 0), 0.7)


def _compress(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """JPEG (quality 30-85) or H.264 (CRF 20-32) at the image's own size, half and half."""
    if rng.random() < 0.5:
        return jpeg_roundtrip(img, int(rng.integers(30, 86)))
    h, w = img.shape[:2]
    out = h264_roundtrip(np.ascontiguousarray(img), int(rng.integers(20, 33)))
    return out if out.shape[:2] == (h, w) else cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)


def degrade(img: np.ndarray, rng: np.random.Generator, small_codec: float = 0.0) -> np.ndarray:
    """``degrade_flipped`` without saying whether the image was mirrored."""
    return degrade_flipped(img, rng, small_codec)[0]


def degrade_flipped(img: np.ndarray, rng: np.random.Generator, small_codec: float = 0.0) -> tuple[np.ndarray, bool]:
    """Post-processing shared by real and fake samples: flips, colour, grey, occluders, down/up-scaling,
    JPEG, noise. Scaling reaches 1/4: small faces upscaled to the crop (DFDC crops ~70 px, blurry web
    photos) were the real faces the net scored most fake. With probability ``small_codec`` a downscaled
    sample is also compressed at its small size before it is upscaled, as a camera or codec compresses
    a face that is small in the frame: the blocks then reach the net several pixels wide, which it had
    never seen on a real face (docs/deepfake.md, session 12). Also says whether the image was mirrored
    left-right, so a blend's weights can follow it."""
    n = img.shape[0]
    flipped = bool(rng.random() < 0.5)
    if flipped:
        img = img[:, ::-1]
    if rng.random() < 0.5:
        img = _global_colour(img, rng)
    if rng.random() < 0.08:
        img = cv2.cvtColor(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < 0.12:
        img = _occlude(np.ascontiguousarray(img), rng)
    if rng.random() < 0.45:
        small = int(n * rng.uniform(0.25, 0.9))
        shrunk = cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA)
        if rng.random() < small_codec:
            shrunk = _compress(shrunk, rng)
        img = cv2.resize(shrunk, (n, n), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.15:
        img = np.clip(img + rng.normal(0, rng.uniform(1, 4), img.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        img = jpeg_roundtrip(img, int(rng.integers(45, 96)))
    return np.ascontiguousarray(img), flipped
