"""``identix-stream analyze PATH``: analyse an image or a video offline (no server), print a summary
or JSON, optionally write an annotated MP4 (videos) or overlay PNG/JPEG (images)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from identix_stream.commands import offline_settings
from identix_stream.errors import InvalidInput

IMAGE_OUT_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_OUT_SUFFIXES = (".mp4",)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("analyze", help="analyse an image or video file offline (no server)")
    p.add_argument("path", type=Path, help="image (JPEG/PNG/WebP) or video (MP4/MOV, WebM/MKV, MPEG-TS, ...)")
    p.add_argument("--json", action="store_true", help="print the full results as JSON on stdout")
    p.add_argument("--out", type=Path, help="write annotated.mp4 (videos) or overlay.png/.jpg (images)")
    p.add_argument("--stride", type=int, default=1, help="videos: analyse every N-th frame (default 1 = all)")
    p.add_argument("--alpha", type=float, default=0.45, help="overlay opacity 0..1 (default 0.45)")
    p.add_argument("--model", type=Path, help="parser model file (default: IDENTIX_MODEL_PATH / models/face_parser.pt)")
    p.add_argument("--device", help="auto, cpu or cuda (default: IDENTIX_DEVICE)")
    p.add_argument("--threads", type=int, help="torch threads (default: IDENTIX_TORCH_THREADS)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> None:
    if not args.path.is_file():
        raise InvalidInput(f"{args.path} is not a file", code="not_found")
    if args.stride < 1:
        raise InvalidInput(f"--stride must be >= 1, got {args.stride}", code="bad_stride")
    if not 0.0 <= args.alpha <= 1.0:
        raise InvalidInput(f"--alpha must be within [0, 1], got {args.alpha}", code="bad_parameter")


def _analyzer(args: argparse.Namespace) -> Any:
    from identix_stream.pipeline.analyzer import Analyzer

    s = offline_settings()
    return Analyzer(
        args.model or Path(s.model_path),
        device=args.device or s.device,
        precision=getattr(s, "precision", "auto"),
        torch_threads=args.threads or s.torch_threads,
        max_batch=s.max_batch,
        max_wait_ms=s.max_wait_ms,
        queue_size=s.queue_size,
        deepfake_interval_s=s.deepfake_interval_s,
        live_deepfake_interval_s=s.live_deepfake_interval_s,
    )


def run(args: argparse.Namespace) -> int:
    from identix_stream.media.images import sniff_image_type

    _validate(args)
    with open(args.path, "rb") as fh:
        head = fh.read(64)
    is_image = sniff_image_type(head) is not None
    if args.out is not None:
        allowed = IMAGE_OUT_SUFFIXES if is_image else VIDEO_OUT_SUFFIXES
        if args.out.suffix.lower() not in allowed:
            kind = "an image" if is_image else "a video"
            raise InvalidInput(f"--out for {kind} must end with {' or '.join(allowed)}, got {args.out.name}",
                               code="bad_parameter")
    report = asyncio.run(_run_image(args) if is_image else _run_video(args))
    if args.json:
        json.dump(report, sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        _print_summary(report)
    return 0


async def _run_image(args: argparse.Namespace) -> dict[str, Any]:
    from identix_stream.media.annotate import annotate_frame
    from identix_stream.media.images import decode_image, encode_jpeg, encode_png
    from identix_stream.web import protocol

    max_pixels = offline_settings().max_image_pixels
    image = decode_image(args.path.read_bytes(), max_pixels)
    analyzer = _analyzer(args)
    await analyzer.start()
    try:
        session = analyzer.open_session("image")
        t0 = time.perf_counter()
        result = await session.analyze(image, 0, 0.0)
        elapsed = time.perf_counter() - t0
        session.close()
    finally:
        await analyzer.stop()
    msg = protocol.result_message(result, protocol.LiveConfig(mask="none"))
    report: dict[str, Any] = {
        "file": str(args.path),
        "kind": "image",
        "status": result.status,
        "message": {"no_face": "no face found", "face_too_small": "all faces are too small to analyse"}.get(
            result.status, f"{len(result.faces)} face(s) found"),
        "width": result.width,
        "height": result.height,
        "faces": msg["faces"],
        "timing_ms": msg["timing"],
        "elapsed_s": round(elapsed, 3),
        "device": analyzer.device,
        "precision": analyzer.precision,
    }
    if args.out is not None:
        drawn = annotate_frame(image, result.label_map, result.faces, args.alpha)
        data = encode_png(drawn) if args.out.suffix.lower() == ".png" else encode_jpeg(drawn)
        args.out.write_bytes(data)
        report["out"] = str(args.out)
    return report


async def _run_video(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from identix_stream.media.annotate import FrameAnnotation, LabelStore, render_annotated_video
    from identix_stream.media.video import VideoInfo, VideoReader, probe_file
    from identix_stream.pipeline.video_analysis import AnalyzedFrame, VideoDone, analyze_video
    from identix_stream.web import protocol

    container = probe_file(args.path)  # refuses images/audio/unknown bytes with a clear message
    max_pixels = offline_settings().max_image_pixels
    with VideoReader(args.path, max_pixels):  # a file with no decodable video fails here, before the models load
        pass
    analyzer = _analyzer(args)
    t_load = time.perf_counter()
    await analyzer.start()
    load_s = time.perf_counter() - t_load
    frames: list[dict[str, Any]] = []
    annotations: list[FrameAnnotation] = []
    report: dict[str, Any] = {"file": str(args.path), "kind": "video", "container": container.kind}
    config = protocol.LiveConfig(mask="none")
    with tempfile.TemporaryDirectory(prefix="identix-analyze-") as tmp:
        labels = LabelStore(Path(tmp) / "labels.bin") if args.out is not None else None
        bar: Any = None
        t0 = time.perf_counter()
        cpu0 = time.process_time()  # all threads of this process: a measure that contention inflates less
        try:
            async for event in analyze_video(analyzer, lambda: VideoReader(args.path, max_pixels), stride=args.stride):
                if isinstance(event, VideoInfo):
                    report["video"] = event.to_json()
                    bar = tqdm(total=event.frames, unit="frame", desc="analyse", disable=args.no_progress,
                               file=sys.stderr)
                elif isinstance(event, AnalyzedFrame):
                    msg = protocol.result_message(event.result, config)
                    msg["frame"] = event.index
                    frames.append({k: v for k, v in msg.items() if k not in ("v", "type", "label_map")})
                    annotations.append(FrameAnnotation(event.index, event.result.faces))
                    if labels is not None:
                        labels.add(event.index, event.result.label_map)
                    if bar is not None:
                        bar.update(event.frames_decoded - bar.n)
                elif isinstance(event, VideoDone):
                    elapsed = time.perf_counter() - t0
                    if bar is not None:
                        bar.update(event.frames_decoded - bar.n)
                    report.update({
                        "stride": args.stride,
                        "frames_decoded": event.frames_decoded,
                        "frames_analyzed": event.frames_analyzed,
                        "summary": event.summary,
                        "warning": None if event.warning is None else {
                            "code": event.warning.code, "message": event.warning.message},
                        "timing": {
                            "model_load_s": round(load_s, 2),
                            "analysis_s": round(elapsed, 2),
                            "analysis_cpu_s": round(time.process_time() - cpu0, 2),
                            "analyzed_fps": round(event.frames_analyzed / elapsed, 2) if elapsed > 0 else None,
                            "video_fps_equivalent": round(event.frames_decoded / elapsed, 2) if elapsed > 0 else None,
                        },
                        "device": analyzer.device,
                        "precision": analyzer.precision,
                    })
        finally:
            if bar is not None:
                bar.close()
            await analyzer.stop()
        if args.out is not None:
            total = report.get("video", {}).get("frames")
            with tqdm(total=total, unit="frame", desc="render", disable=args.no_progress, file=sys.stderr) as rbar:
                t1 = time.perf_counter()
                written = await asyncio.to_thread(
                    render_annotated_video, args.path, args.out, annotations, labels,
                    max_pixels=max_pixels, alpha=args.alpha, progress=lambda n: rbar.update(n - rbar.n),
                )
            report["out"] = str(args.out)
            report["out_frames"] = written
            report["timing"]["render_s"] = round(time.perf_counter() - t1, 2)
    report["frames"] = frames
    return report


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _factor_lines(df: dict[str, Any], indent: str) -> list[str]:
    """One line per factor: its 0-1 score and what it saw (for a factor not read: why, or what it
    still needs)."""
    factors, seen = df.get("factors") or {}, df.get("observations") or {}
    lines = []
    for name in list(factors) + [n for n in seen if n not in factors]:
        value, note = factors.get(name), str(seen.get(name, {}).get("text", ""))
        label = name.replace("_", " ")
        if value is not None:
            head = f"{label} {value:.2f}"
        else:
            head = label if note.startswith("not ") else f"{label} (not yet)"
        lines.append(f"{indent}{head}" + (f": {note}" if note else "") + "\n")
    return lines


def _print_summary(report: dict[str, Any]) -> None:
    out = sys.stdout
    if report["kind"] == "image":
        out.write(f"{report['file']}: {report['width']}x{report['height']}, {report['message']}\n")
        for face in report["faces"]:
            df = face["deepfake"]
            out.write(f"  face #{face['track_id']} box={face['box']} score={face['score']:.2f} "
                      f"deepfake={df['state']} p_fake={_p(df['p_fake'])}\n")
            out.writelines(_factor_lines(df, "    "))
    else:
        v = report.get("video", {})
        t = report.get("timing", {})
        out.write(f"{report['file']}: {v.get('width')}x{v.get('height')} {v.get('fps')} fps, "
                  f"{report.get('frames_decoded')} frames, {report.get('frames_analyzed')} analysed "
                  f"(stride {report.get('stride')}) in {t.get('analysis_s')} s\n")
        if not report.get("summary"):
            out.write("  no face found\n")
        for track in report.get("summary") or []:
            df = track["deepfake"]
            out.write(f"  person #{track['track_id']}: {track['frames_seen']} frames "
                      f"({track['first_ts']:.2f}-{track['last_ts']:.2f} s), deepfake verdict {df['verdict']} "
                      f"(state {df['state']}, p_fake {_p(df['p_fake'])})\n")
            out.writelines(_factor_lines(df, "    "))
        if report.get("warning"):
            out.write(f"  warning: {report['warning']['message']}\n")
    if report.get("out"):
        out.write(f"  wrote {report['out']}\n")
