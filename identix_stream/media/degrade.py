"""Worse copies of real inputs for robustness checks (``eval-deepfake --downscale/--upscale/--crf/--jpeg``).

A detector that is right on the clips it was checked on can still flag the same real person once the
clip is smaller, enlarged or more compressed, as real uploads often are (a shared, re-encoded phone
video; a 480p clip upscaled to 1080p by an editor). These turn an input into such a copy: resized by
``scale`` (keeping the aspect ratio; area interpolation to shrink, bicubic to enlarge, as ffmpeg's
default scaler), then re-encoded: a video through H.264 at ``crf`` (every frame, with the codec's own
inter-frame prediction, as a re-upload would be), an image through JPEG at ``jpeg_quality``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from identix_stream.errors import DataError

log = logging.getLogger(__name__)

MIN_SIDE = 16  # never shrink a frame's shorter side below this
MAX_SCALE = 4.0  # enlarging further only tests the frame-size limit


@dataclass(frozen=True)
class Degradation:
    scale: float = 1.0  # 0 < scale <= MAX_SCALE
    crf: int | None = None  # H.264 CRF 0-51 for videos (None: the writer's default, 23)
    jpeg_quality: int | None = None  # 1-100 for images (None: no JPEG round trip)

    def __post_init__(self) -> None:
        if not 0.0 < self.scale <= MAX_SCALE:
            raise DataError(f"scale factor must be in (0, {MAX_SCALE:g}], got {self.scale}")
        if self.crf is not None and not 0 <= self.crf <= 51:
            raise DataError(f"H.264 CRF must be 0-51, got {self.crf}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise DataError(f"JPEG quality must be 1-100, got {self.jpeg_quality}")

    @property
    def changes_images(self) -> bool:
        return self.scale != 1.0 or self.jpeg_quality is not None

    @property
    def changes_videos(self) -> bool:
        return self.scale != 1.0 or self.crf is not None

    @property
    def active(self) -> bool:
        return self.changes_images or self.changes_videos

    def describe(self) -> dict[str, float | int | None]:
        return asdict(self)


def rescale(img: np.ndarray, scale: float) -> np.ndarray:
    """``img`` resized by ``scale`` (area interpolation to shrink, bicubic to enlarge), sides kept even
    for yuv420p and >= MIN_SIDE."""
    import cv2  # here, not at import: the CLI builds its options from Degradation without OpenCV

    if scale == 1.0:
        return img
    h, w = img.shape[:2]
    size = (max(MIN_SIDE, round(w * scale) // 2 * 2), max(MIN_SIDE, round(h * scale) // 2 * 2))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(img, size, interpolation=interpolation))


def degrade_image(img: np.ndarray, d: Degradation) -> np.ndarray:
    from identix_stream.media.images import decode_image, encode_jpeg

    out = rescale(img, d.scale)
    if d.jpeg_quality is not None:
        out = decode_image(encode_jpeg(out, d.jpeg_quality), out.shape[0] * out.shape[1])
    return out


def degrade_video(src: Path, dst: Path, d: Degradation, max_pixels: int) -> int:
    """Write ``src`` resized and re-encoded to ``dst`` (MP4, same frame rate, display rotation applied);
    returns the number of frames written. On any failure no ``dst`` is left behind."""
    from identix_stream.media.encoder import Mp4Writer
    from identix_stream.media.video import VideoReader

    writer: Mp4Writer | None = None
    try:
        with VideoReader(src, max_pixels) as reader:
            fps = reader.info.fps or 30.0
            try:
                for frame in reader.frames():
                    if frame.image is None:
                        continue
                    resized = rescale(frame.image, d.scale)
                    if writer is None:
                        writer = Mp4Writer(dst, resized.shape[1], resized.shape[0], fps, crf=d.crf)
                        if d.crf is not None and writer.codec != "libx264":
                            raise DataError(f"a CRF needs the libx264 encoder; this PyAV build has {writer.codec}")
                    writer.write(resized)
            finally:
                if writer is not None:
                    writer.close()
        if writer is None:
            raise DataError(f"no frames decoded from {src}")
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    log.info("%s -> %s: %d frames, %dx%d, %s", src.name, dst, writer.frames, writer.width, writer.height,
             d.describe())
    return writer.frames
