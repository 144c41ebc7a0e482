"""Video input: sniff the container from its first bytes, spool an upload to disk while a decoder
thread reads it, and decode frames with PyAV.

Streamable containers (Matroska/WebM, MPEG-TS, fragmented or "fast-start" MP4 whose index comes
first, Ogg, FLV) are decoded WHILE they upload: the decoder reads the spool file through
``SpoolFile.reader()``, a file-like object without ``seek`` whose ``read`` blocks until more bytes
arrive (PyAV then treats the input as a non-seekable stream). A classic MP4/MOV (index ``moov``
after the media data ``mdat``) or an AVI cannot be decoded before its end has arrived; it is
decoded from the finished spool file instead.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Final

import av
import numpy as np

from identix_stream.errors import InvalidInput
from identix_stream.media.images import sniff_image_type

log = logging.getLogger(__name__)

SNIFF_LIMIT: Final[int] = 1 << 20  # give up deciding streamability after this many bytes (then spool)
_MP4_FIRST_BOXES: Final[frozenset[bytes]] = frozenset(
    {b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"free", b"skip", b"wide", b"pdin", b"sidx", b"uuid"}
)


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    kind: str  # "matroska", "mp4", "mpegts", "ogg", "flv", "avi"
    streamable: bool  # True: decodable while the upload is still arriving


class UploadAborted(Exception):
    """Raised inside the decoder when the upload it reads was cancelled or failed."""


# ------------------------------------------------------------------------------------------ sniffing
def _not_a_video(what: str) -> InvalidInput:
    return InvalidInput(f"not a video: {what}", code="not_a_video", status=415)


def _mp4_layout(head: bytes) -> bool | None:
    """True when the MP4 index (moov/moof) precedes the media data, False when mdat comes first,
    None when the head is too short to tell."""
    pos = 0
    while pos + 8 <= len(head):
        size, box = struct.unpack(">I4s", head[pos : pos + 8])
        if box in (b"moov", b"moof"):
            return True
        if box == b"mdat":
            return False
        if size == 1:
            if pos + 16 > len(head):
                return None
            (size,) = struct.unpack(">Q", head[pos + 8 : pos + 16])
        elif size == 0:  # box extends to the end of the file: nothing after it
            return False
        if size < 8:
            raise InvalidInput(f"corrupt MP4: box {box!r} at byte {pos} has size {size}", code="corrupt_video")
        pos += size
    return None


def sniff_container(head: bytes, final: bool = False) -> ContainerInfo | None:
    """Decide the container from the first bytes of an upload.

    Returns None when more bytes are needed to decide (pass ``final=True`` once the whole file is
    there). Raises InvalidInput for empty files, images, audio-only formats and unknown bytes.
    """
    if not head:
        if final:
            raise InvalidInput("the file is empty (0 bytes)", code="empty_file")
        return None
    if len(head) < 12 and not final:
        return None
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return ContainerInfo("matroska", True)
    if head[0] == 0x47:  # MPEG-TS: a sync byte every 188 bytes
        if len(head) < 377 and not final:
            return None
        if len(head) >= 377 and head[188] == 0x47 and head[376] == 0x47:
            return ContainerInfo("mpegts", True)
    if head[:4] == b"OggS":
        return ContainerInfo("ogg", True)
    if head[:3] == b"FLV":
        return ContainerInfo("flv", True)
    if head[:4] == b"RIFF":
        if head[8:12] == b"AVI ":
            return ContainerInfo("avi", False)
        if head[8:12] == b"WAVE":
            raise InvalidInput("the file is WAV audio and has no video", code="no_video_stream", status=422)
    if head[4:8] in _MP4_FIRST_BOXES:
        layout = _mp4_layout(head)
        if layout is None:
            if final or len(head) >= SNIFF_LIMIT:
                return ContainerInfo("mp4", False)
            return None
        return ContainerInfo("mp4", layout)
    image = sniff_image_type(head)
    if image is not None:
        raise _not_a_video(f"the file is a {image.upper()} image (send images to /api/images)")
    if head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0) or head[:4] == b"fLaC":
        raise InvalidInput("the file is audio (MP3/FLAC) and has no video", code="no_video_stream", status=422)
    raise InvalidInput(
        "unsupported file: not a video container we read (WebM/Matroska, MP4/MOV, MPEG-TS, Ogg, FLV, AVI)",
        code="unsupported_format",
        status=415,
    )


# ------------------------------------------------------------------------------------------ spooling
class SpoolFile:
    """An upload being written to a file on disk by one writer while readers follow it.

    ``append``/``finish``/``abort`` are called by the uploader (the event loop: small local file
    writes); ``reader()`` objects are read by decoder threads and block until bytes arrive.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: BinaryIO | None = open(path, "wb")  # noqa: SIM115 - closed in finish()/abort()
        self.size = 0
        self.finished = False
        self.aborted: str | None = None
        self._cond = threading.Condition()

    def append(self, data: bytes) -> None:
        if self._fh is None:
            raise UploadAborted("spool file is closed")
        self._fh.write(data)
        self._fh.flush()
        with self._cond:
            self.size += len(data)
            self._cond.notify_all()

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    def abort(self, reason: str) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        with self._cond:
            self.aborted = reason
            self._cond.notify_all()

    def wait_readable(self, offset: int, timeout: float | None = None) -> int:
        """Block until bytes past ``offset`` exist or the upload ended; returns the current size."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.size > offset or self.finished or self.aborted, timeout):
                return self.size
            if self.aborted:
                raise UploadAborted(self.aborted)
            return self.size

    def reader(self) -> SpoolReader:
        return SpoolReader(self)


class SpoolReader:
    """Non-seekable file-like view of a SpoolFile for PyAV: ``read`` blocks until data or the end."""

    def __init__(self, spool: SpoolFile) -> None:
        self._spool = spool
        self._fh = open(spool.path, "rb")  # noqa: SIM115 - closed by close()
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        size = self._spool.wait_readable(self._pos)
        if n is None or n < 0:
            n = size - self._pos
        n = min(n, size - self._pos)
        if n <= 0:
            return b""  # finished and everything read
        data = self._fh.read(n)
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._fh.close()


# ------------------------------------------------------------------------------------------ decoding
@dataclass(frozen=True, slots=True)
class VideoInfo:
    container: str
    codec: str
    width: int
    height: int
    fps: float | None
    duration_s: float | None
    frames: int | None  # container's frame count or an estimate from duration x fps

    def to_json(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "fps": None if self.fps is None else round(self.fps, 3),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "frames": self.frames,
        }


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    index: int  # 0-based decode order
    timestamp: float  # seconds from the stream start
    image: np.ndarray | None  # BGR uint8; None for frames skipped by the stride


def _to_float(value: Fraction | int | float | None) -> float | None:
    return None if value is None else float(value)


class VideoReader:
    """Open a video (a path, or a SpoolReader for a streaming upload) and iterate its frames.

    Raises InvalidInput: corrupt_video (cannot be opened), no_video_stream (e.g. audio only, 422),
    video_too_large (413, more pixels per frame than allowed), no_frames.
    """

    def __init__(self, source: str | Path | Any, max_pixels: int) -> None:
        self._source = source
        try:
            self._container = av.open(str(source) if isinstance(source, Path) else source, mode="r")
        except UploadAborted:
            if isinstance(source, SpoolReader):
                source.close()
            raise
        except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
            if isinstance(source, SpoolReader):
                source.close()
            reason = getattr(exc, "strerror", None) or type(exc).__name__  # never the server's file path
            raise InvalidInput(f"the video cannot be opened: {reason}", code="corrupt_video") from exc
        try:
            streams = self._container.streams.video
            if not streams:
                kinds = sorted({s.type for s in self._container.streams}) or ["no"]
                raise InvalidInput(
                    f"the file has no video stream (it has {', '.join(kinds)} streams)",
                    code="no_video_stream",
                    status=422,
                )
            self._stream = streams[0]
            self._stream.thread_type = "AUTO"
            ctx = self._stream.codec_context
            width, height = int(ctx.width or 0), int(ctx.height or 0)
            if width * height > max_pixels:
                raise InvalidInput(
                    f"video frames of {width}x{height} exceed the limit of {max_pixels} pixels",
                    code="video_too_large",
                    status=413,
                )
            fps = _to_float(self._stream.average_rate or self._stream.guessed_rate)
            duration = None
            if self._stream.duration is not None and self._stream.time_base is not None:
                duration = float(self._stream.duration * self._stream.time_base)
            elif self._container.duration is not None:
                duration = self._container.duration / 1_000_000
            frames = int(self._stream.frames) or None
            if frames is None and duration and fps:
                frames = round(duration * fps)
            self.info = VideoInfo(
                container=str(self._container.format.name).split(",")[0],
                codec=str(ctx.name),
                width=width,
                height=height,
                fps=fps,
                duration_s=duration,
                frames=frames,
            )
        except BaseException:
            self.close()
            raise
        self.max_pixels = max_pixels
        self.error: InvalidInput | None = None  # set when decoding stopped early on damaged data

    def frames(self, stride: int = 1, cancel: threading.Event | None = None) -> Iterator[DecodedFrame]:
        """Every decoded frame in order; ``image`` is only converted for every ``stride``-th one.

        Damaged data after at least one good frame ends the iteration and sets ``self.error``
        (the frames before it stand); damaged data before any frame raises InvalidInput.
        """
        if stride < 1:
            raise InvalidInput(f"stride must be >= 1, got {stride}", code="bad_stride")
        index = 0
        fps = self.info.fps or 30.0
        try:
            for frame in self._container.decode(self._stream):
                if cancel is not None and cancel.is_set():
                    raise UploadAborted("cancelled")
                ts = frame.time if frame.time is not None else index / fps
                image = None
                if index % stride == 0:
                    if frame.width * frame.height > self.max_pixels:
                        raise InvalidInput(
                            f"video frame {index} of {frame.width}x{frame.height} exceeds the pixel limit",
                            code="video_too_large",
                            status=413,
                        )
                    image = frame.to_ndarray(format="bgr24")
                    turns = round(frame.rotation / 90) % 4  # phone videos: display matrix, as ffmpeg autorotates
                    if turns:
                        image = np.ascontiguousarray(np.rot90(image, turns))
                yield DecodedFrame(index, float(ts), image)
                index += 1
        except av.FFmpegError as exc:
            if index == 0:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                raise InvalidInput(f"the video data cannot be decoded: {reason}", code="corrupt_video") from exc
            log.info("decoding stopped after %d frames: %s", index, exc)
            self.error = InvalidInput(
                f"the video is damaged after frame {index}: {getattr(exc, 'strerror', None) or exc}",
                code="truncated_video",
            )
        if index == 0:
            raise InvalidInput("the video has no decodable frames", code="no_frames")

    def close(self) -> None:
        self._container.close()
        if isinstance(self._source, SpoolReader):
            self._source.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_file(path: Path) -> ContainerInfo:
    """Sniff a file already on disk (CLI)."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_LIMIT)
    info = sniff_container(head, final=len(head) < SNIFF_LIMIT or os.path.getsize(path) <= SNIFF_LIMIT)
    return info if info is not None else ContainerInfo("mp4", False)
