"""``train-deepfake sbi`` end to end: batches built here or by worker processes, the seam head, the files a
run leaves and a resumed run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from identix_stream.inference.deepfake_nets import feature_side, load_sbi
from identix_stream.training.device import pick_device
from identix_stream.training.train_deepfake import PairSampler, TrainConfig, batch_stream


def _synthetic_items(n: int = 3) -> list:
    rng = np.random.default_rng(0)
    items = []
    for _ in range(n):
        image = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
        mask = np.zeros((160, 160), np.uint8)
        mask[50:120, 55:105] = 1
        items.append((image, mask, (55.0, 50.0, 105.0, 120.0)))
    return items


def _sampler(**cfg: object) -> PairSampler:
    items = _synthetic_items()
    config = TrainConfig(Path("."), Path("."), batch=8, input_size=64, **cfg)  # type: ignore[arg-type]
    return PairSampler(items, [], np.cumsum(np.ones(len(items))), config)


def test_batches_hold_reals_then_their_blends_and_seam_targets() -> None:
    x, y, targets = next(batch_stream(_sampler(seam_weight=1.0), seed=0, workers=0))
    assert x.shape == (8, 3, 64, 64) and x.dtype == torch.float32
    assert y.tolist() == [0.0, 1.0] * 4
    side = feature_side(64)
    assert targets is not None and targets.shape == (8, 2, side, side)
    assert targets[0::2].sum() == 0 and (targets[1::2, 0].amax((1, 2)) > 0.2).all()  # only the fakes are blended
    assert next(batch_stream(_sampler(), seed=0, workers=0))[2] is None  # no seam head, no targets


def test_worker_processes_build_different_batches() -> None:
    stream = batch_stream(_sampler(seam_weight=1.0), seed=3, workers=2)
    batches = [next(stream) for _ in range(4)]
    assert all(b[0].shape == (8, 3, 64, 64) and b[2] is not None for b in batches)
    assert len({float(b[0].sum()) for b in batches}) == 4  # each worker has its own random stream


def test_a_missing_or_unknown_device_is_refused() -> None:
    from identix_stream.errors import ConfigError

    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="--device 'gpu0'"):
        pick_device("gpu0")
    if not torch.cuda.is_available():
        assert pick_device("auto").type == "cpu"
        with pytest.raises(ConfigError, match="no CUDA device"):
            pick_device("cuda")


@pytest.mark.data
@pytest.mark.slow
def test_a_short_run_with_workers_and_seams_saves_and_resumes(tmp_path: Path, shared_data: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from identix_stream.cli import main

    out = tmp_path / "run"
    args = ["train-deepfake", "sbi", "--data", str(shared_data), "--out", str(out), "--minutes", "0.15",
            "--batch", "16", "--width", "8", "--workers", "2", "--seam-weight", "1", "--equalize-luma"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["step"] > 0 and 0.0 <= first["auc"] <= 1.0
    model, meta = load_sbi(out / "sbi_best.pt")
    assert meta["width"] == 8 and meta["seam_weight"] == 1.0 and meta["input_norm"] == "luma-equalized"
    assert not any(k.startswith("seam") for k in model.state_dict())  # the shipped file keeps the image head only
    last = torch.load(out / "sbi_last.pt", map_location="cpu", weights_only=False)
    assert "seam_head" in last and last["step"] == first["step"]
    # the same command again resumes; a longer budget adds steps
    assert main([*args[:6], "--minutes", "0.3", *args[8:]]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["step"] > first["step"]
    # resuming a seam run without the seam head is refused with a clear error
    assert main([a for a in args if a not in ("--seam-weight", "1")]) == 2
