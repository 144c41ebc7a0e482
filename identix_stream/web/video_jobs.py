"""Video upload jobs (the web side of pipeline/video_analysis.py): an in-memory store with expiry,
one temp folder per job, a runner that analyses the video while it uploads and keeps every
progress message for reconnecting clients.

A job's life: ``waiting`` (created, no bytes yet) -> ``running`` (uploading and/or analysing)
-> ``done`` | ``failed`` | ``cancelled``. Its messages (the live wire schema of web/protocol.py:
``video``, ``result``, ``progress``, ``summary``, ``done``, ``annotated``, ``error``) are numbered
(``seq``) and kept until the job expires, so a client can reconnect and replay them.

Files live in ``<data_dir>/uploads/<job id>/`` (the spooled upload, the label maps, the annotated
MP4). They are deleted when a job fails or is cancelled (including a client that disconnects
mid-upload), when a finished job expires (``job_ttl_s`` after it finished) and at shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import logging
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from identix_stream.errors import Conflict, IdentixError, InvalidInput, NotFound, Overloaded, ShuttingDown
from identix_stream.media.annotate import FrameAnnotation, LabelStore, render_annotated_video
from identix_stream.media.video import (
    SNIFF_LIMIT,
    ContainerInfo,
    SpoolFile,
    UploadAborted,
    VideoInfo,
    VideoReader,
    sniff_container,
)
from identix_stream.pipeline.video_analysis import AnalyzedFrame, VideoDone, analyze_video
from identix_stream.web import protocol

log = logging.getLogger(__name__)

JobState = Literal["waiting", "running", "done", "failed", "cancelled"]
FINISHED: Final[frozenset[str]] = frozenset({"done", "failed", "cancelled"})
RESERVE_TTL_S: Final[float] = 120.0  # a job created without bytes expires if no upload starts by then
PROGRESS_INTERVAL_S: Final[float] = 0.5
SWEEP_INTERVAL_S: Final[float] = 10.0
REPLAY_LABEL_MAPS: Final[int] = 300  # results whose label map is kept for replays
UPLOADS_DIRNAME: Final[str] = "uploads"


class TooManyUploads(Overloaded):
    code = "too_many_uploads"
    status = 503


@dataclass(frozen=True, slots=True)
class JobOptions:
    stride: int = 1  # analyse every stride-th frame (the annotated video still has every frame)
    mask: protocol.MaskEncoding = "png"  # label map in each result message, or "none"
    mask_scale: float = 1.0
    annotate: bool = True  # render the annotated MP4 after the analysis

    def to_json(self) -> dict[str, Any]:
        return {"stride": self.stride, "mask": self.mask, "mask_scale": self.mask_scale, "annotate": self.annotate}


class VideoJob:
    """One uploaded video and everything known about its analysis."""

    def __init__(self, job_id: str, owner: str | None, directory: Path, options: JobOptions, max_bytes: int) -> None:
        self.id = job_id
        self.owner = owner
        self.client: str | None = None  # anonymous jobs: which browser created it (for listing only)
        self.dir = directory
        self.options = options
        self.max_bytes = max_bytes
        self.created = time.monotonic()
        self.created_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.finished_at: float | None = None
        self.state: JobState = "waiting"
        self.spool: SpoolFile | None = None
        self.bytes_received = 0
        self.upload_complete = False
        self.container: ContainerInfo | None = None
        self.info: VideoInfo | None = None
        self.frames_decoded = 0
        self.frames_analyzed = 0
        self.summary: list[dict[str, Any]] | None = None
        self.error: dict[str, str] | None = None
        self.warning: dict[str, str] | None = None
        self.annotated: Literal["disabled", "pending", "rendering", "ready", "failed"] = (
            "pending" if options.annotate else "disabled"
        )
        self.annotations: list[FrameAnnotation] = []
        self.labels: LabelStore | None = None
        self.messages: list[str] = []  # serialised protocol messages; index + 1 == seq
        self.results: list[dict[str, Any]] = []  # per analysed frame: faces etc. (no label map) for results.json
        self.task: asyncio.Task[None] | None = None
        self.render_task: asyncio.Task[None] | None = None
        self.render_cancel = threading.Event()
        self.exception: IdentixError | None = None  # why the job failed
        self._head = bytearray()
        self._container_known = asyncio.Event()
        self._container_error: IdentixError | None = None
        self._upload_done = asyncio.Event()
        self.probed = asyncio.Event()  # set once the first frame decoded, or the job failed
        self.finished = asyncio.Event()  # analysis and annotation over (any final state)
        self._changed = asyncio.Event()
        self._last_progress = 0.0
        self._with_labels: collections.deque[tuple[int, str]] = collections.deque()

    # ------------------------------------------------------------------ messages
    @property
    def active(self) -> bool:
        return self.state not in FINISHED or (self.render_task is not None and not self.render_task.done())

    def emit(self, message: dict[str, Any]) -> None:
        message["job_id"] = self.id
        message["seq"] = len(self.messages) + 1
        self.messages.append(protocol.dumps(message))
        if message.get("label_map") is not None:
            # Memory stays bounded on long videos: replays keep the label maps of the newest
            # REPLAY_LABEL_MAPS results only (older ones get label_map null; annotated.mp4 has them all).
            # The light copy is made now from the dict: cheaper than parsing the big string back later.
            self._with_labels.append((len(self.messages) - 1, protocol.dumps({**message, "label_map": None})))
            if len(self._with_labels) > REPLAY_LABEL_MAPS:
                i, light = self._with_labels.popleft()
                self.messages[i] = light
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self, after: int = 0) -> AsyncIterator[tuple[int, str]]:
        """Every message with seq > after, then new ones as they come, until the job is finished."""
        seq = after
        while True:
            while seq < len(self.messages):
                seq += 1
                yield seq, self.messages[seq - 1]
            if self.finished.is_set():
                return
            await self._changed.wait()

    def progress_json(self) -> dict[str, Any]:
        total = self.info.frames if self.info is not None else None
        fraction = None
        if self.state == "done":
            fraction = 1.0
        elif total:
            fraction = round(min(1.0, self.frames_decoded / total), 4)
        return {
            "bytes_received": self.bytes_received,
            "upload_complete": self.upload_complete,
            "frames_decoded": self.frames_decoded,
            "frames_analyzed": self.frames_analyzed,
            "frames_total": total,
            "fraction": fraction,
        }

    def emit_progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.emit(protocol.message("progress", **self.progress_json()))

    def status_json(self) -> dict[str, Any]:
        base = f"/api/videos/{self.id}"
        out: dict[str, Any] = {
            "job_id": self.id,
            "state": self.state,
            "created_at": self.created_at,
            "options": self.options.to_json(),
            "stride": self.options.stride,
            "container": None if self.container is None else self.container.kind,
            "streamed": None if self.container is None else self.container.streamable,
            "video": None if self.info is None else self.info.to_json(),
            "progress": self.progress_json(),
            "summary": self.summary,
            "error": self.error,
            "warning": self.warning,
            "annotated": self.annotated,
            "messages": len(self.messages),
            "urls": {
                "self": base,
                "upload": f"{base}/upload",
                "events": f"{base}/events",
                "results": f"{base}/results.json",
                "annotated": f"{base}/annotated.mp4",
            },
        }
        return out

    # ------------------------------------------------------------------ upload side
    def begin_upload(self) -> None:
        if self.state != "waiting" or self.spool is not None:
            raise Conflict(f"job {self.id} already has an upload (state {self.state})", code="already_uploaded")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.spool = SpoolFile(self.dir / "upload")
        self.state = "running"

    def add_bytes(self, data: bytes) -> None:
        if self.exception is not None:
            raise self.exception
        if self.spool is None or self.state in FINISHED:
            raise Conflict(f"job {self.id} is {self.state}; the upload was stopped", code="job_" + self.state)
        if self.bytes_received + len(data) > self.max_bytes:
            raise InvalidInput(
                f"upload exceeds the limit of {self.max_bytes} bytes", code="upload_too_large", status=413
            )
        self.spool.append(data)
        self.bytes_received += len(data)
        if not self._container_known.is_set():
            self._head.extend(data[: max(0, SNIFF_LIMIT - len(self._head))])
            self._sniff(final=False)
        self.emit_progress()

    def finish_upload(self) -> None:
        if self.spool is None:
            raise Conflict(f"job {self.id} has no upload", code="no_upload")
        if not self._container_known.is_set():
            self._sniff(final=True)
        self.spool.finish()
        self.upload_complete = True
        self._upload_done.set()
        self.emit_progress(force=True)

    def _sniff(self, final: bool) -> None:
        try:
            info = sniff_container(bytes(self._head), final=final)
        except IdentixError as exc:
            self._container_error = exc
            self._container_known.set()
            raise
        if info is not None:
            self.container = info
            self._head = bytearray()
            self._container_known.set()


class JobStore:
    """All video jobs of the process: bounded concurrency, expiry, temp folders, shutdown."""

    def __init__(
        self,
        data_dir: Path,
        *,
        ttl_s: float,
        max_active: int,
        max_upload_bytes: int,
        max_pixels: int,
        analyzer: Any,
    ) -> None:
        self.root = Path(data_dir) / UPLOADS_DIRNAME
        self.ttl_s = ttl_s
        self.max_active = max_active
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.analyzer = analyzer
        self.jobs: dict[str, VideoJob] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Remove folders a previous (crashed) process left behind and start the expiry sweeper."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="video-job-sweeper")

    async def close(self) -> None:
        self._closed = True
        tasks: list[asyncio.Task[Any]] = [] if self._sweeper is None else [self._sweeper]
        if self._sweeper is not None:
            self._sweeper.cancel()
        for job in list(self.jobs.values()):
            tasks.extend(t for t in (job.task, job.render_task) if t is not None)
            self.cancel(job, "server shutting down")
            self._drop(job)
        await asyncio.gather(*tasks, return_exceptions=True)
        shutil.rmtree(self.root, ignore_errors=True)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            await self.sweep()

    async def sweep(self, now: float | None = None) -> int:
        """Drop expired jobs (and their files); returns how many."""
        now = time.monotonic() if now is None else now
        expired = [job for job in self.jobs.values() if self._expired(job, now)]
        for job in expired:
            if job.state == "waiting":
                self.cancel(job, "no upload started in time")
            self._drop(job)
        return len(expired)

    def _expired(self, job: VideoJob, now: float) -> bool:
        if job.state == "waiting":
            return now - job.created > RESERVE_TTL_S
        return job.finished_at is not None and not job.active and now - job.finished_at > self.ttl_s

    def expires_in(self, job: VideoJob) -> float | None:
        if job.finished_at is None:
            return None
        return max(0.0, round(self.ttl_s - (time.monotonic() - job.finished_at), 1))

    def _drop(self, job: VideoJob) -> None:
        self.jobs.pop(job.id, None)
        shutil.rmtree(job.dir, ignore_errors=True)

    # ------------------------------------------------------------------ jobs
    def active_count(self) -> int:
        return sum(1 for job in self.jobs.values() if job.active)

    def create(self, owner: str | None, options: JobOptions) -> VideoJob:
        if self._closed:
            raise ShuttingDown("the server is shutting down")
        if self.analyzer is None or not getattr(self.analyzer, "ready", False):
            raise ShuttingDown("the analysis models are not loaded yet; retry shortly", code="models_loading")
        if self.active_count() >= self.max_active:
            raise TooManyUploads(
                f"{self.max_active} video uploads are already being analysed; retry when one finishes"
            )
        job_id = secrets.token_urlsafe(12)
        job = VideoJob(job_id, owner, self.root / job_id, options, self.max_upload_bytes)
        self.jobs[job_id] = job
        return job

    def get(self, job_id: str, owner: str | None) -> VideoJob:
        job = self.jobs.get(job_id)
        if job is None or (job.owner is not None and job.owner != owner):
            raise NotFound(f"no video job {job_id!r} (it may have expired)", code="job_not_found")
        return job

    def start_runner(self, job: VideoJob) -> None:
        job.task = asyncio.create_task(self._run(job), name=f"video-job-{job.id}")

    def cancel(self, job: VideoJob, reason: str) -> None:
        """Stop a job's upload, analysis and rendering now (synchronous, so it also works from a
        request being cancelled because its client went away); its files are deleted, its record
        stays until it expires."""
        rendering = job.render_task is not None and not job.render_task.done()
        if job.state in FINISHED and not rendering:
            return
        was_finished = job.state in FINISHED
        if not was_finished:
            job.state = "cancelled"
            job.error = {"code": "cancelled", "message": reason}
            job.exception = Conflict(f"job {job.id} was cancelled: {reason}", code="job_cancelled")
        if job.spool is not None:
            job.spool.abort(reason)
        job.render_cancel.set()
        for task in (job.task, job.render_task):
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        if not was_finished:
            job.emit(protocol.error_message("cancelled", reason))
        if job.annotated in ("pending", "rendering"):
            job.annotated = "failed" if was_finished else "disabled"
        self._finish(job)
        job.finished.set()
        job._changed.set()
        shutil.rmtree(job.dir, ignore_errors=True)

    def _finish(self, job: VideoJob) -> None:
        if job.finished_at is None:
            job.finished_at = time.monotonic()
        job.probed.set()
        if job.render_task is None or job.render_task.done() or job.state != "done":
            job.finished.set()
            job._changed.set()

    def _fail(self, job: VideoJob, exc: IdentixError) -> None:
        job.state = "failed"
        job.exception = exc
        job.error = {"code": exc.code, "message": exc.message, "status": str(exc.status)}
        if job.spool is not None:
            job.spool.abort(exc.message)
        if job.annotated in ("pending", "rendering"):
            job.annotated = "disabled"
        job.emit(protocol.error_message(exc.code, exc.message))
        self._finish(job)
        shutil.rmtree(job.dir, ignore_errors=True)

    def fail(self, job: VideoJob, exc: IdentixError) -> None:
        """Fail a job from outside its runner (e.g. the upload broke a limit)."""
        if job.state in FINISHED:
            return
        if job.task is not None and not job.task.done():
            job.task.cancel()
        self._fail(job, exc)

    async def _run(self, job: VideoJob) -> None:
        try:
            await job._container_known.wait()
            if job._container_error is not None or job.container is None or job.spool is None:
                return  # the upload side already failed the job
            spool = job.spool
            if job.container.streamable:
                def open_reader() -> VideoReader:
                    return VideoReader(spool.reader(), self.max_pixels)
            else:
                await job._upload_done.wait()  # classic MP4/AVI: the index is at the end

                def open_reader() -> VideoReader:
                    return VideoReader(spool.path, self.max_pixels)

            job.labels = LabelStore(job.dir / "labels.bin") if job.options.annotate else None
            config = protocol.LiveConfig(mask=job.options.mask, mask_scale=job.options.mask_scale)
            async for event in analyze_video(self.analyzer, open_reader, stride=job.options.stride):
                if isinstance(event, VideoInfo):
                    job.info = event
                    job.emit(protocol.message("video", video=event.to_json(), stride=job.options.stride,
                                              container=job.container.kind, streamed=job.container.streamable))
                    job.probed.set()
                elif isinstance(event, AnalyzedFrame):
                    self._record_frame(job, event, config)
                elif isinstance(event, VideoDone):
                    job.frames_decoded = event.frames_decoded
                    job.frames_analyzed = event.frames_analyzed
                    job.summary = event.summary
                    if event.warning is not None:
                        job.warning = {"code": event.warning.code, "message": event.warning.message}
            job.state = "done"
            job.emit_progress(force=True)
            job.emit(protocol.message(
                "summary", tracks=job.summary, stride=job.options.stride,
                frames_decoded=job.frames_decoded, frames_analyzed=job.frames_analyzed, warning=job.warning,
            ))
            job.emit(protocol.message("done", state="done", status=job.status_json()))
            if job.options.annotate:
                job.render_task = asyncio.create_task(self._render(job), name=f"video-render-{job.id}")
            self._finish(job)
        except asyncio.CancelledError:
            raise
        except UploadAborted:
            if job.state not in FINISHED:
                self._fail(job, InvalidInput("the upload was interrupted", code="upload_interrupted"))
        except IdentixError as exc:
            if job.state not in FINISHED:
                self._fail(job, exc)
        except Exception as exc:
            log.exception("video job %s failed", job.id)
            if job.state not in FINISHED:
                self._fail(job, IdentixError(f"analysis failed: {type(exc).__name__}", code="analysis_failed",
                                             status=500))

    def _record_frame(self, job: VideoJob, event: AnalyzedFrame, config: protocol.LiveConfig) -> None:
        result = event.result
        job.frames_decoded = event.frames_decoded
        job.frames_analyzed += 1
        msg = protocol.result_message(result, config)
        msg["frame"] = event.index
        job.emit(msg)
        job.results.append({k: v for k, v in msg.items() if k not in ("label_map", "v", "type", "job_id", "seq")})
        job.annotations.append(FrameAnnotation(event.index, result.faces))
        if job.labels is not None:
            encoded = msg.get("label_map")
            if encoded is not None and (encoded["width"], encoded["height"]) == (result.width, result.height):
                job.labels.add_png(event.index, base64.b64decode(encoded["data"]))  # the PNG made for the message
            else:
                job.labels.add(event.index, result.label_map)
        job.emit_progress()

    async def _render(self, job: VideoJob) -> None:
        if job.spool is None or job.info is None:
            return
        job.annotated = "rendering"
        try:
            await asyncio.to_thread(
                render_annotated_video,
                job.spool.path,
                job.dir / "annotated.mp4",
                list(job.annotations),
                job.labels,
                max_pixels=self.max_pixels,
                cancel=job.render_cancel,
            )
            job.annotated = "ready"
            job.emit(protocol.message("annotated", state="ready", url=f"/api/videos/{job.id}/annotated.mp4"))
        except asyncio.CancelledError:
            job.annotated = "failed"
            raise
        except Exception as exc:
            log.exception("annotated video of job %s failed", job.id)
            job.annotated = "failed"
            job.emit(protocol.message("annotated", state="failed", message=str(exc)))
        finally:
            job.finished.set()
            job._changed.set()
