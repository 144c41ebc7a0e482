"""Draw analysis results on a frame: class overlay, face boxes, track ids, deepfake confidence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import cv2
import numpy as np

from identix_stream.core.types import FaceResult
from identix_stream.media.images import overlay

# BGR box colour per deepfake state
STATE_COLOURS: Final[dict[str, tuple[int, int, int]]] = {
    "collecting": (200, 200, 200),
    "likely_real": (80, 200, 60),
    "likely_fake": (40, 40, 230),
    "uncertain": (0, 170, 255),
}
STATE_WORDS: Final[dict[str, str]] = {
    "collecting": "collecting",
    "likely_real": "real",
    "likely_fake": "FAKE",
    "uncertain": "uncertain",
}


def face_caption(face: FaceResult) -> str:
    """"#3 real p=0.12" — the track id, the deepfake state and the running probability of fake."""
    est = face.deepfake
    text = f"#{face.track_id} {STATE_WORDS.get(est.state, est.state)}"
    if est.p_fake is not None:
        text += f" p={est.p_fake:.2f}"
    return text


def annotate_frame(
    image_bgr: np.ndarray,
    labels: np.ndarray | None,
    faces: Sequence[FaceResult],
    alpha: float = 0.45,
) -> np.ndarray:
    """A new BGR image with the label overlay (when given), each face's box and caption."""
    out = overlay(image_bgr, labels, alpha) if labels is not None else image_bgr.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(1.2, min(h, w) / 900))
    thick = max(1, round(2 * scale))
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        colour = STATE_COLOURS.get(face.deepfake.state, (255, 255, 255))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick if face.track_state == "confirmed" else 1, cv2.LINE_AA)
        caption = face_caption(face)
        (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(h - 1, y2 + th + 4)
        tx = max(0, min(x1, w - tw - 2))
        cv2.rectangle(out, (tx, ty - th - base), (tx + tw + 2, ty + base), (0, 0, 0), -1)
        cv2.putText(out, caption, (tx + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
    return out
