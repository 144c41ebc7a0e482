"""The Analyzer: models on one executor thread, sessions feeding it frames, FrameResults out.

Per batch of frames (from any sessions): detect each frame -> track -> crop each face with the
training geometry (rotated by the eye-line roll) -> ONE batched parser forward for all faces
(in chunks of ``max_batch``) -> per-track mask smoothing -> paste back -> class areas and the
frame label map -> deepfake factors (batched) and per-track evidence -> FrameResult.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from identix_stream.config import DEEPFAKE_INTERVAL_S, LIVE_DEEPFAKE_INTERVAL_S
from identix_stream.core.face_upright import shows_upright_face
from identix_stream.core.geometry import (
    SERVICE_CROP_SCALE,
    box_centre,
    box_side,
    crop_window,
    invert_affine,
    turn_point,
    turns_to_upright,
)
from identix_stream.core.types import DeepfakeEstimate, FaceResult, FrameResult
from identix_stream.errors import InvalidInput, ModelError, ShuttingDown
from identix_stream.inference.batcher import Batcher
from identix_stream.inference.detector import Detection, unturn_detection
from identix_stream.pipeline.orientation import CutFn, FaceView, face_box_at, group_turned, orient_faces
from identix_stream.pipeline.paste import compose, crop_face, paste_face
from identix_stream.pipeline.session import Session, SessionKind, TrackData

if TYPE_CHECKING:  # the deepfake module is imported lazily (optional at run time)
    from identix_stream.inference.deepfake_scorer import ScoredFace

log = logging.getLogger(__name__)

MIN_FACE_PX = 24  # faces whose face box is smaller than this (longer side) are reported, not parsed


def upright_source(image: np.ndarray, centre: tuple[float, float], roll: float
                   ) -> tuple[np.ndarray, tuple[float, float]]:
    """The frame turned by the quarter turns that bring the face nearest upright (a view: lossless),
    and the face centre in it. The fingerprint reads an axis-aligned square of the frame and was
    trained on upright faces; a sideways real photo read as it lies scored 0.84-0.92 "generated"."""
    turns = turns_to_upright(roll)
    if turns == 0:
        return image, centre
    h, w = image.shape[:2]
    return np.rot90(image, turns), turn_point(centre[0], centre[1], turns, w, h)


def _place_blend_point(scored: ScoredFace, crop_affine: np.ndarray) -> None:
    """Replace the blend note's crop pixel (``crop_point``) by the frame pixel it was cut from (``point``)."""
    note = scored.notes.get("blend")
    if note is None or "crop_point" not in note:
        return
    x, y = invert_affine(crop_affine) @ np.array([*note.pop("crop_point"), 1.0])
    note["point"] = [round(float(x), 1), round(float(y), 1)]


@dataclass
class _Job:
    session: Session
    image: np.ndarray
    frame_id: int
    timestamp: float
    submitted: float = field(default_factory=time.monotonic)


@dataclass
class _Face:
    job_index: int
    track_id: int
    track_state: str
    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]
    crop: np.ndarray
    affine: np.ndarray
    detector_box: tuple[float, float, float, float]
    roll: float
    alternates: tuple[Detection, ...] = ()  # the same face found in turned copies of a photo
    probs: torch.Tensor | None = None  # the crop's parse, when it was already parsed (Analyzer._detect_photo)


