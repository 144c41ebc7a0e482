"""Hand-made per-frame deepfake features (numpy + OpenCV, no torch): generator fingerprints from the
pixel statistics of a face crop, and the consistency of the face region with its surroundings.

Spectral / fingerprint features (Durall et al. 2020; Frank et al. 2020; co-occurrences after
Cozzolino & Verdoliva's residual features): computed on an FP_SIZE square of the face at the
source's own pixel grid (``native_square``: no resampling, because resampling erases the periodic
upsampling traces; the service hands the scorer that square from the frame, and the central square
of the parser crop is only the fallback). Two groups: the 2-D log power spectrum of the high-pass
residual pooled to 20x10 cells, and 5x5 co-occurrence histograms of quantised first-order residuals per colour channel.
"""

from __future__ import annotations

import cv2
import numpy as np

from identix_stream.core.classes import FACE_CLASSES, HAIR

FP_SIZE = 160
FP_GRID_STEP = 24  # px between a photo's fingerprint squares (native_squares)
_WIN = np.outer(np.hanning(FP_SIZE), np.hanning(FP_SIZE))


def center_square(img: np.ndarray, size: int = FP_SIZE) -> np.ndarray:
    """The central size x size square; smaller images are upscaled to it first."""
    h, w = img.shape[:2]
    if min(h, w) < size:
        s = size / min(h, w)
        img = cv2.resize(img, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_LINEAR)
        h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[y:y + size, x:x + size])


def reads_natively(frame: np.ndarray, size: int = FP_SIZE) -> bool:
    """Whether a ``size`` square of the frame's own pixels exists. In a smaller frame (a thumbnail, a
    tight crop) ``native_square`` must upscale, and upscaling is the very trace the fingerprint looks
    for: real 150-px photos read as generated (p 0.9-1.0), so the scorer leaves the factor out."""
    return min(frame.shape[:2]) >= size


def native_square(frame: np.ndarray, centre: tuple[float, float], size: int = FP_SIZE) -> np.ndarray:
    """The size x size square of the frame's own pixels nearest the face centre (kept inside the
    frame); frames smaller than that are upscaled by ``center_square``."""
    h, w = frame.shape[:2]
    if min(h, w) < size:
        return center_square(frame, size)
    x = round(min(max(centre[0] - size / 2, 0.0), w - size))
    y = round(min(max(centre[1] - size / 2, 0.0), h - size))
    return np.ascontiguousarray(frame[y:y + size, x:x + size])


def native_squares(frame: np.ndarray, centre: tuple[float, float], step: int = FP_GRID_STEP,
                   size: int = FP_SIZE) -> list[np.ndarray]:
    """The 3x3 grid of ``native_square`` squares ``step`` px apart around the face centre, each kept
    inside the frame (positions that coincide there are read once). A photo's fingerprint is the mean
    of their readings: one square's reading swings by several log-odds with what it happens to hold, and
    the mean ranked photos better than the centre square alone (docs/deepfake.md, session 16)."""
    h, w = frame.shape[:2]
    if min(h, w) < size:
        return [center_square(frame, size)]
    def corner(c: float, extent: int) -> int:
        return round(min(max(c - size / 2, 0.0), extent - size))

    corners = dict.fromkeys((corner(centre[1] + dy, h), corner(centre[0] + dx, w))
                            for dy in (-step, 0, step) for dx in (-step, 0, step))
    return [np.ascontiguousarray(frame[y:y + size, x:x + size]) for y, x in corners]


def reduced_square(frame: np.ndarray, centre: tuple[float, float], factor: float,
                   size: int = FP_SIZE) -> np.ndarray | None:
    """The ``size`` square nearest the face centre in the frame shrunk by ``factor`` (> 1); None when
    the shrunk frame is smaller than the square. Only the region the square needs is shrunk (area
    interpolation). The scorer's check for enlarged photos reads it."""
    h, w = frame.shape[:2]
    if min(h, w) / factor < size:
        return None
    side = min(min(h, w), int(np.ceil(size * factor)) + 2)
    x = round(min(max(centre[0] - side / 2, 0.0), w - side))
    y = round(min(max(centre[1] - side / 2, 0.0), h - side))
    region = frame[y:y + side, x:x + side]
    small = cv2.resize(region, (round(side / factor), round(side / factor)), interpolation=cv2.INTER_AREA)
    return center_square(small, size)


