"""Image and video uploads (docs/uploads.md).

Images: ``POST /api/images`` (alias ``/predict``) -> one JSON answer with the faces, the label
map PNG and the overlay PNG inline as base64 (``?output=overlay.png|labels.png`` returns the raw
PNG instead).

Videos: the body is written to disk as it arrives and decoded at the same time for streamable
containers. Results come as Server-Sent Events (``GET /api/videos/<job>/events``) in the live wire
schema. To see results before the upload ends, create the job first (``POST /api/videos/jobs``),
open its event stream, then send the bytes (``PUT /api/videos/<job>/upload``); ``POST /api/videos``
(alias ``/predict_video``) does create + upload in one request. ``/detect_deepfake`` takes either.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import math
from collections.abc import AsyncIterator
from typing import Any, Final

from quart import Blueprint, Response, current_app, jsonify, request, send_file
from quart.blueprints import BlueprintSetupState
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from identix_stream.config import Settings
from identix_stream.core.classes import CLASS_NAMES, PALETTE
from identix_stream.errors import IdentixError, InvalidInput, NotFound, Overloaded, ShuttingDown
from identix_stream.media.images import decode_image, encode_png, overlay, sniff_image_type
from identix_stream.web import protocol
from identix_stream.web.auth_guard import current_user, login_required
from identix_stream.web.csrf import CSRF_COOKIE
from identix_stream.web.video_jobs import FINISHED, JobOptions, JobStore, TooManyUploads, VideoJob

blueprint = Blueprint("uploads", __name__)

# Routes whose bodies may be as large as settings.max_upload_bytes (the app default is small).
UPLOAD_PATHS: Final[tuple[str, ...]] = ("/api/images", "/api/videos", "/predict", "/predict_video", "/detect_deepfake")
UPLOAD_SUFFIX: Final[str] = "/upload"
PROBE_TIMEOUT_S: Final[float] = 60.0  # after an upload, wait this long for the video to open before answering
ANNOTATED_WAIT_S: Final[float] = 300.0
MULTIPART_SLICE: Final[int] = 32 * 1024
MULTIPART_BUFFER: Final[int] = 256 * 1024
MULTIPART_FIELDS: Final[tuple[str, ...]] = ("video", "image", "file")
NO_FACE_MESSAGES: Final[dict[str, str]] = {
    "no_face": "no face found",
    "face_too_small": "faces were found but all are too small to analyse",
}


# ---------------------------------------------------------------------------------------------- setup
def _is_upload_path(method: str, path: str) -> bool:
    return method in ("POST", "PUT") and (
        path in UPLOAD_PATHS or (path.startswith("/api/videos/") and path.endswith(UPLOAD_SUFFIX))
    )


@blueprint.record_once
def _setup(state: BlueprintSetupState) -> None:
    """Raise the body limit for upload routes only. Quart fixes a request's limit when it creates the
    request object (before routing), so a request class is the one place to do it per route."""
    app: Any = state.app
    settings: Settings = app.config["IDENTIX_SETTINGS"]
    base: Any = app.request_class

    class UploadRequest(base):
        def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
            if _is_upload_path(method, path):
                kwargs["max_content_length"] = settings.max_upload_bytes
            super().__init__(method, scheme, path, *args, **kwargs)
            if _is_upload_path(method, path):
                self._max_content_length = settings.max_upload_bytes  # multipart parsing reads this one

    app.request_class = UploadRequest
    app.extensions["video_jobs"] = None
    app.extensions["image_slots"] = asyncio.Semaphore(max(2, 2 * settings.max_concurrent_uploads))


@blueprint.before_app_serving
async def _start_jobs() -> None:
    settings = _settings()
    store = JobStore(
        settings.data_dir,
        ttl_s=settings.job_ttl_s,
        max_active=settings.max_concurrent_uploads,
        max_upload_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        analyzer=current_app.extensions.get("analyzer"),
    )
    await store.start()
    current_app.extensions["video_jobs"] = store


@blueprint.after_app_serving
async def _stop_jobs() -> None:
    store = current_app.extensions.get("video_jobs")
    if store is not None:
        await store.close()


def _settings() -> Settings:
    value: Settings = current_app.config["IDENTIX_SETTINGS"]
    return value


def _store() -> JobStore:
    store = current_app.extensions.get("video_jobs")
    if store is None:
        raise ShuttingDown("video jobs are not available (server not serving)")
    return store


def _analyzer() -> Any:
    analyzer = current_app.extensions.get("analyzer")
    if analyzer is None or not getattr(analyzer, "ready", False):
        raise ShuttingDown("the analysis models are not loaded yet; retry shortly", code="models_loading")
    return analyzer


async def _owner() -> str | None:
    user = await current_user()
    return None if user is None else user.id


# ---------------------------------------------------------------------------------------------- bodies
async def _raw_chunks() -> AsyncIterator[bytes]:
    async for chunk in request.body:
        if chunk:
            yield chunk


async def _multipart_file_chunks() -> AsyncIterator[bytes]:
    """The bytes of the first file part of a multipart body, streamed (never held in memory)."""
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary:
        raise InvalidInput("multipart body without a boundary parameter", code="bad_multipart")
    # The decoder refuses to buffer more than max_form_memory_size at once, so it is fed in slices
    # and drained after each (a file part's data leaves the buffer as it is parsed).
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=MULTIPART_BUFFER)
    state = "before"  # before -> in_file -> after
    try:
        async for chunk in request.body:
            for start in range(0, len(chunk), MULTIPART_SLICE):
                decoder.receive_data(chunk[start : start + MULTIPART_SLICE])
                while True:
                    event = decoder.next_event()
                    if isinstance(event, NeedData | Epilogue):
                        break
                    if isinstance(event, File) and state == "before":
                        state = "in_file"
                    elif isinstance(event, File | Field) and state == "in_file":
                        state = "after"
                    elif isinstance(event, Data) and state == "in_file":
                        if event.data:
                            yield event.data
                        if not event.more_data:
                            state = "after"
        decoder.receive_data(None)
    except RequestEntityTooLarge:
        raise InvalidInput("a multipart header or form field is too large", code="bad_multipart") from None
    except ValueError as exc:  # werkzeug's parse errors
        raise InvalidInput(f"malformed multipart body: {exc}", code="bad_multipart") from None
    if state == "before":
        raise InvalidInput(
            f"the multipart body has no file part (send the file in a field named {' or '.join(MULTIPART_FIELDS)})",
            code="missing_file",
        )


def _body_chunks() -> AsyncIterator[bytes]:
    if request.mimetype == "multipart/form-data":
        return _multipart_file_chunks()
    if request.mimetype in ("application/x-www-form-urlencoded", "application/json", "text/plain"):
        raise InvalidInput(
            f"Content-Type {request.mimetype!r} cannot carry a file: send multipart/form-data or the raw bytes",
            code="unsupported_media_type",
            status=415,
        )
    return _raw_chunks()


async def _collect(chunks: AsyncIterator[bytes], limit: int, head: bytes = b"") -> bytes:
    buf = bytearray(head)
    async for chunk in chunks:
        buf.extend(chunk)
        if len(buf) > limit:
            raise InvalidInput(f"upload exceeds the limit of {limit} bytes", code="upload_too_large", status=413)
    return bytes(buf)


async def _prepend(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk


# ---------------------------------------------------------------------------------------------- images
def _float_arg(name: str, default: float, lo: float, hi: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name}={raw!r} is not a number", code="bad_parameter") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InvalidInput(f"query parameter {name}={raw!r} must be within [{lo}, {hi}]", code="bad_parameter")
    return value


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name}={raw!r} is not an integer", code="bad_parameter") from None
    if not lo <= value <= hi:
        raise InvalidInput(f"query parameter {name}={raw!r} must be within [{lo}, {hi}]", code="bad_parameter")
    return value


def _bool_arg(name: str, default: bool) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"query parameter {name}={raw!r} must be true or false", code="bad_parameter")


def _image_payload(image: Any, result: Any, alpha: float, output: str) -> tuple[bytes | None, dict[str, Any] | None]:
    """Runs in a worker thread: PNG encoding of big images is not for the event loop."""
    if output == "labels.png":
        return encode_png(result.label_map), None
    over = encode_png(overlay(image, result.label_map, alpha))
    if output == "overlay.png":
        return over, None
    msg = protocol.result_message(result, protocol.LiveConfig(mask="png", mask_scale=1.0))
    msg["message"] = NO_FACE_MESSAGES.get(result.status, f"{len(result.faces)} face(s) found")
    msg["face_count"] = len(result.faces)
    msg["overlay"] = {
        "encoding": "png",
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "alpha": alpha,
        "data": base64.b64encode(over).decode("ascii"),
    }
    msg["classes"] = list(CLASS_NAMES)
    msg["palette"] = PALETTE.tolist()
    msg["deepfake_note"] = "single-image evidence is weaker than a video's (no temporal cues)"
    return None, msg


async def _analyze_image(data: bytes) -> Response:
    output = request.args.get("output", "json")
    if output not in ("json", "overlay.png", "labels.png"):
        raise InvalidInput(f"output={output!r} must be json, overlay.png or labels.png", code="bad_parameter")
    alpha = _float_arg("alpha", 0.5, 0.0, 1.0)
    analyzer = _analyzer()
    slots: asyncio.Semaphore = current_app.extensions["image_slots"]
    if slots.locked():
        raise TooManyUploads("too many images are being analysed at once; retry shortly")
    async with slots:
        image = await asyncio.to_thread(decode_image, data, _settings().max_image_pixels)
        session = analyzer.open_session("image")
        try:
            result = await session.analyze(image, 0, 0.0)
        finally:
            session.close()
        raw, msg = await asyncio.to_thread(_image_payload, image, result, alpha, output)
    if raw is not None:
        return Response(raw, mimetype="image/png")
    response: Response = jsonify(msg)
    return response


async def _image_bytes() -> bytes:
    limit = _settings().max_upload_bytes
    if request.mimetype == "multipart/form-data":
        files = await request.files
        upload = next((files[name] for name in MULTIPART_FIELDS if name in files), None)
        if upload is None:
            upload = next(iter(files.values()), None)
        if upload is None:
            raise InvalidInput("send the image as a multipart file field named 'image'", code="missing_file")
        return bytes(upload.read())
    return await _collect(_body_chunks(), limit)


@blueprint.post("/api/images")
@login_required
async def post_image() -> Response:
    """Analyse one image (multipart field ``image`` or a raw body)."""
    return await _analyze_image(await _image_bytes())


@blueprint.post("/predict")
@login_required
async def predict() -> Response:
    """The seed's image endpoint: same as POST /api/images."""
    return await _analyze_image(await _image_bytes())


