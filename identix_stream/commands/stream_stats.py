"""Per-stream figures shared by the in-process bench and the one that drives a running server."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def stream_summary(counts: dict[str, int], latencies: list[tuple[float, float]], elapsed: float,
                   duration: float) -> dict[str, Any]:
    """``counts`` (sent, delivered, dropped, overloaded, errors) and (send time since start, latency
    ms) per delivered result -> results/s, latency p50/p95, drop rate and drift: the median latency of
    the last third of the run minus that of the first third (a queue that grows shows as drift)."""
    lat = [v for _, v in latencies]
    third = duration / 3
    first = [v for t, v in latencies if t < third]
    last = [v for t, v in latencies if t >= 2 * third]
    drift = (statistics.median(last) - statistics.median(first)) if first and last else None
    return {
        **counts,
        "results_per_s": round(counts["delivered"] / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "drop_rate": round((counts["sent"] - counts["delivered"]) / max(counts["sent"], 1), 3),
        "drift_ms": None if drift is None else round(drift, 1),
    }


def streams_summary(n: int, fps: float, duration: float, per_stream: list[dict[str, Any]]) -> dict[str, Any]:
    """One stream-count setting: its per-stream figures and the worst of them."""
    return {
        "streams": n,
        "fps_in": fps,
        "duration_s": duration,
        "per_stream": per_stream,
        "min_results_per_s": min(s["results_per_s"] for s in per_stream),
        "max_p95_ms": max((s["p95_ms"] or 0) for s in per_stream),
        "max_drift_ms": max((s["drift_ms"] or 0) for s in per_stream),
    }
