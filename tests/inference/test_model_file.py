"""Model files: our format round-trips; public face-parsing.PyTorch checkpoints load with 19 -> 11."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from identix_stream.core.classes import FACEPARSING19_TO_11, NUM_CLASSES
from identix_stream.errors import ModelError
from identix_stream.inference.bisenet import BiSeNet
from identix_stream.inference.model_file import ParserSpec, load_parser, outputs_to_ours, save_parser


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_round_trip_keeps_weights_and_spec(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = BiSeNet(NUM_CLASSES).eval()
    spec = ParserSpec(metrics={"celebamask_val": {"mean_f1": 0.5}})
    path = tmp_path / "m.pt"
    save_parser(model, spec, path)
    loaded, loaded_spec = load_parser(path)
    assert loaded_spec.metrics == spec.metrics
    assert loaded_spec.input_size == 256 and loaded_spec.output_to_ours is None
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref, out = model(x), loaded(x)
    # stored in fp16: close, not identical
    assert torch.allclose(ref, out, atol=0.05, rtol=0.05)
    assert not any(k.startswith("conv_out16") for k in torch.load(path, weights_only=True)["state_dict"])


def test_public_checkpoint_layout_loads_and_maps_classes(tmp_path: Path) -> None:
    """A randomly initialised model saved exactly as face-parsing.PyTorch saves 79999_iter.pth."""
    torch.manual_seed(1)
    public = BiSeNet(19, spatial_path=False)
    state = public.state_dict()
    assert "cp.resnet.conv1.weight" in state and "ffm.convblk.conv.weight" in state
    assert not any(k.startswith("sp.") for k in state)
    path = tmp_path / "79999_iter.pth"
    torch.save(state, path)
    model, spec = load_parser(path)
    assert spec.n_outputs == 19 and spec.input_size == 512 and spec.output_to_ours is not None
    x = torch.randn(2, 3, 64, 64)
    public.eval()
    with torch.no_grad():
        ours = outputs_to_ours(model(x), spec)
        probs19 = public(x).softmax(1)
    assert ours.shape == (2, NUM_CLASSES, 64, 64)
    # hair in ours is exactly the public hair probability (id 17)
    assert torch.allclose(ours.exp()[:, 10], probs19[:, 17].clamp_min(1e-6), atol=1e-5)
    # every public class lands somewhere: probabilities still sum to one
    assert torch.allclose(ours.exp().sum(1), torch.ones(2, 64, 64), atol=1e-3)
    assert int(FACEPARSING19_TO_11[17]) == 10


def test_rejects_wrong_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read"):
        load_parser(bad)
    with pytest.raises(ModelError, match="not found"):
        load_parser(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(1)}, other)
    with pytest.raises(ModelError, match="neither"):
        load_parser(other)
