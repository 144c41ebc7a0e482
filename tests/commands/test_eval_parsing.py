"""eval-parsing: scoring logic with an oracle, and the real CLI on real labelled images."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from identix_stream.commands.eval_parsing import evaluate
from identix_stream.core.classes import CELEBAMASK19_TO_11
from identix_stream.core.label_sides import canonical_sides
from identix_stream.training.data import read_label_png

pytestmark = pytest.mark.data


def _subset(src: Path, dst: Path, n: int) -> tuple[Path, Path]:
    images, masks = dst / "images", dst / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for img in sorted((src / "images").glob("*.jpg"))[:n]:
        shutil.copy(img, images / img.name)
        shutil.copy(src / "masks" / f"{img.stem}.png", masks / f"{img.stem}.png")
    return images, masks


def test_oracle_scores_perfectly_and_mislabels_are_caught(shared_data: Path, tmp_path: Path) -> None:
    images, masks = _subset(shared_data / "face_parsing" / "celebamask_mini", tmp_path, 3)
    truths = [CELEBAMASK19_TO_11[read_label_png(m)] for m in sorted(masks.glob("*.png"))]
    served = iter(truths)
    perfect = evaluate(lambda image: next(served), images, masks, "celebamask19")
    assert perfect["mean_f1"] == 1.0 and perfect["pixel_acc"] == 1.0 and perfect["n_images"] == 3

    # swapping left and right eyebrows must cost exactly those classes
    def swapped(truth: np.ndarray) -> np.ndarray:
        out = truth.copy()
        out[truth == 2], out[truth == 3] = 3, 2
        return out

    served = iter(swapped(t) for t in truths)
    wrong = evaluate(lambda image: next(served), images, masks, "celebamask19")
    per_class = wrong["per_class"]
    assert per_class["left_eyebrow"]["f1"] == 0.0 and per_class["right_eyebrow"]["f1"] == 0.0  # type: ignore[index]
    assert per_class["nose"]["f1"] == 1.0  # type: ignore[index]


def test_fix_sides_grades_viewer_side_masks_by_the_person_s_sides(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "face_parsing" / "celebamask_mini"
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    # 042b44c1...: a held-out mask whose "left" eye and brow are on the image's left (viewer side)
    for name in ("042b44c1ff154ba2ac66fc71c0db4e00", sorted(p.stem for p in (root / "masks").glob("*.png"))[0]):
        shutil.copy(root / "images" / f"{name}.jpg", images / f"{name}.jpg")
        shutil.copy(root / "masks" / f"{name}.png", masks / f"{name}.png")
    truths = [canonical_sides(CELEBAMASK19_TO_11[read_label_png(m)]) for m in sorted(masks.glob("*.png"))]

    served = iter(truths)
    fixed = evaluate(lambda image: next(served), images, masks, "celebamask19", fix_sides=True)
    assert fixed["mean_f1"] == 1.0 and fixed["sides_fixed"] == 1

    served = iter(truths)
    as_given = evaluate(lambda image: next(served), images, masks, "celebamask19")
    assert as_given["sides_fixed"] is None
    assert as_given["per_class"]["left_eye"]["f1"] < 0.8  # type: ignore[index]
    assert as_given["per_class"]["nose"]["f1"] == 1.0  # type: ignore[index]


@pytest.mark.slow
def test_cli_on_lfw_parts_with_the_shipped_model(shared_data: Path, parser_model: Path, tmp_path: Path) -> None:
    images, masks = _subset(shared_data / "face_parsing" / "lfw_parts" / "val", tmp_path, 8)
    out = subprocess.run(
        [sys.executable, "-m", "identix_stream.cli", "eval-parsing", "--images", str(images), "--masks", str(masks),
         "--labels", "lfw3", "--json", "--model", str(parser_model)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    result = json.loads(out.stdout)
    assert result["n_images"] == 8 and result["crop"] == "detect"
    assert set(result["per_class"]) == {"background", "face", "hair"}
    assert result["pixel_acc"] > 0.85


def test_cli_reports_missing_folders(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "identix_stream.cli", "eval-parsing", "--images", str(tmp_path / "nope"),
         "--masks", str(tmp_path), "--labels", "lfw3", "--crop", "whole", "--model", str(tmp_path / "m.pt")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "not found" in out.stderr or "not a folder" in out.stderr
