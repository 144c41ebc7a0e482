"""Symlink our held-out CelebAMask validation split (the one train-parsing never trains on) into a
folder pair usable by ``identix-stream eval-parsing --images OUT/images --masks OUT/masks``."""

from __future__ import annotations

import argparse
from pathlib import Path

from identix_stream.training.data import CELEBAMASK_VAL_FRACTION, is_validation


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data/face_parsing/celebamask_mini"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--val-fraction", type=float, default=CELEBAMASK_VAL_FRACTION)
    args = p.parse_args()
    for sub in ("images", "masks"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    n = 0
    for img in sorted((args.data / "images").glob("*.jpg")):
        if not is_validation(img.stem, args.val_fraction):
            continue
        for src, dst in ((img, args.out / "images" / img.name),
                         (args.data / "masks" / f"{img.stem}.png", args.out / "masks" / f"{img.stem}.png")):
            if not dst.exists():
                dst.symlink_to(src.resolve())
        n += 1
    print(f"{n} validation pairs linked under {args.out}")


if __name__ == "__main__":
    main()