# ---------------------------------------------------------------------------------------------- videos
def _job_options() -> JobOptions:
    mask = request.args.get("mask", "png")
    if mask not in ("png", "none"):
        raise InvalidInput(f"query parameter mask={mask!r} must be png or none", code="bad_parameter")
    return JobOptions(
        stride=_int_arg("stride", 1, 1, 1000),
        mask=mask,  # type: ignore[arg-type]
        mask_scale=_float_arg("mask_scale", 1.0, protocol.MIN_MASK_SCALE, 1.0),
        annotate=_bool_arg("annotate", True),
    )


def _status(job: VideoJob) -> dict[str, Any]:
    out = job.status_json()
    out["expires_in_s"] = _store().expires_in(job)
    return out


async def _receive(job: VideoJob, chunks: AsyncIterator[bytes]) -> Response:
    """Spool the body into the job while its runner analyses; answer once the video has opened
    (202 + status) or with the 4xx error that stopped it."""
    store = _store()
    job.begin_upload()
    store.start_runner(job)
    try:
        async for chunk in chunks:
            job.add_bytes(chunk)
        job.finish_upload()
    except asyncio.CancelledError:  # the client went away mid-upload: nothing may stay behind
        store.cancel(job, "the client disconnected during the upload")
        raise
    except IdentixError as exc:
        if job.exception is not None and exc is job.exception:
            raise
        store.fail(job, exc)
        raise
    except Exception as exc:
        store.fail(job, InvalidInput(f"the upload failed: {exc}", code="upload_failed"))
        raise
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(job.probed.wait(), PROBE_TIMEOUT_S)
    if job.exception is not None:
        raise job.exception
    response: Response = jsonify(_status(job))
    response.status_code = 202
    response.headers["Location"] = f"/api/videos/{job.id}"
    return response


