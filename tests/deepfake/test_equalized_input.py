"""Luma-equalised blend-CNN input: exposure stops mattering, and the model file says which input it wants."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from identix_stream.inference.deepfake_nets import LUMA_EQUALIZED, equalize_luma, load_sbi, save_sbi
from identix_stream.inference.deepfake_scorer import DeepfakeScorer

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"


def _face_rgb(shared_data: Path) -> np.ndarray:
    path = sorted((shared_data / "deepfake" / "gan_vs_real_val" / "real").iterdir())[0]
    bgr = cv2.resize(np.asarray(cv2.imread(str(path))), (128, 128), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _darker(rgb: np.ndarray, gamma: float = 1.8, gain: float = 0.6) -> np.ndarray:
    """A strictly monotone luma change: underexposed, lower contrast."""
    lut = np.clip(255 * gain * (np.arange(256) / 255) ** gamma, 0, 255).astype(np.uint8)
    return cv2.LUT(rgb, lut)


@pytest.mark.data
def test_equalised_luma_spans_the_range_and_ignores_exposure(shared_data: Path) -> None:
    face = _face_rgb(shared_data)
    dark = _darker(face)
    luma = cv2.cvtColor(dark, cv2.COLOR_RGB2YCrCb)[..., 0]
    assert luma.max() < 160  # the probe really is dark
    eq_face, eq_dark = equalize_luma(np.stack([face, dark]))
    eq_luma = cv2.cvtColor(eq_dark, cv2.COLOR_RGB2YCrCb)[..., 0]
    assert eq_luma.min() < 20 and eq_luma.max() > 235
    # the same picture at two exposures comes out nearly the same (quantisation only)
    diff = np.abs(eq_face.astype(int) - eq_dark.astype(int)).mean()
    assert diff < 0.25 * np.abs(face.astype(int) - dark.astype(int)).mean()
    assert equalize_luma(np.stack([face])).dtype == np.uint8


@pytest.mark.data
def test_scorer_equalises_only_for_a_model_file_that_asks(tmp_path: Path, shared_data: Path) -> None:
    model, _ = load_sbi(MODELS / "deepfake_sbi.pt")
    for name in ("deepfake_spectral.json", "deepfake_boundary.json"):
        shutil.copy(MODELS / name, tmp_path / name)
    # 128-px faces, shown to the scorer pixel-doubled: its 256 -> 128 area resize gives them back exactly
    dark_rgb = _darker(_face_rgb(shared_data))
    equalised_rgb = equalize_luma(np.stack([dark_rgb]))[0]

    def crop(rgb: np.ndarray) -> np.ndarray:
        return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (256, 256), interpolation=cv2.INTER_NEAREST)

    dark, equalised = crop(dark_rgb), crop(equalised_rgb)
    no_labels = [np.zeros((256, 256), np.uint8)]

    def blend(meta: dict[str, object], face: np.ndarray) -> float:
        save_sbi(model, tmp_path / "deepfake_sbi.pt", meta)
        _, loaded = load_sbi(tmp_path / "deepfake_sbi.pt")
        assert loaded.get("input_norm") == meta.get("input_norm")
        return float(DeepfakeScorer.load(tmp_path, "cpu").score([face], no_labels)[0]["blend"])

    asks = blend({"width": 16, "input_norm": LUMA_EQUALIZED}, dark)
    plain: dict[str, object] = {"width": 16}
    # a file that asks sees the equalised face; one that does not sees the pixels as they are
    assert asks == pytest.approx(blend(plain, equalised), abs=1e-5)
    assert abs(asks - blend(plain, dark)) > 1e-3
