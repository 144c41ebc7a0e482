"""Make face-swap check videos: a held-out CelebAMask face swapped into real talking-head clips.

For each clip, the largest face of every frame is replaced by a donor face (parsing mask + Lab
colour transfer, ``training/face_swap.py``) and the result is written as H.264 MP4, so
``identix-stream eval-deepfake --real <clips> --fake <out>`` scores real and swapped people by the
same pipeline. Donors come from our held-out CelebAMask split (never trained on by the blend CNN).

Usage: python tools/make_swap_videos.py --out /tmp/swaps [--clips driving_d10,...] [--seconds 6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np

from identix_stream.inference.detector import FaceDetector
from identix_stream.inference.parser_runtime import ParserRuntime
from identix_stream.media.encoder import Mp4Writer
from identix_stream.training.data import load_celebamask
from identix_stream.training.face_swap import donor_crop, swap_frames
from identix_stream.training.video_crops import TALKING_HEADS_CHECK

ROOT = Path(__file__).resolve().parents[1]


def donors(celeb: Path, n: int, first: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(256 crop, labels) of n faces of our held-out CelebAMask split, from index ``first``."""
    return [donor_crop(sample.image, sample.labels) for sample in load_celebamask(celeb, "val")[first:first + n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--clips", default=",".join(TALKING_HEADS_CHECK), help="talking-head clip names")
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each swapped clip")
    ap.add_argument("--first-donor", type=int, default=0,
                    help="index of the first donor in the held-out split (use different donors for fit and check sets)")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "face_parser.pt")
    args = ap.parse_args()
    clips = [c for c in args.clips.split(",") if c]
    faces = donors(args.data / "face_parsing" / "celebamask_mini", len(clips), args.first_donor)
    runtime = ParserRuntime.load(args.model, "cpu", "fp32")
    detector = FaceDetector()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for clip, (donor, donor_labels) in zip(clips, faces, strict=False):
            src = args.data / "videos" / "talking_heads" / f"{clip}.mp4"
            with av.open(str(src)) as container:
                stream = container.streams.video[0]
                fps = float(stream.average_rate or 25)
                frames = []
                for frame in container.decode(video=0):
                    if len(frames) >= args.seconds * fps:
                        break
                    frames.append(frame.to_ndarray(format="bgr24"))
            h, w = frames[0].shape[:2]
            writer = Mp4Writer(args.out / f"swap_{clip}.mp4", w, h, fps)
            try:
                for swapped in swap_frames(frames, donor, donor_labels, detector, runtime):
                    writer.write(swapped)
            finally:
                writer.close()
            print(f"{args.out / f'swap_{clip}.mp4'}: {len(frames)} frames, {w}x{h} @ {fps:.0f} fps")
    finally:
        detector.close()


if __name__ == "__main__":
    main()
