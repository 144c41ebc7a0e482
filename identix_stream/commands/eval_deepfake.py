"""``identix-stream eval-deepfake --real DIR --fake DIR [--json]``: measure the deepfake evidence.

Everything goes through the service's own pipeline (Analyzer). An image gets the service's
single-image answer (detect, crop, parse, score, one-frame evidence) for its most confident face, or
with ``--every-face`` one item per face (group photos: every person counts); an image where no face is
found is scored as one whole-image crop (marked ``face_detected: false``).
Videos run the stream path (detect, track, parse, score, running evidence) and each person (track)
is scored over the whole clip (or its first ``--max-seconds``) by its final running p_fake; persons
seen in fewer than ``--min-frames`` frames are skipped. Prints AUC, EER, accuracy at p_fake >= 0.5,
counts, final states, how many items left a factor unread and why (``unread_factors``, from the
factors' notes), per-factor AUCs.

``--downscale S`` / ``--upscale S`` / ``--crf N`` / ``--jpeg Q`` score worse copies of every input
instead (shrunk or enlarged by S, videos re-encoded with H.264 at CRF N, images JPEG'd at quality Q;
media/degrade.py): does a real person stay unflagged once the clip is smaller, upscaled or more
compressed?
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from identix_stream.commands import offline_settings
from identix_stream.errors import DataError, InvalidInput
from identix_stream.media.degrade import MAX_SCALE, Degradation, degrade_image, degrade_video

log = logging.getLogger(__name__)

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
VIDEO_EXT = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}
THRESHOLD = 0.5
CROP = 256


def _files(folder: Path) -> list[Path]:
    """The folder's images and videos, its subfolders' included (a data set is often stored one folder
    per source video or identity); hidden files and folders are left out."""
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    files = sorted(p for p in folder.rglob("*")
                   if p.suffix.lower() in IMAGE_EXT | VIDEO_EXT and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise DataError(f"no images or videos in {folder} or its subfolders")
    return files


def _name(path: Path, root: Path | None) -> str:
    return path.name if root is None else path.relative_to(root).as_posix()


def unread_factors(observations: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Factor -> why it was not read (the ``reason`` of its note), for the factors left out."""
    return {name: str(note["reason"]) for name, note in observations.items() if "reason" in note}


async def _score_image(analyzer: Any, path: Path, name: str, degradation: Degradation,
                       every_face: bool = False) -> list[dict[str, Any]]:
    """The service's single-image answer for the file's most confident face, or with ``every_face``
    one item per face (most confident first; ``face`` numbers them, ``box`` places them), so that every
    person in a group photo counts. A file where the detector finds no face (a very tight crop) is
    scored as one whole-image crop instead, marked ``"face_detected": false``; an undecodable file
    gives no item."""
    import cv2

    from identix_stream.core.deepfake_fusion import single_image_estimate
    from identix_stream.core.geometry import SERVICE_CROP_SCALE

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        log.warning("skipping %s: not a decodable image", path)
        return []
    if degradation.changes_images:
        img = degrade_image(img, degradation)
    session = analyzer.open_session("image")
    try:
        result = await session.analyze(img, 0)
    finally:
        session.close()
    faces = sorted((f for f in result.faces if f.deepfake.p_fake is not None), key=lambda f: -f.score)
    if faces:
        items = []
        for index, face in enumerate(faces if every_face else faces[:1]):
            est = face.deepfake
            item = {"file": name, "p_fake": est.p_fake, "state": est.state, "factors": dict(est.factors),
                    "unread": unread_factors(est.observations), "faces": len(faces), "face_detected": True}
            if every_face:
                item |= {"face": index, "box": [round(v, 1) for v in face.box]}
            items.append(item)
        return items
    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if min(h, w) > CROP else cv2.INTER_LINEAR
    crop = cv2.resize(img, (CROP, CROP), interpolation=interp)
    labels = analyzer.runtime.labels([crop])
    scored = analyzer.scorer.score_faces([crop], labels, [(img, (w / 2, h / 2))], [True])[0]
    # scored as a service crop
    whole = single_image_estimate(scored.factors, max(h, w) / SERVICE_CROP_SCALE, scored.notes)
    return [{"file": name, "p_fake": whole.p_fake, "state": whole.state, "factors": scored.factors,
             "unread": unread_factors(whole.observations), "faces": 0, "face_detected": False}]