def _spectrum_cells(square_bgr: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(square_bgr, cv2.COLOR_BGR2GRAY).astype(np.float64)
    g -= cv2.GaussianBlur(g, (0, 0), 2)
    power = np.log(np.abs(np.fft.fftshift(np.fft.fft2(g * _WIN))) ** 2 + 1e-8)
    half = cv2.resize(power[:, FP_SIZE // 2:], (10, 20), interpolation=cv2.INTER_AREA)  # spectrum is symmetric
    return (half - half.mean()).ravel()


def _cooccurrences(square_bgr: np.ndarray) -> np.ndarray:
    out = []
    for ch in range(3):
        c = square_bgr[..., ch].astype(np.int32)
        for axis in (0, 1):
            q = np.clip(np.round(np.diff(c, axis=axis) / 2.0), -2, 2).astype(np.int64) + 2
            a, b = (q[:-1, :], q[1:, :]) if axis == 0 else (q[:, :-1], q[:, 1:])
            hist = np.bincount((a * 5 + b).ravel(), minlength=25).astype(np.float64)
            out.append(hist / hist.sum())
    return np.log(np.concatenate(out) + 1e-4)


def fingerprint_features(image_bgr: np.ndarray) -> np.ndarray:
    """350 features of the image's central FP_SIZE square (200 spectral cells, 150 co-occurrences)."""
    sq = center_square(image_bgr)
    return np.concatenate([_spectrum_cells(sq), _cooccurrences(sq)])


BOUNDARY_SIZE = 128
BOUNDARY_FEATURES = ("noise_log_ratio", "noise_band_ratio", "colour_gap", "seam_gradient", "sharp_log_ratio")


def boundary_features(crop_bgr: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Noise and colour of the face region against a ring around it; None without enough face.

    A swapped face is re-rendered and blended in: its noise level and sharpness differ from the
    untouched neck/background around it, its colour shifts near the seam, and the seam band has
    gradients that the inner face lacks.
    """
    if crop_bgr.shape[0] > BOUNDARY_SIZE:  # statistics at 128 px: 4x cheaper, same verdicts
        crop_bgr = cv2.resize(crop_bgr, (BOUNDARY_SIZE, BOUNDARY_SIZE), interpolation=cv2.INTER_AREA)
        labels = cv2.resize(labels, (BOUNDARY_SIZE, BOUNDARY_SIZE), interpolation=cv2.INTER_NEAREST)
    face = np.isin(labels, FACE_CLASSES).astype(np.uint8)
    n_face = int(face.sum())
    if n_face < 200:
        return None
    k = max(3, int(np.sqrt(n_face) * 0.08)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    inner = cv2.erode(face, kernel, iterations=2).astype(bool)
    band_in = face.astype(bool) & ~cv2.erode(face, kernel).astype(bool)
    dil = cv2.dilate(face, kernel, iterations=2).astype(bool)
    ring = dil & ~face.astype(bool) & (labels != HAIR)
    if inner.sum() < 50 or ring.sum() < 50 or band_in.sum() < 25:
        return None
    g = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    resid = np.abs(g - cv2.GaussianBlur(g, (0, 0), 1.0))
    lap = np.abs(cv2.Laplacian(g, cv2.CV_32F))
    lab = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2LAB).astype(np.float32)
    eps = 0.05

    def med(a: np.ndarray, m: np.ndarray) -> float:
        return float(np.median(a[m]))

    noise_in, noise_ring, noise_band = med(resid, inner), med(resid, ring), med(resid, band_in)
    colour_band = lab[band_in].mean(0)
    colour_ring = lab[ring].mean(0)
    grad = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    return np.array([
        np.log((noise_in + eps) / (noise_ring + eps)),
        np.log((noise_band + eps) / (noise_in + eps)),
        float(np.linalg.norm(colour_band[1:] - colour_ring[1:])) / 10.0,
        np.log((med(grad, band_in) + 1.0) / (med(grad, inner) + 1.0)),
        np.log((med(lap, inner) + eps) / (med(lap, ring) + eps)),
    ])