def _client_key() -> str | None:
    """Anonymous callers have no account: their job list is scoped to their browser (CSRF cookie).
    A job id itself stays a capability: whoever has it may follow the job."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return hashlib.sha256(cookie.encode()).hexdigest()[:32] if cookie else None


async def _new_job() -> VideoJob:
    limit = _settings().max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise InvalidInput(
            f"upload of {request.content_length} bytes exceeds the limit of {limit} bytes",
            code="upload_too_large",
            status=413,
        )
    options = _job_options()
    _analyzer()
    job = _store().create(await _owner(), options)
    job.client = _client_key()
    return job


@blueprint.post("/api/videos")
@login_required
async def post_video() -> Response:
    """Create a job and upload its video in one request (multipart field ``video`` or a raw body)."""
    job = await _new_job()
    return await _receive(job, _body_chunks())


@blueprint.post("/predict_video")
@login_required
async def predict_video() -> Response:
    """The seed's video endpoint: same as POST /api/videos."""
    job = await _new_job()
    return await _receive(job, _body_chunks())


@blueprint.post("/api/videos/jobs")
@login_required
async def create_job() -> tuple[dict[str, Any], int]:
    """Create an empty job: open its event stream, then PUT the bytes to its upload URL."""
    job = await _new_job()
    return _status(job), 201


