"""Result types shared by the pipeline, the web layer and the CLI (pure numpy + stdlib)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

DeepfakeStateName = Literal["collecting", "likely_real", "likely_fake", "uncertain"]
FrameStatus = Literal["ok", "no_face", "face_too_small"]


@dataclass(frozen=True, slots=True)
class DeepfakeEstimate:
    """Per-track running deepfake evidence as reported with every frame."""

    p_fake: float | None = None  # running probability; None while collecting
    state: DeepfakeStateName = "collecting"
    frame_p_fake: float | None = None  # this frame's calibrated probability
    factors: dict[str, float | None] = field(default_factory=dict)  # each factor's 0-1 score
    frames: int = 0  # frames of evidence so far
    single_image: bool = False  # one-frame evidence: weaker, say so
    contributions: dict[str, float] = field(default_factory=dict)  # each factor's log-odds share
    # what each factor saw (core/deepfake_notes.py): {"text": ..., measurements}, also for an absent factor
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "p_fake": None if self.p_fake is None else round(self.p_fake, 4),
            "state": self.state,
            "frame_p_fake": None if self.frame_p_fake is None else round(self.frame_p_fake, 4),
            "factors": {k: (None if v is None else round(v, 4)) for k, v in self.factors.items()},
            "frames": self.frames,
            "single_image": self.single_image,
            "contributions": {k: round(v, 3) for k, v in self.contributions.items()},
            "observations": {k: dict(v) for k, v in self.observations.items()},
        }


@dataclass(frozen=True, slots=True)
class FaceResult:
    """One person in one frame, in frame pixel coordinates."""

    track_id: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    class_areas: dict[str, int]  # pixels per class name inside this face's parsed region
    deepfake: DeepfakeEstimate = field(default_factory=DeepfakeEstimate)
    track_state: Literal["tentative", "confirmed", "lost"] = "tentative"
    landmarks: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything the service reports for one frame."""

    frame_id: int
    width: int
    height: int
    status: FrameStatus
    faces: tuple[FaceResult, ...]
    label_map: np.ndarray  # (height, width) uint8 class ids in frame coordinates
    timing_ms: dict[str, float]
    timestamp: float | None = None  # seconds in the video / client timestamp

    def __post_init__(self) -> None:
        if self.label_map.shape != (self.height, self.width) or self.label_map.dtype != np.uint8:
            raise ValueError(
                f"label_map must be uint8 of shape {(self.height, self.width)}, "
                f"got {self.label_map.dtype} {self.label_map.shape}"
            )
