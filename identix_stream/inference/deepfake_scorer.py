"""Per-frame deepfake factors for batches of parser crops (runs on the executor thread).

Factors, each a calibrated 0-1 probability of "fake" (see docs/deepfake.md):
- ``blend``: the self-blended-image CNN (face-swap seams), ``models/deepfake_sbi.pt``;
- ``gan_fingerprint``: logistic head on spectral/co-occurrence features (fully synthetic faces),
  ``models/deepfake_spectral.json``;
- ``boundary``: logistic head on noise/colour of the face vs its surroundings,
  ``models/deepfake_boundary.json`` (absent from a frame when the parse has too little face).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from identix_stream.core import deepfake_notes as notes
from identix_stream.core.face_upright import looks_upright
from identix_stream.core.logistic import Logistic, sigmoid
from identix_stream.errors import InvalidInput, ModelError
from identix_stream.inference.deepfake_features import (
    FP_SIZE,
    boundary_features,
    fingerprint_features,
    native_square,
    native_squares,
    reads_natively,
    reduced_square,
)
from identix_stream.inference.deepfake_nets import (
    SBI_INPUT,
    SBINet,
    equalizes_input,
    input_size,
    load_sbi,
    resize_for_sbi,
    sbi_input,
)

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)

SBI_FILE = "deepfake_sbi.pt"
SPECTRAL_FILE = "deepfake_spectral.json"
BOUNDARY_FILE = "deepfake_boundary.json"
CROP_SIZE = 256
# A photo's face that reads real at its own size but generated once the photo is shrunk by one of these
# factors may be an enlarged GAN image: bicubic enlargement smooths the generator's traces into
# something the fingerprint calls real (gan_vs_real_val enlarged x1.5 or x2: 34-35 of its 50 StyleGAN2
# faces ended likely_real), and shrinking brings them back within the head's reach (it was trained on
# faces rescaled 0.75-1.3x). The reading then depends on an unknown resize, so it is left out.
ENLARGEMENTS = (1.5, 2.0)
IMAGE_FACTORS = ("blend", "gan_fingerprint", "boundary")


@dataclass(frozen=True)
class ScoredFace:
    """One crop's factors (0-1, absent when not read) and what each saw (``core/deepfake_notes.py``;
    a note's ``crop_point`` is in the 256-px crop, the analyzer maps it to the frame)."""

    factors: dict[str, float] = field(default_factory=dict)
    notes: dict[str, notes.Note] = field(default_factory=dict)


def _blend_seen(p: float, point: np.ndarray, labels: np.ndarray, half: int) -> notes.Note:
    """The blend note, with the parse region of the map cell around ``point`` and the point itself
    (crop pixels, ``crop_point``)."""
    x, y = int(point[0]), int(point[1])
    region = notes.cell_region(labels[max(0, y - half):y + half, max(0, x - half):x + half])
    return {**notes.blend_note(p, region), "crop_point": [float(point[0]), float(point[1])]}


def _load_head(path: Path, fmt: str, n_features: int) -> Logistic:
    if not path.is_file():
        raise ModelError(f"deepfake model file not found: {path}")
    try:
        blob: dict[str, Any] = json.loads(path.read_text())
        if blob.get("format") != fmt:
            raise ModelError(f"{path} is not an {fmt} model file")
        head = Logistic.from_json(blob)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot read deepfake model {path}: {exc}") from exc
    if head.weights.shape != (n_features,):
        raise ModelError(f"{path}: expected {n_features} weights, found {head.weights.shape}")
    return head