class Analyzer:
    """Owns the detector, the parser and the executor; see the module docstring."""

    def __init__(
        self,
        model_path: Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        torch_threads: int = 2,
        max_batch: int = 8,
        max_wait_ms: float = 4.0,
        queue_size: int = 32,
        min_face_px: float = MIN_FACE_PX,
        models_dir: Path | None = None,
        crop_scale: float = SERVICE_CROP_SCALE,
        deepfake_interval_s: float = DEEPFAKE_INTERVAL_S,
        photo_orientation_search: bool = True,
        live_deepfake_interval_s: float = LIVE_DEEPFAKE_INTERVAL_S,
    ) -> None:
        self.model_path = Path(model_path)
        self.models_dir = models_dir or self.model_path.parent
        self._device_name = device
        self._precision_name = precision
        self.torch_threads = torch_threads
        self.max_batch = max_batch
        self.min_face_px = min_face_px
        self.crop_scale = crop_scale
        self.deepfake_interval_s = deepfake_interval_s
        self.live_deepfake_interval_s = live_deepfake_interval_s
        self.photo_orientation_search = photo_orientation_search
        self.batcher: Batcher[_Job, FrameResult] = Batcher(
            self._process, max_batch=max_batch, max_wait_s=max_wait_ms / 1000.0, queue_size=queue_size
        )
        self.detector: Any = None
        self.runtime: Any = None
        self.scorer: Any = None
        self._fusion: Any = None
        self._ready = False
        self.face_batch_sizes: dict[int, int] = {}
        self.deepfake_scored = 0  # faces whose image factors were computed (not reused)
        self.sessions: dict[int, Session] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> Analyzer:
        return cls(
            Path(settings.model_path),
            device=getattr(settings, "device", "auto"),
            precision=getattr(settings, "precision", "auto"),
            torch_threads=int(getattr(settings, "torch_threads", 2)),
            max_batch=int(getattr(settings, "max_batch", 8)),
            max_wait_ms=float(getattr(settings, "max_wait_ms", 4)),
            queue_size=int(getattr(settings, "queue_size", 32)),
            deepfake_interval_s=float(getattr(settings, "deepfake_interval_s", DEEPFAKE_INTERVAL_S)),
            live_deepfake_interval_s=float(getattr(settings, "live_deepfake_interval_s", LIVE_DEEPFAKE_INTERVAL_S)),
            photo_orientation_search=bool(getattr(settings, "photo_orientation_search", True)),
        )

    # ------------------------------------------------------------------ lifecycle
    @property
    def ready(self) -> bool:
        return self._ready and self.batcher.running

    @property
    def device(self) -> str:
        return str(self.runtime.device) if self.runtime is not None else "none"

    @property
    def precision(self) -> str:
        return str(self.runtime.precision) if self.runtime is not None else "none"

    async def start(self) -> None:
        """Load the models on the executor thread, choose the precision and warm up."""
        if self._ready:
            return
        self.batcher.start()
        try:
            await self.batcher.call(self._load)
        except BaseException:
            await self.batcher.stop()
            raise
        self._ready = True
        log.info("analyzer ready on %s (%s)", self.device, self.precision)

    async def stop(self) -> None:
        self._ready = False
        await self.batcher.stop()
        if self.detector is not None:
            self.detector.close()
            self.detector = None

    def _load(self) -> None:
        import cv2

        from identix_stream.inference.detector import FaceDetector
        from identix_stream.inference.parser_runtime import ParserRuntime

        torch.set_num_threads(max(1, self.torch_threads))
        cv2.setNumThreads(1)
        self.detector = FaceDetector()
        self.runtime = ParserRuntime.load(self.model_path, self._device_name, self._precision_name)
        if self._precision_name == "auto":
            self.runtime.choose_precision()
        self._load_deepfake()
        # warm-up: the whole per-frame path once, and the parser at every chunk size in use
        frame = np.zeros((480, 640, 3), np.uint8)
        self.detector.detect(frame)
        size = self.runtime.input_size
        for n in sorted({1, self.max_batch}):
            self.runtime.parse([np.zeros((size, size, 3), np.uint8)] * n)

    def _load_deepfake(self) -> None:
        """Use the deepfake modules (contract 4) when they are installed; otherwise report 'collecting'."""
        try:
            scorer_mod = importlib.import_module("identix_stream.inference.deepfake_scorer")
            self._fusion = importlib.import_module("identix_stream.core.deepfake_fusion")
        except ImportError:
            log.info("no deepfake modules yet: faces report deepfake state 'collecting'")
            return
        try:
            self.scorer = scorer_mod.DeepfakeScorer.load(self.models_dir, self.runtime.device)
        except Exception as exc:  # a missing/bad deepfake model must not take the parser down
            log.warning("deepfake scorer not loaded (%s): faces report 'collecting'", exc)
            self.scorer = None

    # ------------------------------------------------------------------ sessions
    def open_session(self, kind: SessionKind) -> Session:
        if not self._ready:
            raise ShuttingDown("the analyzer is not running (models not loaded)")
        session = Session(self, kind)
        self.sessions[session.id] = session
        return session

    def forget_session(self, session: Session) -> None:
        self.sessions.pop(session.id, None)

    async def submit_frame(self, session: Session, frame: np.ndarray, frame_id: int, timestamp: float) -> FrameResult:
        job = _Job(session, frame, frame_id, timestamp)
        key = session.id if session.kind == "live" else None
        return await self.batcher.submit(job, key=key, frame_id=frame_id)

    def stats(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "precision": self.precision,
            "frame_batches": self.batcher.stats.to_json(),
            "face_batch_sizes": {str(k): v for k, v in sorted(self.face_batch_sizes.items())},
            "deepfake_faces_scored": self.deepfake_scored,
            "sessions": len(self.sessions),
            "queue": self.batcher.pending(),
        }

    # ------------------------------------------------------------------ executor side
    def _process(self, jobs: list[_Job]) -> list[FrameResult | BaseException]:
        if self.detector is None or self.runtime is None:
            raise ModelError("models are not loaded")
        t_start = time.monotonic()
        spec = self.runtime.spec
        size = self.runtime.input_size
        results: list[FrameResult | BaseException | None] = [None] * len(jobs)
        faces: list[_Face] = []
        too_small = [False] * len(jobs)
        detect_ms = [0.0] * len(jobs)
        for i, job in enumerate(jobs):
            try:
                t0 = time.perf_counter()
                # single images are also searched in tiles (small faces) and turned; streams only
                # in tiles when big
                parsed: list[tuple[np.ndarray, torch.Tensor] | None]
                if job.session.kind == "image" and self.photo_orientation_search:
                    dets, alternates, parsed = self._detect_photo(job.image)
                elif job.session.kind == "image":
                    dets = self.detector.detect(job.image, tile=True)
                    alternates, parsed = [()] * len(dets), [None] * len(dets)
                else:
                    dets = self._detect_stream(job)
                    alternates, parsed = [()] * len(dets), [None] * len(dets)
                detect_ms[i] = (time.perf_counter() - t0) * 1000
                boxes = [d.face_box() for d in dets]
                keep = [j for j, b in enumerate(boxes) if max(b[2] - b[0], b[3] - b[1]) >= self.min_face_px]
                too_small[i] = bool(dets) and not keep
                tracks = job.session.tracker.update([boxes[j] for j in keep])
                for j, track in zip(keep, tracks, strict=True):
                    d = dets[j]
                    window, _ = job.session.window_for(
                        track.track_id, boxes[j], d.roll_deg, self.crop_scale, spec.crop_shift_y
                    )
                    crop, m = crop_face(job.image, window, size)
                    done = parsed[j]
                    probs = done[1] if done is not None and np.array_equal(done[0], crop) else None
                    faces.append(_Face(i, track.track_id, track.state, boxes[j], d.score, d.keypoints, crop, m,
                                       d.box, d.roll_deg, alternates[j], probs))
            except InvalidInput as exc:
                results[i] = exc
        # one parser pass for all faces of all frames, in chunks of max_batch
        t0 = time.perf_counter()
        unparsed = [k for k, f in enumerate(faces) if f.probs is None]
        fresh = dict(zip(unparsed, self._parse_crops([faces[k].crop for k in unparsed]), strict=True))
        probs_list = [fresh[k] if f.probs is None else f.probs for k, f in enumerate(faces)]
        self._orient_photo_faces(jobs, faces, probs_list)
        self._probe_stream_orientation(jobs, faces, probs_list)
        parse_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        crop_labels: list[np.ndarray] = []
        confidences: list[np.ndarray] = []
        # single images get frame-resolution labels from interpolated probabilities (quality over
        # latency); streams paste the crop labels (cheap, and temporal smoothing hides the steps)
        crop_probs: list[np.ndarray | None] = []
        for f, probs in zip(faces, probs_list, strict=True):
            sm = jobs[f.job_index].session.smooth_probs(f.track_id, probs)
            top = sm.max(0)
            crop_labels.append(top.indices.to(dtype=torch.uint8).numpy())
            confidences.append((1.0 - sm[0]).numpy().astype(np.float32, copy=False))
            crop_probs.append(sm.numpy() if jobs[f.job_index].session.kind == "image" else None)
        post_ms = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        factors = self._deepfake_factors(jobs, faces, crop_labels)
        deepfake_ms = (time.perf_counter() - t0) * 1000
        for i, job in enumerate(jobs):
            if results[i] is not None:
                continue
            idx = [k for k, f in enumerate(faces) if f.job_index == i]
            h, w = job.image.shape[:2]
            t0 = time.perf_counter()
            pasted = [paste_face(crop_labels[k], confidences[k], faces[k].affine, w, h, crop_probs[k]) for k in idx]
            label_map, areas = compose(pasted, w, h)
            paste_ms = (time.perf_counter() - t0) * 1000
            face_results = []
            for k, area in zip(idx, areas, strict=True):
                f = faces[k]
                estimate = self._estimate(job, f, factors[k], crop_labels[k])
                job.session.record(f.track_id, job.timestamp, estimate)
                face_results.append(FaceResult(
                    track_id=f.track_id, box=tuple(round(v, 1) for v in f.box),  # type: ignore[arg-type]
                    score=round(f.score, 4), class_areas=area, deepfake=estimate,
                    track_state=f.track_state,  # type: ignore[arg-type]
                    landmarks=tuple((round(x, 1), round(y, 1)) for x, y in f.landmarks),
                ))
            job.session.forget_gone_tracks()
            job.session.frames_done += 1
            status = "ok" if face_results else ("face_too_small" if too_small[i] else "no_face")
            total = (time.monotonic() - job.submitted) * 1000
            results[i] = FrameResult(
                frame_id=job.frame_id, width=w, height=h, status=status,  # type: ignore[arg-type]
                faces=tuple(face_results), label_map=label_map, timestamp=job.timestamp,
                timing_ms={
                    "queue": round((t_start - job.submitted) * 1000, 2),
                    "detect": round(detect_ms[i], 2),
                    "parse": round(parse_ms, 2),
                    "post": round(post_ms + paste_ms, 2),
                    "deepfake": round(deepfake_ms, 2),
                    "total": round(total, 2),
                    "batch_frames": float(len(jobs)),
                    "batch_faces": float(len(faces)),
                },
            )
        return [r if r is not None else ModelError("frame produced no result") for r in results]

    def _parse_crops(self, crops: list[np.ndarray]) -> list[torch.Tensor]:
        """Class probabilities per crop, in chunks of ``max_batch``."""
        if self.runtime is None:
            raise ModelError("models are not loaded")
        out: list[torch.Tensor] = []
        for k in range(0, len(crops), self.max_batch):
            chunk = crops[k : k + self.max_batch]
            self.face_batch_sizes[len(chunk)] = self.face_batch_sizes.get(len(chunk), 0) + 1
            out.extend(self.runtime.parse(chunk).unbind(0))
        return out

    def _detect_stream(self, job: _Job) -> list[Detection]:
        """Faces of a stream frame, detected in the frame turned by the stream's decided quarter turns
        (``core/face_upright.py: StreamOrientation``) and mapped back onto it."""
        if self.detector is None:
            raise ModelError("models are not loaded")
        turns = job.session.orientation.turns
        if not turns:
            return self.detector.detect(job.image, tile=None)
        h, w = job.image.shape[:2]
        turned = np.ascontiguousarray(np.rot90(job.image, turns))
        return [unturn_detection(d, turns, w, h) for d in self.detector.detect(turned, tile=None)]

    def _detect_photo(self, image: np.ndarray) -> tuple[
            list[Detection], list[tuple[Detection, ...]], list[tuple[np.ndarray, torch.Tensor] | None]]:
        """Faces of a single image, searched upright and turned (pipeline/orientation.py), with their
        alternates and, for a face only the turned copies found, its crop and the crop's parse: such a
        face is kept only if that crop parses as an upright face (turning the photo gives the detector
        three more chances at a false alarm), and the analyzer reuses the parse when it cuts the same
        crop (a photo's crop window is not smoothed) instead of parsing it again."""
        if self.detector is None or self.runtime is None:
            raise ModelError("models are not loaded")
        dets: list[Detection] = []
        alternates: list[tuple[Detection, ...]] = []
        parsed: list[tuple[np.ndarray, torch.Tensor] | None] = []
        for primary, others, upright in group_turned(self.detector.detect_turned(image, tile=True)):
            done = None
            if not upright:
                box = primary.face_box()
                window = crop_window(box, self.crop_scale, self.runtime.spec.crop_shift_y, primary.roll_deg)
                crop, _ = crop_face(image, window, self.runtime.input_size)
                done = crop, self._parse_crops([crop])[0]
                if not shows_upright_face(done[1].argmax(0).to(torch.uint8).numpy()):
                    continue
            dets.append(primary)
            alternates.append(others)
            parsed.append(done)
        return dets, alternates, parsed

    def _cutters(self, jobs: list[_Job], faces: list[_Face], idx: list[int]) -> list[CutFn]:
        """For each face in ``idx``: cut its crop at any roll (with a face box found for that roll)."""
        if self.runtime is None:
            raise ModelError("models are not loaded")
        size, shift_y = self.runtime.input_size, self.runtime.spec.crop_shift_y
        detector = self.detector

        def detect(patch: np.ndarray) -> list[Detection]:
            return detector.detect(patch, tile=False) if detector is not None else []

        def cutter(f: _Face) -> CutFn:
            image = jobs[f.job_index].image

            def cut(roll: float, box: tuple[float, float, float, float] | None
                    ) -> tuple[tuple[float, float, float, float], np.ndarray, np.ndarray]:
                if box is None:
                    box = face_box_at(image, detect, f.detector_box, f.roll, roll)
                crop, m = crop_face(image, crop_window(box, self.crop_scale, shift_y, roll), size)
                return box, crop, m

            return cut

        return [cutter(faces[k]) for k in idx]

    def _orient_photo_faces(self, jobs: list[_Job], faces: list[_Face], probs_list: list[torch.Tensor]) -> None:
        """Re-cut every face of single images at the roll its parse shows upright (pipeline/orientation.py),
        in place."""
        idx = [k for k, f in enumerate(faces) if jobs[f.job_index].session.kind == "image"]
        if not idx or self.runtime is None or not self.photo_orientation_search:
            return
        first = [FaceView.parsed(faces[k].roll, faces[k].box, faces[k].crop, faces[k].affine, probs_list[k])
                 for k in idx]
        alternates = [[(d.roll_deg, d.face_box()) for d in faces[k].alternates] for k in idx]
        views = orient_faces(first, self._cutters(jobs, faces, idx), self._parse_crops, alternates)
        for k, view in zip(idx, views, strict=True):
            f = faces[k]
            f.roll, f.box, f.crop, f.affine = view.roll, view.box, view.crop, view.affine
            probs_list[k] = view.probs

    def _probe_stream_orientation(self, jobs: list[_Job], faces: list[_Face], probs_list: list[torch.Tensor]
                                  ) -> None:
        """Run the photo orientation search on the faces of streams whose turn is not decided yet (their
        first few faces, the largest first, no more than the decision still needs: a crowded first frame
        must not stall the stream; ``core/face_upright.py: StreamOrientation``); this frame keeps its
        own crops."""
        if self.runtime is None or not self.photo_orientation_search:
            return
        idx: list[int] = []
        for i, job in enumerate(jobs):
            needed = job.session.orientation.faces_needed if job.session.kind != "image" else 0
            if needed:  # only a stream's first frames: decided streams skip this
                mine = [k for k, f in enumerate(faces) if f.job_index == i]
                idx += sorted(mine, key=lambda k: -box_side(faces[k].box))[:needed]
        if not idx:
            return
        first = [FaceView.parsed(faces[k].roll, faces[k].box, faces[k].crop, faces[k].affine, probs_list[k])
                 for k in idx]
        views = orient_faces(first, self._cutters(jobs, faces, idx), self._parse_crops, [[] for _ in idx])
        for k, view in zip(idx, views, strict=True):
            jobs[faces[k].job_index].session.observe_orientation(view.roll)

    def _deepfake_factors(self, jobs: list[_Job], faces: list[_Face], crop_labels: list[np.ndarray]
                          ) -> list[ScoredFace | None]:
        """Image factors (and what they saw) per face. In streams a track's factors are refreshed at most
        every ``deepfake_interval_s`` (videos) or ``live_deepfake_interval_s`` (live) of stream time and
        reused in between: the running confidence counts at most EVIDENCE_PER_S evidence units per second
        anyway, and at 0.1 s scoring took ~20% of a loaded 4-stream batch's time (py-spy, session 20)."""
        out: list[ScoredFace | None] = [None] * len(faces)
        if self.scorer is None or not faces:
            return out
        fresh_for = {"live": self.live_deepfake_interval_s - 1e-3,  # 1 ms slack: frame times are floats
                     "video": self.deepfake_interval_s - 1e-3}
        tracks: dict[int, TrackData] = {}  # face index -> track state of stream faces
        todo: list[int] = []
        for k, f in enumerate(faces):
            job = jobs[f.job_index]
            if job.session.kind != "image":
                data = tracks[k] = job.session.track_data(f.track_id)
                if data.factors_ts is not None and 0.0 <= job.timestamp - data.factors_ts < fresh_for[job.session.kind]:
                    out[k] = data.factors
                    continue
            todo.append(k)
        if not todo:
            return out
        try:
            sources = [upright_source(jobs[faces[k].job_index].image, box_centre(faces[k].box), faces[k].roll)
                       for k in todo]
            stills = [jobs[faces[k].job_index].session.kind == "image" for k in todo]
            scored = self.scorer.score_faces([faces[k].crop for k in todo], [crop_labels[k] for k in todo], sources,
                                             stills)
        except Exception:
            log.exception("deepfake scorer failed on a batch of %d faces", len(todo))
            return out
        self.deepfake_scored += len(todo)
        for k, face in zip(todo, scored, strict=True):
            _place_blend_point(face, faces[k].affine)
            out[k] = face
            if k in tracks:
                tracks[k].factors, tracks[k].factors_ts = face, jobs[faces[k].job_index].timestamp
        return out

    def _estimate(self, job: _Job, face: _Face, scored: ScoredFace | None,
                  crop_labels: np.ndarray) -> DeepfakeEstimate:
        if scored is None or self._fusion is None:
            return DeepfakeEstimate()
        try:
            if job.session.kind == "image":
                est: DeepfakeEstimate = self._fusion.single_image_estimate(scored.factors, box_side(face.box),
                                                                           scored.notes)
                return est
            data = job.session.track_data(face.track_id)
            if data.evidence is None:
                data.evidence = self._fusion.TrackEvidence()
            est = data.evidence.update(scored.factors, crop_labels, face.box, job.timestamp, scored.notes)
            return est
        except Exception:
            log.exception("deepfake fusion failed for track %d", face.track_id)
            return DeepfakeEstimate()
