"""Training-time augmentation for face crops: geometry matching the service crop plus webcam/upload
degradations. Pure numpy + OpenCV; every random draw comes from the caller's Generator."""

from __future__ import annotations

import math

import cv2
import numpy as np

from identix_stream.core.classes import BACKGROUND, IGNORE_INDEX, flip_labels
from identix_stream.core.geometry import CROP_SCALE, crop_window
from identix_stream.training.video_crops import jpeg_roundtrip


def random_crop(
    image: np.ndarray,
    labels: np.ndarray,
    face_box: tuple[float, float, float, float],
    rng: np.random.Generator,
    out_size: int,
    sided_labels: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a jittered service-style crop window; pixels outside the source get IGNORE labels.

    ``sided_labels`` says the label ids have left/right variants to swap on a flip (our 11 classes);
    coarse label sets without sides are only mirrored.
    """
    scale = CROP_SCALE * math.exp(rng.uniform(math.log(0.85), math.log(1.3)))
    angle = float(np.clip(rng.normal(0.0, 12.0), -35.0, 35.0))
    window = crop_window(face_box, scale=scale, angle_deg=angle)
    jitter = 0.06 * window.side
    window = type(window)(
        window.cx + rng.uniform(-jitter, jitter), window.cy + rng.uniform(-jitter, jitter), window.side, angle
    )
    flip = bool(rng.random() < 0.5)
    m = window.affine(out_size)
    crop = cv2.warpAffine(image, m, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    lab = cv2.warpAffine(
        labels, m, (out_size, out_size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
        borderValue=IGNORE_INDEX,
    )
    if flip:
        crop = crop[:, ::-1].copy()
        lab = flip_labels(lab) if sided_labels else lab[:, ::-1].copy()
    return crop, lab


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour, lighting, blur, noise, resolution and JPEG degradations on a BGR uint8 crop."""
    img: np.ndarray = image.astype(np.float32)
    # per-channel gains (white balance), contrast, brightness
    img *= rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    mean = img.mean()
    img = (img - mean) * rng.uniform(0.65, 1.35) + mean + rng.uniform(-35, 35)
    if rng.random() < 0.3:  # gamma
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.3:  # uneven lighting: a linear ramp across the face
        h, w = img.shape[:2]
        ang = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = ((xx - w / 2) * math.cos(ang) + (yy - h / 2) * math.sin(ang)) / max(h, w)
        img *= (1.0 + rng.uniform(0.2, 0.7) * ramp)[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:  # saturation
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 1] *= rng.uniform(0.3, 1.4)
        img = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    if rng.random() < 0.05:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < 0.2:  # low-resolution camera
        h, w = img.shape[:2]
        f = rng.uniform(0.3, 0.7)
        small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.15:
        k = int(rng.choice([3, 5]))
        img = cv2.GaussianBlur(img, (k, k), 0)
    elif rng.random() < 0.08:  # motion blur
        k = int(rng.choice([5, 7, 9]))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
        img = cv2.filter2D(img, -1, cv2.warpAffine(kernel, rot, (k, k)))
    if rng.random() < 0.25:
        noise = rng.normal(0, rng.uniform(2, 10), img.shape).astype(np.float32)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        img = jpeg_roundtrip(img, int(rng.integers(25, 90)))
    return img


def occlude(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> None:
    """Paint a random ellipse or bar over part of the face (hand, microphone, cup) in place.

    The occluder is not the face, so its pixels become background where they were labelled.
    """
    h, w = labels.shape
    mask = np.zeros((h, w), np.uint8)
    cx, cy = int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.3, 0.95) * h)
    if rng.random() < 0.5:
        axes = (int(rng.uniform(0.06, 0.2) * w), int(rng.uniform(0.04, 0.15) * h))
        cv2.ellipse(mask, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        dx, dy = int(rng.uniform(0.03, 0.08) * w), int(rng.uniform(0.1, 0.35) * h)
        cv2.rectangle(mask, (cx - dx, cy - dy), (cx + dx, cy + dy), 1, -1)
    colour = rng.integers(0, 256, size=3).astype(np.float32)
    texture = rng.normal(0, 12, (h, w, 1)).astype(np.float32)
    paint = np.clip(colour + texture, 0, 255).astype(np.uint8)
    sel = mask.astype(bool)
    image[sel] = paint[sel]
    labels[sel & (labels != IGNORE_INDEX)] = BACKGROUND