class DeepfakeScorer:
    """The frame-level deepfake models; ``score`` maps parser crops (+ their labels) to factors."""

    def __init__(self, sbi: SBINet, spectral: Logistic, boundary: Logistic, device: torch.device,
                 sbi_equalize: bool = False, sbi_size: int = SBI_INPUT) -> None:
        self.sbi = sbi.to(device)
        self.sbi_equalize = sbi_equalize
        self.sbi_size = sbi_size
        self.spectral = spectral
        self.boundary = boundary
        self.device = device

    @classmethod
    def load(cls, models_dir: Path, device: str | torch.device = "cpu") -> DeepfakeScorer:
        models_dir = Path(models_dir)
        dev = torch.device(device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
        sbi, sbi_meta = load_sbi(models_dir / SBI_FILE)
        spectral = _load_head(models_dir / SPECTRAL_FILE, "identix-spectral-v1", 350)
        boundary = _load_head(models_dir / BOUNDARY_FILE, "identix-boundary-v1", 5)
        return cls(sbi, spectral, boundary, dev, sbi_equalize=equalizes_input(sbi_meta), sbi_size=input_size(sbi_meta))

    @torch.inference_mode()
    def _blend(self, crops_bgr: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
        """Per crop the blend probability and the (x, y) crop pixel where its logit map peaks, and half
        the side of a map cell in crop pixels."""
        small = resize_for_sbi(crops_bgr, self.sbi_size)
        maps = self.sbi.logit_map(sbi_input(small, self.sbi_equalize).to(self.device)).float().cpu().numpy()
        logits = maps.mean(axis=(1, 2))
        n, gh, gw = maps.shape
        peak = maps.reshape(n, -1).argmax(axis=1)
        rows, cols = np.divmod(peak, gw)
        points = np.stack([(cols + 0.5) * CROP_SIZE / gw, (rows + 0.5) * CROP_SIZE / gh], axis=1)
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -40, 40))), points, CROP_SIZE / (2 * gw)

    def score(self, crops_bgr: list[np.ndarray], crop_labels: list[np.ndarray],
              sources: Sequence[tuple[np.ndarray, tuple[float, float]]] | None = None,
              stills: Sequence[bool] | None = None) -> list[dict[str, float]]:
        """Per-crop factors (``score_faces`` without the notes)."""
        return [face.factors for face in self.score_faces(crops_bgr, crop_labels, sources, stills)]

    def score_faces(self, crops_bgr: list[np.ndarray], crop_labels: list[np.ndarray],
                    sources: Sequence[tuple[np.ndarray, tuple[float, float]]] | None = None,
                    stills: Sequence[bool] | None = None) -> list[ScoredFace]:
        """Per-crop factors and notes; crops are 256x256 BGR uint8, labels 256x256 uint8 class ids.

        ``sources``: per crop, the frame it was cut from and the face centre in it; the fingerprint
        then reads the face at the frame's own resolution (``native_square``; in a photo the mean over
        ``native_squares``, in a video frame one square: successive frames give the other readings).
        Without them it reads the crop's central square, which the crop has already resampled once. A
        face whose frame is smaller than that square gets no ``gan_fingerprint`` (``reads_natively``).
        ``stills``: per crop, whether it comes from a photo (not a video frame); a photo's face that
        reads real at its own size but generated once the photo is shrunk by one of ``ENLARGEMENTS``
        gets no ``gan_fingerprint`` either (``_enlargement_doubts``). A crop whose parse shows the face
        turned sideways or upside down (``looks_upright``) gets no factors at all: every model was trained
        on upright faces."""
        if len(crops_bgr) != len(crop_labels):
            raise InvalidInput(f"{len(crops_bgr)} crops but {len(crop_labels)} label maps")
        if sources is not None and len(sources) != len(crops_bgr):
            raise InvalidInput(f"{len(crops_bgr)} crops but {len(sources)} source frames")
        if stills is not None and (sources is None or len(stills) != len(crops_bgr)):
            raise InvalidInput(f"stills need one flag per source frame, got {len(stills)} for "
                               f"{0 if sources is None else len(sources)} sources")
        for c, lab in zip(crops_bgr, crop_labels, strict=True):
            if c.shape != (CROP_SIZE, CROP_SIZE, 3) or c.dtype != np.uint8:
                raise InvalidInput(f"deepfake crops must be uint8 (256, 256, 3), got {c.dtype} {c.shape}")
            if lab.shape != (CROP_SIZE, CROP_SIZE):
                raise InvalidInput(f"crop labels must be (256, 256), got {lab.shape}")
        if not crops_bgr:
            return []
        upright = [i for i, lab in enumerate(crop_labels) if looks_upright(lab)]
        blend: dict[int, tuple[float, np.ndarray]] = {}
        half = 0
        if upright:
            probs, points, half_cell = self._blend([crops_bgr[i] for i in upright])
            half = max(1, round(half_cell))
            blend = {i: (float(p), pt) for i, p, pt in zip(upright, probs.tolist(), points, strict=True)}
        readable = {i: [crops_bgr[i]] for i in upright} if sources is None else {
            i: native_squares(*sources[i]) if stills is not None and stills[i] else [native_square(*sources[i])]
            for i in upright if reads_natively(sources[i][0])}
        fingerprint = self._fingerprint_logits(readable)
        doubts: dict[int, float] = {}
        if sources is not None and stills is not None:
            reads_real = [i for i, z in fingerprint.items() if stills[i] and z < 0.0]
            doubts = self._enlargement_doubts({i: sources[i] for i in reads_real})
            for i in doubts:
                del fingerprint[i]
        out: list[ScoredFace] = []
        for i, (c, lab) in enumerate(zip(crops_bgr, crop_labels, strict=True)):
            if i not in blend:  # not upright: no factor can be read
                out.append(ScoredFace({}, notes.turned_notes(IMAGE_FACTORS)))
                continue
            p_blend, point = blend[i]
            factors = {"blend": p_blend}
            seen = {"blend": _blend_seen(p_blend, point, lab, half)}
            if i in fingerprint:
                factors["gan_fingerprint"] = float(sigmoid(fingerprint[i]))
                seen["gan_fingerprint"] = notes.fingerprint_note(factors["gan_fingerprint"], len(readable[i]), FP_SIZE)
            elif i in doubts:
                seen["gan_fingerprint"] = notes.fingerprint_enlarged(doubts[i])
            elif sources is not None:
                seen["gan_fingerprint"] = notes.fingerprint_small_frame(min(sources[i][0].shape[:2]), FP_SIZE)
            bf = boundary_features(c, lab)
            if bf is not None:
                factors["boundary"] = float(self.boundary.prob(bf))
                seen["boundary"] = notes.boundary_note(bf, self.boundary.parts(bf))
            else:
                seen["boundary"] = notes.boundary_unread()
            out.append(ScoredFace(factors, seen))
        return out

    def _fingerprint_logits(self, squares: Mapping[K, list[np.ndarray]]) -> dict[K, float]:
        """Per key (a face, or a face and a shrink factor), the fingerprint head's mean log-odds over its
        squares (one head call for all)."""
        flat = [(key, sq) for key, key_squares in squares.items() for sq in key_squares]
        if not flat:
            return {}
        logits = self.spectral.logit(np.stack([fingerprint_features(sq) for _, sq in flat]))
        sums: dict[K, list[float]] = {}
        for (key, _), z in zip(flat, logits.tolist(), strict=True):
            sums.setdefault(key, []).append(z)
        return {key: float(np.mean(zs)) for key, zs in sums.items()}

    def _enlargement_doubts(self, sources: dict[int, tuple[np.ndarray, tuple[float, float]]]) -> dict[int, float]:
        """The faces whose fingerprint reads generated once their frame is shrunk by an ENLARGEMENTS
        factor (where the shrunk frame still holds the square), with the smallest such factor: their
        own-size reading cannot be trusted."""
        shrunk = {(i, f): [sq] for i, (frame, centre) in sources.items() for f in ENLARGEMENTS
                  if (sq := reduced_square(frame, centre, f)) is not None}
        doubts: dict[int, float] = {}
        for (i, f), z in sorted(self._fingerprint_logits(shrunk).items(), key=lambda kv: -kv[0][1]):
            if z > 0.0:
                doubts[i] = f
        return doubts
