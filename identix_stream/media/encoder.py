"""MP4 output with PyAV: H.264 (libx264) when the av wheel has it, else MPEG-4 Part 2."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import numpy as np

from identix_stream.errors import InvalidInput

log = logging.getLogger(__name__)

CODEC_PREFERENCE: Final[tuple[str, ...]] = ("libx264", "mpeg4")
DEFAULT_CRF: Final = 23  # libx264 quality (lower is better); mpeg4 uses a fixed bit rate instead


def available_codec() -> str:
    """The first encoder of CODEC_PREFERENCE this PyAV build can use."""
    for name in CODEC_PREFERENCE:
        try:
            av.codec.Codec(name, "w")
        except (av.FFmpegError, ValueError):  # UnknownCodecError is a ValueError subclass in some versions
            continue
        return name
    raise InvalidInput("no MP4 video encoder (libx264 or mpeg4) in this PyAV build", code="no_encoder", status=500)


class Mp4Writer:
    """Write BGR frames of a fixed size to an MP4 ("fast start": playable while downloading)."""

    def __init__(self, path: Path, width: int, height: int, fps: float, threads: int = 1,
                 crf: int | None = None) -> None:
        self.path = path
        # yuv420p needs even sides: the last odd row/column is cropped.
        self.width, self.height = width - width % 2, height - height % 2
        if self.width < 2 or self.height < 2:
            raise InvalidInput(f"cannot encode a {width}x{height} video", code="bad_frame")
        self.codec = available_codec()
        rate = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(30)
        self._container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._stream: av.VideoStream = self._container.add_stream(self.codec, rate=rate)  # type: ignore[assignment]
        self._stream.width = self.width
        self._stream.height = self.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.thread_count = max(1, threads)
        if self.codec == "libx264":
            self._stream.options = {"preset": "veryfast", "crf": str(DEFAULT_CRF if crf is None else crf)}
        else:
            self._stream.bit_rate = 4_000_000
        self.frames = 0

    def write(self, image_bgr: np.ndarray) -> None:
        if image_bgr.shape[0] < self.height or image_bgr.shape[1] < self.width:
            raise InvalidInput(f"frame {image_bgr.shape} is smaller than the video {self.width}x{self.height}")
        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(image_bgr[: self.height, : self.width]), format="bgr24"
        )
        frame.pts = self.frames
        frame.time_base = self._stream.codec_context.time_base or Fraction(1, 30)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None  # type: ignore[assignment]

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
