"""``identix-stream bench``: end-to-end latency, parser throughput and simulated live streams.

Prints one JSON document (``--json``: nothing else on stdout). Sections:
- ``single_face``: a 640x480 one-face JPEG, decode -> detect -> parse -> PNG label map, p50/p95 ms;
- ``parser``: faces/s of the parser alone at batch 1/4/8 on real face crops;
- ``streams``: N concurrent live sessions (1, 4, 8) fed at 30 fps from a real video: per stream
  delivered results/s, latency p50/p95 (submit -> result), drop rate, drift (p50 of the last third
  minus the first third) and the executor's batch-size statistics;
- ``precision_check`` (``--precision-check``): mean F1 of each precision against fp32 on the
  CelebAMask-mini validation split; exits 1 if a reduced precision loses more than 1 point.

With ``--server ws://HOST:PORT/ws/live`` only the streams run, each as a WebSocket connection to that
running server (``bench_server.py``), with the same per-stream figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from identix_stream.commands.stream_stats import pct, stream_summary, streams_summary
from identix_stream.config import PRECISIONS
from identix_stream.errors import DataError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "videos" / "talking_heads" / "driving_d0.mp4"
DEFAULT_DATA = REPO.parent / "shared" / "data"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure latency, throughput and live-stream behaviour", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print only the JSON document")
    p.add_argument("--model", type=Path, help="parser model file (default: IDENTIX_MODEL_PATH / models/face_parser.pt)")
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="video feeding the simulated streams")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per stream configuration (default 10)")
    p.add_argument("--long", action="store_true", help="60 s per stream configuration (drift check)")
    p.add_argument("--streams", default="1,4,8", help="comma-separated concurrent stream counts")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--iterations", type=int, default=40, help="single-face end-to-end iterations")
    p.add_argument("--device", help="auto, cpu or cuda (default: IDENTIX_DEVICE)")
    p.add_argument("--precision", choices=("auto", *PRECISIONS), help="parser precision (default: IDENTIX_PRECISION)")
    p.add_argument("--threads", type=int, help="torch threads (default: IDENTIX_TORCH_THREADS)")
    p.add_argument("--precision-check", action="store_true",
                   help="only compare each precision's mean F1 with fp32 on real validation images")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data root for --precision-check")
    p.add_argument("--check-images", type=int, default=60, help="validation images for --precision-check")
    p.add_argument("--server", help="drive a running server's /ws/live instead (e.g. ws://127.0.0.1:8000/ws/live)")
    p.add_argument("--token", default=os.environ.get("IDENTIX_API_TOKEN"),
                   help="API token for --server (default: IDENTIX_API_TOKEN; none with anonymous access)")
    p.set_defaults(func=run)


def _settings_defaults(args: argparse.Namespace) -> dict[str, Any]:
    from identix_stream.commands import offline_settings

    s = offline_settings()
    return {
        "model": args.model or Path(s.model_path),
        "device": args.device or s.device,
        "precision": args.precision or getattr(s, "precision", "auto"),
        "threads": args.threads or s.torch_threads,
        "max_batch": s.max_batch,
        "max_wait_ms": s.max_wait_ms,
        "queue_size": s.queue_size,
        "deepfake_interval_s": s.deepfake_interval_s,
        "live_deepfake_interval_s": s.live_deepfake_interval_s,
    }


def cpu_description() -> dict[str, Any]:
    """CPU model and the instruction sets that decide which precision wins (int8 needs VNNI/AMX to pay)."""
    from identix_stream.inference.parser_runtime import cpu_info

    model, flags = cpu_info()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return {"model": model, "flags": [f for f in wanted if f in flags]}


def read_video(path: Path, limit: int = 300) -> list[np.ndarray]:
    import av

    if not path.is_file():
        raise DataError(f"benchmark video not found: {path} (pass --video)")
    frames = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) >= limit:
                break
    if not frames:
        raise DataError(f"no frames decoded from {path}")
    return frames


def to_640x480(img: np.ndarray) -> np.ndarray:
    """Letterbox a frame into 640x480 (the size the targets are stated for)."""
    import cv2

    h, w = img.shape[:2]
    s = min(640 / w, 480 / h)
    small = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    out = np.zeros((480, 640, 3), np.uint8)
    y, x = (480 - small.shape[0]) // 2, (640 - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


async def bench_single(analyzer: Any, jpeg: bytes, iterations: int) -> dict[str, Any]:
    import cv2

    session = analyzer.open_session("live")
    totals: list[float] = []
    stages: dict[str, list[float]] = {
        "decode": [], "detect": [], "parse": [], "post": [], "deepfake": [], "encode": [],
    }
    faces = 0
    for i in range(iterations + 3):
        t0 = time.perf_counter()
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        result = await session.analyze(img, i)
        t2 = time.perf_counter()
        ok, _png = cv2.imencode(".png", result.label_map)
        t3 = time.perf_counter()
        if not ok:
            raise RuntimeError("PNG encoding of the label map failed")
        if i < 3:  # warm the session (tracks, smoothing)
            continue
        faces += len(result.faces)
        totals.append((t3 - t0) * 1000)
        stages["decode"].append((t1 - t0) * 1000)
        stages["encode"].append((t3 - t2) * 1000)
        for k in ("detect", "parse", "post", "deepfake"):
            stages[k].append(result.timing_ms[k])
    session.close()
    return {
        "frame": "640x480 JPEG, 1 face",
        "iterations": iterations,
        "faces_per_frame": round(faces / iterations, 2),
        "p50_ms": pct(totals, 50),
        "p95_ms": pct(totals, 95),
        "stage_p50_ms": {k: pct(v, 50) for k, v in stages.items()},
    }


async def bench_parser(analyzer: Any, crop: np.ndarray, seconds: float = 3.0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch in (1, 4, 8):
        crops = [crop] * batch

        def work(crops: list[np.ndarray] = crops) -> tuple[int, float]:
            analyzer.runtime.parse(crops)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds or n < 2:
                analyzer.runtime.parse(crops)
                n += 1
            return n, time.perf_counter() - t0

        n, elapsed = await analyzer.batcher.call(work)
        out[f"batch_{batch}"] = {
            "faces_per_s": round(n * batch / elapsed, 1),
            "ms_per_batch": round(elapsed / n * 1000, 2),
        }
    return out


async def _one_stream(analyzer: Any, jpegs: list[bytes], fps: float, duration: float) -> dict[str, Any]:
    import cv2

    from identix_stream.errors import FrameDropped, Overloaded

    session = analyzer.open_session("live")
    latencies: list[tuple[float, float]] = []
    counts = {"sent": 0, "delivered": 0, "dropped": 0, "overloaded": 0, "errors": 0}
    pending: set[asyncio.Task[None]] = set()
    start = time.monotonic()

    async def one(frame_id: int, data: bytes) -> None:
        t0 = time.monotonic()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        try:
            await session.analyze(img, frame_id)
        except FrameDropped:
            counts["dropped"] += 1
            return
        except Overloaded:
            counts["overloaded"] += 1
            return
        except Exception:
            counts["errors"] += 1
            log.exception("stream frame failed")
            return
        counts["delivered"] += 1
        latencies.append((t0 - start, (time.monotonic() - t0) * 1000))

    frame_id = 0
    while (now := time.monotonic()) - start < duration:
        task = asyncio.create_task(one(frame_id, jpegs[frame_id % len(jpegs)]))
        pending.add(task)
        task.add_done_callback(pending.discard)
        counts["sent"] += 1
        frame_id += 1
        await asyncio.sleep(max(0.0, start + frame_id / fps - now))
    if pending:
        await asyncio.gather(*pending)
    elapsed = time.monotonic() - start
    session.close()
    return stream_summary(counts, latencies, elapsed, duration)


async def bench_streams(analyzer: Any, jpegs: list[bytes], n: int, fps: float, duration: float) -> dict[str, Any]:
    stats0 = analyzer.batcher.stats.to_json()
    faces0 = dict(analyzer.face_batch_sizes)
    scored0 = analyzer.deepfake_scored
    per_stream = await asyncio.gather(*(_one_stream(analyzer, jpegs, fps, duration) for _ in range(n)))
    stats1 = analyzer.batcher.stats.to_json()
    sizes = {k: v - int(stats0["batch_sizes"].get(k, 0)) for k, v in stats1["batch_sizes"].items()}
    sizes = {k: v for k, v in sizes.items() if v > 0}
    batches = sum(sizes.values())
    face_sizes = {str(k): v - faces0.get(k, 0) for k, v in analyzer.face_batch_sizes.items() if v - faces0.get(k, 0)}
    return {
        **streams_summary(n, fps, duration, per_stream),
        "frame_batches": {
            "count": batches,
            "mean_frames_per_batch": round(sum(int(k) * v for k, v in sizes.items()) / max(batches, 1), 2),
            "sizes": sizes,
        },
        "face_batch_sizes": face_sizes,
        "deepfake_faces_scored": analyzer.deepfake_scored - scored0,  # the rest reused a track's recent factors
    }


def precision_check(model: Path, data: Path, device: str, threads: int, limit: int) -> dict[str, Any]:
    """Mean F1 per precision on CelebAMask-mini validation crops (the training geometry)."""
    import cv2
    import torch

    from identix_stream.core.classes import CLASS_NAMES, F1_CLASSES, IGNORE_INDEX, NUM_CLASSES
    from identix_stream.core.geometry import crop_window
    from identix_stream.core.metrics import confusion, summarize
    from identix_stream.inference.parser_runtime import MAX_F1_LOSS, ParserRuntime, candidate_precisions
    from identix_stream.pipeline.paste import crop_face
    from identix_stream.training.data import load_celebamask

    torch.set_num_threads(threads)
    samples = load_celebamask(data / "face_parsing" / "celebamask_mini", "val")[:limit]
    rt = ParserRuntime.load(model, device, "fp32")
    size, spec = rt.input_size, rt.spec
    crops, targets = [], []
    for s in samples:
        window = crop_window(s.face_box, scale=spec.crop_scale, shift_y=spec.crop_shift_y)
        crop, m = crop_face(s.image, window, size)
        target = cv2.warpAffine(s.labels, m, (size, size), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE_INDEX)
        crops.append(crop)
        targets.append(target)
    precisions = ["fp32"] + [p for p in candidate_precisions(rt.device, model) if p != "fp32"]
    out: dict[str, Any] = {"images": len(samples), "model": str(model), "device": str(rt.device)}
    for prec in precisions:
        rt.precision = prec
        rt._set_layout()
        conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
        t0 = time.perf_counter()
        for k in range(0, len(crops), 8):
            pred = rt.parse(crops[k : k + 8]).max(1).indices.numpy().astype(np.uint8)
            for p, t in zip(pred, targets[k : k + 8], strict=True):
                conf += confusion(p, t, NUM_CLASSES)
        ms = (time.perf_counter() - t0) * 1000 / max(len(crops), 1)
        out[prec] = {"mean_f1": summarize(conf, CLASS_NAMES, F1_CLASSES)["mean_f1"], "ms_per_face": round(ms, 2)}
    base = out["fp32"]["mean_f1"] or 0.0
    out["accepted"] = [p for p in precisions if (out[p]["mean_f1"] or 0.0) >= base - MAX_F1_LOSS]
    out["ok"] = len(out["accepted"]) == len(precisions)
    return out


async def _bench(args: argparse.Namespace, cfg: dict[str, Any]) -> dict[str, Any]:
    import cv2

    from identix_stream.pipeline.analyzer import Analyzer

    duration = 60.0 if args.long else args.duration
    frames = read_video(args.video)
    jpegs = _stream_jpegs(frames)
    analyzer = Analyzer(cfg["model"], device=cfg["device"], precision=cfg["precision"],
                        torch_threads=cfg["threads"], max_batch=cfg["max_batch"],
                        max_wait_ms=cfg["max_wait_ms"], queue_size=cfg["queue_size"],
                        deepfake_interval_s=cfg["deepfake_interval_s"],
                        live_deepfake_interval_s=cfg["live_deepfake_interval_s"])
    t0 = time.perf_counter()
    await analyzer.start()
    report: dict[str, Any] = {
        "device": analyzer.device,
        "precision": analyzer.precision,
        "precision_warmup_ms_per_face": analyzer.runtime.timings_ms,
        "deepfake_scorer": analyzer.scorer is not None,
        "torch_threads": cfg["threads"],
        "max_batch": cfg["max_batch"],
        "max_wait_ms": cfg["max_wait_ms"],
        "deepfake_interval_s": cfg["deepfake_interval_s"],
        "live_deepfake_interval_s": cfg["live_deepfake_interval_s"],  # the one the simulated streams use
        "start_s": round(time.perf_counter() - t0, 2),
        "video": str(args.video),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_description(),
        "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
    }
    try:
        report["single_face"] = await bench_single(analyzer, jpegs[0], args.iterations)
        # a real face crop for the parser-only numbers
        det = await analyzer.batcher.call(lambda: analyzer.detector.detect(cv2.imdecode(
            np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR)))
        from identix_stream.core.geometry import crop_window
        from identix_stream.pipeline.paste import crop_face

        img = to_640x480(frames[0])
        spec = analyzer.runtime.spec
        box = det[0].face_box() if det else (220.0, 140.0, 420.0, 380.0)
        crop, _ = crop_face(img, crop_window(box, spec.crop_scale, spec.crop_shift_y), analyzer.runtime.input_size)
        report["parser"] = await bench_parser(analyzer, crop)
        report["streams"] = []
        for n in _stream_counts(args.streams):
            report["streams"].append(await bench_streams(analyzer, jpegs, n, args.fps, duration))
            if not args.json:
                print(json.dumps(report["streams"][-1]), file=sys.stderr)
    finally:
        await analyzer.stop()
    report["load_avg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return report


def _stream_counts(text: str) -> list[int]:
    try:
        counts = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise DataError(f"--streams must be comma-separated integers, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise DataError(f"--streams needs counts >= 1, got {text!r}")
    return counts


def _stream_jpegs(frames: list[np.ndarray]) -> list[bytes]:
    """The frames letterboxed to 640x480 and JPEG'd, as a webcam client would send them."""
    import cv2

    return [cv2.imencode(".jpg", to_640x480(f), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for f in frames]


async def _bench_server(args: argparse.Namespace) -> dict[str, Any]:
    from identix_stream.commands.bench_server import bench_server_streams

    if not args.server.startswith(("ws://", "wss://")):
        raise DataError(f"--server must be a ws:// or wss:// URL, got {args.server!r}")
    counts = _stream_counts(args.streams)
    duration = 60.0 if args.long else args.duration
    jpegs = _stream_jpegs(read_video(args.video))
    report: dict[str, Any] = {"server": args.server, "video": str(args.video), "cpu_count": os.cpu_count(),
                              "cpu": cpu_description(), "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
                              "streams": []}
    for n in counts:
        report["streams"].append(await bench_server_streams(args.server, args.token, jpegs, n, args.fps, duration))
        if not args.json:
            print(json.dumps(report["streams"][-1]), file=sys.stderr)
    report["load_avg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return report


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cfg = _settings_defaults(args)
    if args.precision_check:
        result = precision_check(cfg["model"], args.data, cfg["device"], cfg["threads"], args.check_images)
        print(json.dumps(result, indent=None if args.json else 1))
        return 0 if result["ok"] else 1
    report = asyncio.run(_bench_server(args) if args.server else _bench(args, cfg))
    print(json.dumps(report, indent=None if args.json else 1))
    return 0
