"""Blend-CNN files trained at another input size (``train-deepfake sbi --input-size``): the scorer
feeds them crops of their own size, and a bad size in a file or on the command line is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from identix_stream.errors import ModelError
from identix_stream.inference.deepfake_nets import input_size, load_sbi, resize_for_sbi, save_sbi, sbi_input
from identix_stream.inference.deepfake_scorer import DeepfakeScorer
from identix_stream.inference.sbi_spec import SBI_INPUT

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"


def _models_dir_with(tmp_path: Path, meta: dict[str, object]) -> Path:
    model, _ = load_sbi(MODELS / "deepfake_sbi.pt")
    save_sbi(model, tmp_path / "deepfake_sbi.pt", meta)
    for name in ("deepfake_spectral.json", "deepfake_boundary.json"):
        shutil.copy(MODELS / name, tmp_path / name)
    return tmp_path


def test_files_without_a_size_are_128_px() -> None:
    assert input_size({"width": 16}) == SBI_INPUT == 128
    assert input_size({"input_size": 192}) == 192


@pytest.mark.parametrize("bad", [300, 32, "192", 192.0, None])
def test_a_file_with_a_bad_input_size_is_refused_at_load(tmp_path: Path, bad: object) -> None:
    model, _ = load_sbi(MODELS / "deepfake_sbi.pt")
    save_sbi(model, tmp_path / "deepfake_sbi.pt", {"width": 16, "input_size": bad})
    with pytest.raises(ModelError, match=f"input_size .*got {bad!r}"):
        load_sbi(tmp_path / "deepfake_sbi.pt")


@pytest.mark.data
def test_the_scorer_feeds_a_file_its_own_input_size(tmp_path: Path, shared_data: Path) -> None:
    path = sorted((shared_data / "deepfake" / "gan_vs_real_val" / "real").iterdir())[0]
    crop = cv2.resize(np.asarray(cv2.imread(str(path))), (256, 256), interpolation=cv2.INTER_AREA)
    labels = [np.zeros((256, 256), np.uint8)]
    model, _ = load_sbi(MODELS / "deepfake_sbi.pt")

    def direct(size: int) -> float:
        with torch.inference_mode():
            return float(torch.sigmoid(model(sbi_input(resize_for_sbi([crop], size)))).item())

    scored = {}
    for size in (96, 192):
        scorer = DeepfakeScorer.load(_models_dir_with(tmp_path / str(size), {"width": 16, "input_size": size}))
        assert scorer.sbi_size == size
        scored[size] = scorer.score([crop], labels)[0]["blend"]
        assert scored[size] == pytest.approx(direct(size), abs=1e-5)
    # the same weights really saw different pixels
    assert abs(scored[96] - scored[192]) > 1e-4
