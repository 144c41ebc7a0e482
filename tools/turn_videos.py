"""Make sideways / upside-down check videos: real talking heads turned and re-encoded without rotation metadata.

A phone clip whose rotation flag was lost plays sideways; the service then sees a turned face in
every frame. Each clip's first ``--seconds`` are turned by ``--turns`` quarter turns counter-clockwise
(numpy's rot90) and written as H.264 MP4, so ``identix-stream eval-deepfake --real <out> ...`` shows
whether real people stay unaccused when turned (docs/deepfake.md, sessions 17-18).

Usage: python tools/turn_videos.py --out /tmp/side [--clips driving_d14:1,driving_d0:3] [--seconds 3.2]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from identix_stream.media.encoder import Mp4Writer
from identix_stream.media.video import VideoReader

ROOT = Path(__file__).resolve().parents[1]
# the five clips of docs/deepfake.md session 18: name -> quarter turns
MAX_PIXELS = 4096 * 4096
DEFAULT_CLIPS = "driving_d14:1,driving_d10:1,driving_d3:1,source_s20:1,driving_d0:3"
log = logging.getLogger("turn_videos")


def parse_clips(text: str) -> list[tuple[str, int]]:
    """``name:turns,...`` -> [(name, turns)]; turns must be 1, 2 or 3."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, turns = part.partition(":")
        if turns not in {"1", "2", "3"}:
            raise SystemExit(f"--clips: expected name:1, name:2 or name:3, got {part!r}")
        out.append((name, int(turns)))
    return out


def turn_clip(src: Path, dst: Path, turns: int, seconds: float) -> int:
    """Write ``src``'s first ``seconds`` (display rotation applied, as the service reads it) turned by
    ``turns`` more quarter turns to ``dst`` with no rotation flag; returns the frames written."""
    writer: Mp4Writer | None = None
    with VideoReader(src, MAX_PIXELS) as reader:
        try:
            for frame in reader.frames():
                if frame.timestamp > seconds or frame.image is None:
                    break
                image = np.rot90(frame.image, turns)
                h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2  # H.264 wants even sides
                if writer is None:
                    writer = Mp4Writer(dst, w, h, reader.info.fps or 30.0, crf=20)
                writer.write(np.ascontiguousarray(image[:h, :w]))
        finally:
            if writer is not None:
                writer.close()
    return 0 if writer is None else writer.frames


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clips", default=DEFAULT_CLIPS, help="talking-head clip:quarter-turns pairs")
    ap.add_argument("--seconds", type=float, default=3.2, help="length of each turned clip")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, turns in parse_clips(args.clips):
        src = args.data / "videos" / "talking_heads" / f"{name}.mp4"
        dst = args.out / f"{name}_k{turns}.mp4"
        log.info("%s: %d frames turned %d quarter(s)", dst, turn_clip(src, dst, turns, args.seconds), turns)


if __name__ == "__main__":
    main()
