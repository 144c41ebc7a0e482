"""Draw analysis results on frames (class overlay, face boxes, track ids, deepfake confidence)
and render the annotated MP4 of an analysed video."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from identix_stream.core.types import FaceResult
from identix_stream.media.encoder import Mp4Writer
from identix_stream.media.images import decode_label_png, encode_png, overlay
from identix_stream.media.video import VideoReader

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


class LabelStore:
    """Label maps of a video's analysed frames, PNG-compressed into one append-only file
    (a few KB per frame instead of width x height bytes in memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index: dict[int, tuple[int, int]] = {}  # frame index -> (offset, length)
        self._size = 0
        path.write_bytes(b"")

    def __len__(self) -> int:
        return len(self._index)

    def add(self, frame_index: int, labels: np.ndarray) -> None:
        self.add_png(frame_index, encode_png(labels))

    def add_png(self, frame_index: int, data: bytes) -> None:
        """Store a label map that is already PNG-encoded (one byte per pixel = class id)."""
        with open(self.path, "ab") as fh:
            fh.write(data)
        self._index[frame_index] = (self._size, len(data))
        self._size += len(data)

    def get(self, frame_index: int) -> np.ndarray | None:
        entry = self._index.get(frame_index)
        if entry is None:
            return None
        with open(self.path, "rb") as fh:
            fh.seek(entry[0])
            return decode_label_png(fh.read(entry[1]))


@dataclass(frozen=True, slots=True)
class FrameAnnotation:
    """What to draw from one analysed frame on, until the next analysed frame."""

    index: int
    faces: tuple[FaceResult, ...]


def render_annotated_video(
    source: Path,
    out_path: Path,
    annotations: Sequence[FrameAnnotation],
    labels: LabelStore | None,
    *,
    max_pixels: int,
    alpha: float = 0.45,
    cancel: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Decode ``source`` again and write every frame with the results of the latest analysed frame
    at or before it (so a stride > 1 still gives a full-rate video). Returns the frames written."""
    by_index = sorted(annotations, key=lambda a: a.index)
    k = -1
    current_labels: np.ndarray | None = None
    written = 0
    with VideoReader(source, max_pixels) as reader:
        fps = reader.info.fps or 30.0
        writer: Mp4Writer | None = None
        try:
            for frame in reader.frames(1, cancel):
                image = frame.image
                if image is None:
                    continue
                if writer is None:
                    writer = Mp4Writer(out_path, image.shape[1], image.shape[0], fps)
                moved = False
                while k + 1 < len(by_index) and by_index[k + 1].index <= frame.index:
                    k += 1
                    moved = True
                if moved and labels is not None:
                    current_labels = labels.get(by_index[k].index)
                    if current_labels is not None and current_labels.shape != image.shape[:2]:
                        current_labels = None  # a frame of another size (mid-stream change): draw boxes only
                faces = by_index[k].faces if k >= 0 else ()
                writer.write(annotate_frame(image, current_labels, faces, alpha))
                written += 1
                if progress is not None:
                    progress(written)
        finally:
            if writer is not None:
                writer.close()
    return written
