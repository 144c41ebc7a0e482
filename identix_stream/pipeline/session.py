"""A Session is one stream (live camera, uploaded video, single image) with its own tracks.

``await session.analyze(frame, frame_id)`` queues the frame on the analyzer's executor and
returns its FrameResult. Per-stream state (tracker, smoothed crop windows and masks, deepfake
evidence) is only touched by the executor thread, which runs a stream's frames in order; the
loop side only reads the summary (under a lock).

Temporal smoothing: each track's crop window is an exponential average of its calibrated face
boxes (the parser then sees a steady crop) and its class probabilities are averaged in crop
coordinates; both reset when the face jumps. Single images are not smoothed.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from identix_stream.core.face_upright import StreamOrientation
from identix_stream.core.geometry import CropWindow, crop_window, wrap_deg
from identix_stream.core.tracking import FaceTracker
from identix_stream.core.types import DeepfakeEstimate
from identix_stream.errors import InvalidInput

if TYPE_CHECKING:
    import torch

    from identix_stream.pipeline.analyzer import Analyzer

SessionKind = Literal["live", "video", "image"]
SESSION_KINDS: tuple[str, ...] = ("live", "video", "image")

WINDOW_ALPHA = 0.6  # weight of the new window in the running average
MASK_ALPHA = 0.6  # weight of the new probabilities
RESET_SHIFT = 0.25  # a centre move above this fraction of the window side restarts the averages
RESET_SCALE = 0.25  # ... as does a side change above this fraction
TIMELINE_MAX = 20_000
_ids = itertools.count(1)
log = logging.getLogger(__name__)


@dataclass
class TrackData:
    """Executor-side state of one track."""

    window: CropWindow | None = None
    probs: torch.Tensor | None = None  # (11, S, S) running average in crop coordinates
    evidence: Any = None  # deepfake_fusion.TrackEvidence when the deepfake module is there
    frames_seen: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    factors: Any = None  # last ScoredFace (image factors and notes) of the deepfake scorer ...
    factors_ts: float | None = None  # ... and the stream time they were computed at
    last_estimate: DeepfakeEstimate = field(default_factory=DeepfakeEstimate)
    timeline: collections.deque[list[float | None]] = field(
        default_factory=lambda: collections.deque(maxlen=TIMELINE_MAX)
    )


def smooth_window(old: CropWindow | None, new: CropWindow) -> tuple[CropWindow, bool]:
    """Running average of crop windows; returns (window, reset) where reset means the face jumped."""
    if old is None:
        return new, True
    shift = math.hypot(new.cx - old.cx, new.cy - old.cy) / old.side
    scale = abs(new.side - old.side) / old.side
    if shift > RESET_SHIFT or scale > RESET_SCALE:
        return new, True
    a = WINDOW_ALPHA
    angle = old.angle_deg + a * wrap_deg(new.angle_deg - old.angle_deg)
    return CropWindow(
        old.cx + a * (new.cx - old.cx), old.cy + a * (new.cy - old.cy), old.side + a * (new.side - old.side), angle
    ), False


def validate_frame(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidInput(f"a frame must be a BGR uint8 array (H, W, 3), got {desc}", code="bad_frame")
    if image.shape[0] < 16 or image.shape[1] < 16:
        raise InvalidInput(f"frame of {image.shape[1]}x{image.shape[0]} px is too small", code="bad_frame")
    return np.ascontiguousarray(image)


class Session:
    """One stream's analysis state; create with ``Analyzer.open_session(kind)``."""

    def __init__(self, analyzer: Analyzer, kind: SessionKind) -> None:
        if kind not in SESSION_KINDS:
            raise InvalidInput(f"session kind must be one of {SESSION_KINDS}, got {kind!r}")
        self.id = next(_ids)
        self.kind: SessionKind = kind
        self.analyzer = analyzer
        self.opened = time.monotonic()
        self.closed = False
        self.frames_done = 0
        self.tracker = FaceTracker(confirm_hits=1 if kind == "image" else 2)
        self.tracks: dict[int, TrackData] = {}
        self.lock = threading.Lock()
        self.orientation = StreamOrientation()  # streams: the quarter turn that shows its faces upright

    @property
    def smooth(self) -> bool:
        return self.kind != "image"

    async def analyze(self, image_bgr: np.ndarray, frame_id: int, timestamp: float | None = None) -> Any:
        """Analyse one frame -> FrameResult. Raises Overloaded, and FrameDropped for superseded live frames."""
        if self.closed:
            raise InvalidInput(f"session {self.id} is closed", code="session_closed")
        frame = validate_frame(image_bgr)
        if timestamp is None:
            timestamp = time.monotonic() - self.opened
        return await self.analyzer.submit_frame(self, frame, int(frame_id), float(timestamp))

    # -------------------------------------------------------------- executor side
    def track_data(self, track_id: int) -> TrackData:
        with self.lock:  # summary() iterates the dict on the loop thread
            return self.tracks.setdefault(track_id, TrackData())

    def observe_orientation(self, upright_roll_deg: float) -> None:
        """Streams: count one face's upright roll (the orientation search's) towards the stream's turn.
        When that turns the stream, every track starts its crop window, mask average and deepfake
        evidence again: they were built on crops of badly framed turned faces."""
        if not self.smooth or not self.orientation.observe(upright_roll_deg):
            return
        log.info("stream session %d: faces are upright after %d quarter turns; detecting in the turned frame",
                 self.id, self.orientation.turns)
        with self.lock:
            for data in self.tracks.values():
                data.window = data.probs = data.evidence = data.factors = data.factors_ts = None

    def window_for(self, track_id: int, face_box: tuple[float, float, float, float], roll: float,
                   scale: float, shift_y: float) -> tuple[CropWindow, bool]:
        data = self.track_data(track_id)
        new = crop_window(face_box, scale=scale, shift_y=shift_y, angle_deg=roll)
        if not self.smooth:
            return new, True
        data.window, reset = smooth_window(data.window, new)
        if reset:
            data.probs = None
        return data.window, reset

    def smooth_probs(self, track_id: int, probs: torch.Tensor) -> torch.Tensor:
        if not self.smooth:
            return probs
        data = self.track_data(track_id)
        if data.probs is None or data.probs.shape != probs.shape:
            data.probs = probs.clone()
        else:
            data.probs.mul_(1.0 - MASK_ALPHA).add_(probs, alpha=MASK_ALPHA)
        return data.probs

    def record(self, track_id: int, timestamp: float, estimate: DeepfakeEstimate) -> None:
        with self.lock:
            data = self.tracks.setdefault(track_id, TrackData())
            data.frames_seen += 1
            if data.first_ts is None:
                data.first_ts = timestamp
            data.last_ts = timestamp
            data.last_estimate = estimate
            data.timeline.append([round(timestamp, 3), None if estimate.p_fake is None else round(estimate.p_fake, 4)])

    def forget_gone_tracks(self) -> None:
        """Drop the heavy per-track state of tracks the tracker has given up (summary data stays)."""
        live = {t.track_id for t in self.tracker.tracks}
        with self.lock:
            items = list(self.tracks.items())
        for tid, data in items:
            if tid not in live:
                data.probs = None
                data.window = None

    # -------------------------------------------------------------- loop side
    def summary(self) -> list[dict[str, Any]]:
        """Per track: frames seen, first/last timestamp, deepfake verdict and timeline."""
        out = []
        with self.lock:
            for tid, data in sorted(self.tracks.items()):
                if data.frames_seen == 0:
                    continue
                est = data.last_estimate
                factors = dict(est.factors)  # temporal factors: over the whole track already
                if data.evidence is not None:
                    factors.update({k: round(v, 4) for k, v in data.evidence.mean_factors().items()})
                out.append({
                    "track_id": tid,
                    "frames_seen": data.frames_seen,
                    "first_ts": data.first_ts,
                    "last_ts": data.last_ts,
                    # image factors averaged over the person's frames; what each factor saw at the last
                    # analysed frame (the temporal ones over the whole track)
                    "deepfake": {"p_fake": est.p_fake, "state": est.state, "verdict": verdict(est),
                                 "factors": factors, "observations": dict(est.observations)},
                    "timeline": [list(p) for p in data.timeline],
                })
        return out

    def close(self) -> None:
        """Refuse further frames and free per-track state."""
        self.closed = True
        self.analyzer.forget_session(self)
        with self.lock:
            for data in self.tracks.values():
                data.probs = None
                data.window = None
                data.evidence = None


def verdict(est: DeepfakeEstimate) -> str:
    return {
        "likely_real": "real",
        "likely_fake": "fake",
        "uncertain": "uncertain",
    }.get(est.state, "insufficient_evidence")