@blueprint.route("/api/videos/<job_id>/upload", methods=["PUT", "POST"])
@login_required
async def upload_into_job(job_id: str) -> Response:
    job = _store().get(job_id, await _owner())
    return await _receive(job, _body_chunks())


@blueprint.post("/detect_deepfake")
@login_required
async def detect_deepfake() -> Response:
    """The seed's deepfake endpoint: an image gets the single-image answer, a video becomes a job."""
    chunks = _body_chunks()
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= 16:
            break
    kind = sniff_image_type(head) if head else None
    if kind is not None:
        return await _analyze_image(await _collect(chunks, _settings().max_upload_bytes, head))
    job = await _new_job()
    return await _receive(job, _prepend(head, chunks))


@blueprint.get("/api/videos")
@login_required
async def list_jobs() -> dict[str, Any]:
    """The caller's jobs, newest first (e.g. to find a job whose one-shot upload is still running)."""
    store = _store()
    owner = await _owner()
    client = _client_key()
    mine = [j for j in store.jobs.values() if j.owner == owner and (owner is not None or j.client == client)]
    jobs = sorted(mine, key=lambda j: j.created, reverse=True)
    return {"jobs": [
        {"job_id": j.id, "state": j.state, "created_at": j.created_at, "progress": j.progress_json(),
         "urls": j.status_json()["urls"]}
        for j in jobs
    ]}


@blueprint.get("/api/videos/<job_id>")
@login_required
async def job_status(job_id: str) -> dict[str, Any]:
    return _status(_store().get(job_id, await _owner()))


@blueprint.delete("/api/videos/<job_id>")
@login_required
async def cancel_job(job_id: str) -> dict[str, Any]:
    store = _store()
    job = store.get(job_id, await _owner())
    store.cancel(job, "cancelled by the client")
    return _status(job)


def _last_event_id() -> int:
    raw = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    try:
        return max(0, int(raw))
    except ValueError:
        raise InvalidInput(f"Last-Event-ID/after={raw!r} is not an integer", code="bad_parameter") from None


@blueprint.get("/api/videos/<job_id>/events")
@login_required
async def job_events(job_id: str) -> Response:
    """Server-Sent Events: every message after ``Last-Event-ID`` (or ``?after=``), then live ones,
    until the job is over. ``data`` is one wire-schema JSON message; ``id`` is its ``seq``."""
    job = _store().get(job_id, await _owner())
    after = _last_event_id()
    if job.finished.is_set() and after >= len(job.messages):
        return Response("", status=204)  # tells an EventSource to stop reconnecting

    async def stream() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        async for seq, data in job.follow(after):
            yield f"id: {seq}\ndata: {data}\n\n".encode()

    response = Response(stream(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = None  # a long video streams for longer than Quart's default response timeout
    return response


@blueprint.get("/api/videos/<job_id>/results.json")
@login_required
async def job_results(job_id: str) -> Response:
    """The full results: status, summary and every analysed frame (faces, no label maps)."""
    job = _store().get(job_id, await _owner())
    body = _status(job)
    body["complete"] = job.state == "done"
    body["frames"] = job.results
    response: Response = jsonify(body)
    response.headers["Content-Disposition"] = f'attachment; filename="{job.id}-results.json"'
    return response


@blueprint.get("/api/videos/<job_id>/annotated.mp4")
@login_required
async def job_annotated(job_id: str) -> Response:
    """The annotated MP4 (waits for it while it is being rendered)."""
    job = _store().get(job_id, await _owner())
    if job.annotated == "disabled":
        raise NotFound(f"job {job.id} has no annotated video (annotate=0, or the job did not finish)",
                       code="no_annotated_video")
    if job.state not in FINISHED or job.annotated in ("pending", "rendering"):
        try:
            await asyncio.wait_for(job.finished.wait(), ANNOTATED_WAIT_S)
        except TimeoutError:
            raise Overloaded("the annotated video is still being rendered; retry shortly",
                             code="not_ready") from None
    if job.annotated != "ready":
        raise NotFound(f"job {job.id} has no annotated video (state {job.state}, annotation {job.annotated})",
                       code="no_annotated_video")
    response = await send_file(job.dir / "annotated.mp4", mimetype="video/mp4", conditional=True)
    response.headers["Content-Disposition"] = f'attachment; filename="{job.id}-annotated.mp4"'
    return response