async def _score_video(
    analyzer: Any, path: Path, name: str, max_pixels: int, stride: int, min_frames: int,
    max_seconds: float | None = None
) -> list[dict[str, Any]]:
    """Per person: the last running estimate of the track (over the whole clip, or its first
    ``max_seconds``) and each factor averaged over the track's frames."""
    from identix_stream.media.video import VideoReader
    from identix_stream.pipeline.video_analysis import AnalyzedFrame, analyze_video

    sums: dict[int, dict[str, float]] = {}
    counts: dict[int, dict[str, int]] = {}
    last: dict[int, Any] = {}
    frames: dict[int, int] = {}
    events: Any = analyze_video(analyzer, lambda: VideoReader(path, max_pixels), stride=stride)
    try:
        async for event in events:
            if not isinstance(event, AnalyzedFrame):
                continue
            if max_seconds is not None and event.timestamp > max_seconds:
                break
            for face in event.result.faces:
                s = sums.setdefault(face.track_id, {})
                c = counts.setdefault(face.track_id, {})
                last[face.track_id] = face.deepfake
                frames[face.track_id] = frames.get(face.track_id, 0) + 1
                for factor, v in face.deepfake.factors.items():
                    if v is not None:
                        s[factor] = s.get(factor, 0.0) + v
                        c[factor] = c.get(factor, 0) + 1
    finally:
        await events.aclose()
    items: list[dict[str, Any]] = []
    for tid, est in sorted(last.items()):
        if frames[tid] < min_frames or est.p_fake is None:
            continue
        factors = {k: sums[tid][k] / counts[tid][k] for k in sums[tid]}
        items.append({"file": name, "track_id": tid, "frames": frames[tid], "p_fake": est.p_fake,
                      "state": est.state, "factors": factors, "unread": unread_factors(est.observations)})
    log.info("%s: %s", name, [(i["track_id"], i["state"], round(i["p_fake"], 3)) for i in items])
    return items


async def _score_video_copy(analyzer: Any, path: Path, name: str, scratch: Path, degradation: Degradation,
                           max_pixels: int, stride: int, min_frames: int, max_seconds: float | None
                           ) -> list[dict[str, Any]]:
    """``_score_video`` of the video's degraded copy (in ``scratch``, removed afterwards), items named
    ``name`` like the original's."""
    copy = scratch / f"{path.stem}.mp4"
    try:
        await asyncio.to_thread(degrade_video, path, copy, degradation, max_pixels)
        return await _score_video(analyzer, copy, name, max_pixels, stride, min_frames, max_seconds)
    finally:
        copy.unlink(missing_ok=True)


def score_files(images: list[Path], videos: list[Path], model: Path, models_dir: Path, device: str, threads: int,
                stride: int, min_frames: int, max_seconds: float | None = None,
                degradation: Degradation | None = None, every_face: bool = False,
                root: Path | None = None) -> list[dict[str, Any]]:
    """Items for images (one per file, or with ``every_face`` one per face) and videos (one per
    person), all through one Analyzer; with a ``degradation``, each scored as its degraded copy.
    ``root``: the folder the files were found in; items then name them by their path below it (so
    that equal names in two subfolders stay apart), else by the bare file name."""
    from identix_stream.pipeline.analyzer import Analyzer

    worse = degradation or Degradation()

    settings = offline_settings()

    async def run() -> list[dict[str, Any]]:
        analyzer = Analyzer(model, device=device, torch_threads=threads, models_dir=models_dir)
        await analyzer.start()
        if analyzer.scorer is None:
            await analyzer.stop()
            raise DataError(f"the deepfake models in {models_dir} could not be loaded")
        out: list[dict[str, Any]] = []
        try:
            for p in images:
                try:
                    out += await _score_image(analyzer, p, _name(p, root), worse, every_face)
                except InvalidInput as exc:
                    log.warning("skipping %s: %s", p, exc.message)
            with tempfile.TemporaryDirectory(prefix="identix-degraded-") as scratch:
                for p in videos:
                    try:
                        if worse.changes_videos:
                            out += await _score_video_copy(analyzer, p, _name(p, root), Path(scratch), worse,
                                                           settings.max_image_pixels, stride, min_frames, max_seconds)
                        else:
                            out += await _score_video(analyzer, p, _name(p, root), settings.max_image_pixels, stride,
                                                      min_frames, max_seconds)
                    except InvalidInput as exc:
                        log.warning("skipping %s: %s", p, exc.message)
        finally:
            await analyzer.stop()
        return out

    return asyncio.run(run())


def summarize(real: list[dict[str, Any]], fake: list[dict[str, Any]]) -> dict[str, Any]:
    from identix_stream.core.deepfake_metrics import eer, roc_auc

    if not real or not fake:
        raise DataError(f"need scored items of both classes, got {len(real)} real and {len(fake)} fake")
    r = np.array([i["p_fake"] for i in real])
    f = np.array([i["p_fake"] for i in fake])
    e, t = eer(r, f)
    factor_auc: dict[str, float] = {}
    for name in sorted({k for i in real + fake for k in i["factors"]}):
        rv = [i["factors"][name] for i in real if name in i["factors"]]
        fv = [i["factors"][name] for i in fake if name in i["factors"]]
        if rv and fv:
            factor_auc[name] = round(roc_auc(rv, fv), 4)
    states: dict[str, dict[str, int]] = {"real": {}, "fake": {}}
    for cls, items in (("real", real), ("fake", fake)):
        for i in items:
            states[cls][i["state"]] = states[cls].get(i["state"], 0) + 1
    unread: dict[str, dict[str, int]] = {"real": {}, "fake": {}}
    for cls, items in (("real", real), ("fake", fake)):
        for i in items:
            for name, reason in i.get("unread", {}).items():
                key = f"{name}: {reason}"
                unread[cls][key] = unread[cls].get(key, 0) + 1
    return {
        "auc": round(roc_auc(r, f), 4),
        "eer": round(e, 4),
        "eer_threshold": round(t, 4),
        "threshold": THRESHOLD,
        "accuracy": round(float(((f >= THRESHOLD).sum() + (r < THRESHOLD).sum()) / (r.size + f.size)), 4),
        "counts": {"real": int(r.size), "fake": int(f.size)},
        "images_without_detected_face": {cls: sum(1 for i in items if i.get("face_detected") is False)
                                         for cls, items in (("real", real), ("fake", fake))},
        "states": states,
        "unread_factors": unread,
        "factor_auc": factor_auc,
    }


