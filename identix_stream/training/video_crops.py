"""Real face crops from videos and photos, framed exactly like the service frames them (detector face box ->
crop_window with the parser's scale/shift and the eye-line roll), and JPEG / H.264 round trips for
stills so models see the codec traces that every video face carries."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, NamedTuple

import av
import cv2
import numpy as np

from identix_stream.core.geometry import CROP_SCALE, CROP_SHIFT_Y, box_centre, crop_window
from identix_stream.inference.deepfake_features import native_square, native_squares

# The 12 shared talking-head clips, split by name: the first half may be used to fit/calibrate,
# the second half is only ever used to check (docs/deepfake.md).
TALKING_HEADS_FIT = ("driving_d0", "driving_d12", "driving_d18", "driving_d20", "driving_d9", "source_s20")
TALKING_HEADS_CHECK = ("driving_d10", "driving_d14", "driving_d19", "driving_d3", "source_s13", "source_s32")


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """One image through JPEG at ``quality`` and back (the image itself if the codec fails)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    return np.asarray(decoded) if decoded is not None else img


def h264_roundtrip(img: np.ndarray, crf: int) -> np.ndarray:
    """One frame through libx264 (yuv420p, given CRF) and back."""
    h, w = img.shape[:2]
    img = img[: h - h % 2, : w - w % 2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream: Any = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = img.shape[1], img.shape[0], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r") as inp:
        for frame in inp.decode(video=0):
            return np.asarray(frame.to_ndarray(format="bgr24"))
    raise ValueError("libx264 round trip produced no frame")


def service_crop(img: np.ndarray, det: Any, size: int, scale: float, shift_y: float) -> np.ndarray:
    """The crop the service takes of one detection (pipeline/paste.crop_face: rotated, black outside)."""
    from identix_stream.pipeline.paste import crop_face

    return crop_face(img, crop_window(det.face_box(), scale, shift_y, det.roll_deg), size)[0]


class FaceCrop(NamedTuple):
    """A face as the service scores it: the parser crop, and the frame it was cut from with the face
    centre (the fingerprint factor reads the face there at the frame's own resolution)."""

    crop: np.ndarray
    frame: np.ndarray
    centre: tuple[float, float]

    @property
    def square(self) -> np.ndarray:
        """The one square a video frame's fingerprint reads (``native_square``)."""
        return native_square(self.frame, self.centre)

    @property
    def squares(self) -> list[np.ndarray]:
        """The squares a photo's fingerprint reads (``native_squares``)."""
        return native_squares(self.frame, self.centre)

    @property
    def source(self) -> tuple[np.ndarray, tuple[float, float]]:
        """What ``DeepfakeScorer.score`` takes as this face's source."""
        return self.frame, self.centre


def _face(img: np.ndarray, det: Any, size: int, scale: float, shift_y: float) -> FaceCrop:
    return FaceCrop(service_crop(img, det, size, scale, shift_y), img, box_centre(det.face_box()))


def video_faces(path: Path, detector: Any, every: int = 10, limit: int = 20, size: int = 256,
                scale: float = CROP_SCALE, shift_y: float = CROP_SHIFT_Y) -> list[FaceCrop]:
    """The most confident face of every ``every``-th frame, at most ``limit``."""
    faces: list[FaceCrop] = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every:
                continue
            img = frame.to_ndarray(format="bgr24")
            dets = detector.detect(img)
            if not dets:
                continue
            faces.append(_face(img, dets[0], size, scale, shift_y))
            if len(faces) >= limit:
                break
    return faces


def photo_faces(paths: list[Path], detector: Any, size: int = 256, scale: float = CROP_SCALE,
                shift_y: float = CROP_SHIFT_Y) -> list[FaceCrop]:
    """The most confident face of each photo (photos without a face are skipped)."""
    faces: list[FaceCrop] = []
    for path in paths:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        dets = detector.detect(img)
        if dets:
            faces.append(_face(img, dets[0], size, scale, shift_y))
    return faces
