"""Parser runtime: probabilities, input checks, and the accuracy gate for faster precisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from identix_stream.commands.bench import precision_check
from identix_stream.errors import ConfigError, InvalidInput
from identix_stream.inference.parser_runtime import MAX_F1_LOSS, ParserRuntime, candidate_precisions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_path(parser_model: Path) -> Path:
    return parser_model


def test_every_cpu_precision_gives_the_same_probabilities(model_path: Path) -> None:
    torch.set_num_threads(1)
    rt = ParserRuntime.load(model_path, "cpu", "fp32")
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 255, (256, 256, 3), dtype=np.uint8) for _ in range(2)]
    ref = rt.parse(crops)
    assert ref.shape == (2, 11, 256, 256)
    assert torch.allclose(ref.sum(1), torch.ones(2, 256, 256), atol=1e-4)
    for prec in candidate_precisions(torch.device("cpu"), model_path):
        rt.precision = prec
        rt._set_layout()
        out = rt.parse(crops)
        agree = (out.max(1).indices == ref.max(1).indices).float().mean().item()
        assert agree > (0.999 if prec.endswith("fp32") else 0.9), (prec, agree)
    with pytest.raises(InvalidInput):
        rt.parse([np.zeros((128, 128, 3), np.uint8)])
    with pytest.raises(ConfigError):
        ParserRuntime.load(model_path, "cpu", "int4")


@pytest.mark.data
@pytest.mark.slow
def test_faster_precisions_keep_mean_f1_within_one_point(model_path: Path, shared_data: Path) -> None:
    result = precision_check(model_path, shared_data, "cpu", 1, limit=16)
    assert result["images"] == 16
    base = result["fp32"]["mean_f1"]
    assert base is not None and base > 0.3, result  # a trained model, not noise
    for prec in candidate_precisions(torch.device("cpu"), model_path):
        assert result[prec]["mean_f1"] >= base - MAX_F1_LOSS, result
    assert result["ok"]