def run(args: argparse.Namespace) -> int:
    settings = offline_settings()
    model = Path(args.model) if args.model else Path(settings.model_path)
    models_dir = Path(args.models_dir) if args.models_dir else Path(settings.model_path).parent
    if not model.is_file():
        raise DataError(f"parser model not found: {model} (set --model or IDENTIX_MODEL_PATH)")
    degradation = Degradation(args.upscale or args.downscale or 1.0, args.crf, args.jpeg)
    groups: dict[str, list[dict[str, Any]]] = {}
    for cls, folder in (("real", Path(args.real)), ("fake", Path(args.fake))):
        files = _files(folder)
        images = [p for p in files if p.suffix.lower() in IMAGE_EXT]
        videos = [p for p in files if p.suffix.lower() in VIDEO_EXT]
        items = score_files(images, videos, model, models_dir, args.device, args.threads, args.stride,
                            args.min_frames, args.max_seconds, degradation, args.every_face, folder)
        for i in items:
            i["label"] = cls
        groups[cls] = items
    report = summarize(groups["real"], groups["fake"])
    if degradation.active:
        report["degradation"] = degradation.describe()
    if args.json:
        report["items"] = groups["real"] + groups["fake"]
        print(json.dumps(report, indent=2))
    else:
        for k in ("auc", "eer", "accuracy", "counts", "images_without_detected_face", "states", "unread_factors",
                  "factor_auc", "degradation"):
            if k in report:
                print(f"{k}: {report[k]}")
    sys.stdout.flush()
    return 0


def _number(text: str, kind: type[float] | type[int]) -> float | int:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None


def _degradation_option(field: str, kind: type[float] | type[int]) -> Callable[[str], float | int]:
    """An argparse type for one Degradation field, refused by Degradation's own rules."""
    def parse(text: str) -> float | int:
        value = _number(text, kind)
        settings: dict[str, Any] = {field: value}
        try:
            Degradation(**settings)
        except DataError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
        return value
    return parse


def _factor_option(name: str, low: float, high: float, low_included: bool) -> Callable[[str], float]:
    """An argparse type for a resize factor in a range (``--downscale`` (0, 1], ``--upscale`` [1, 4])."""
    shown = f"{'[' if low_included else '('}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        value = float(_number(text, float))
        if not (low <= value if low_included else low < value) or not value <= high:
            raise argparse.ArgumentTypeError(f"{name} factor must be in {shown}, got {value}")
        return value
    return parse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-deepfake", help="measure deepfake evidence on folders of real and fake media",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", required=True, help="folder of real images/videos")
    p.add_argument("--fake", required=True, help="folder of fake images/videos")
    p.add_argument("--json", action="store_true", help="print a JSON report with every item")
    p.add_argument("--model", help="face parser model (default: IDENTIX_MODEL_PATH / models/face_parser.pt)")
    p.add_argument("--models-dir", help="folder of the deepfake model files (default: the parser's folder)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=2, help="torch threads for videos")
    p.add_argument("--stride", type=int, default=1, help="analyse every n-th video frame")
    p.add_argument("--min-frames", type=int, default=10, help="skip video persons seen in fewer frames")
    p.add_argument("--max-seconds", type=float, help="score only the first seconds of each video")
    p.add_argument("--every-face", action="store_true",
                   help="score every face of an image as its own item (group photos), not only the most confident")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--downscale", type=_factor_option("downscale", 0.0, 1.0, False), metavar="S",
                      help="score copies shrunk by this factor (0-1], aspect kept (robustness check)")
    size.add_argument("--upscale", type=_factor_option("upscale", 1.0, MAX_SCALE, True), metavar="S",
                      help=f"score copies enlarged by this factor [1-{MAX_SCALE:g}] (bicubic), aspect kept")
    p.add_argument("--crf", type=_degradation_option("crf", int), metavar="N",
                   help="re-encode videos with H.264 at this CRF (0-51) first")
    p.add_argument("--jpeg", type=_degradation_option("jpeg_quality", int), metavar="Q",
                   help="JPEG images at this quality (1-100) first")
    p.set_defaults(func=run)
