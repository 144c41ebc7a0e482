"""Parser training inputs: CelebAMask masks reach training with the person's own left and right, and
a run can start from a shipped parser file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from identix_stream.core.classes import CELEBAMASK19_TO_11
from identix_stream.core.label_sides import swap_sides, viewer_sided
from identix_stream.errors import ModelError
from identix_stream.inference.model_file import ParserSpec, build_model, save_parser
from identix_stream.training.data import CELEBAMASK_VAL_FRACTION, is_validation, load_celebamask, read_label_png
from identix_stream.training.train_parsing import init_weights


@pytest.mark.data
def test_celebamask_viewer_side_masks_are_counted_and_corrected_on_load(shared_data: Path) -> None:
    root = shared_data / "face_parsing" / "celebamask_mini"
    raw = {p.stem: CELEBAMASK19_TO_11[read_label_png(p)] for p in sorted((root / "masks").glob("*.png"))}
    flagged = {name for name, labels in raw.items() if viewer_sided(labels)}
    in_val = {name for name in flagged if is_validation(name, CELEBAMASK_VAL_FRACTION)}
    # measured on the shared CelebAMask-mini set (900 masks): 49 train, 10 held-out (one by its brows)
    assert (len(flagged) - len(in_val), len(in_val)) == (49, 10)

    val = load_celebamask(root, "val")
    assert len(val) == 104 and not any(viewer_sided(s.labels) for s in val)
    for sample in val:
        expected = swap_sides(raw[sample.name]) if sample.name in flagged else raw[sample.name]
        np.testing.assert_array_equal(sample.labels, expected)


def test_init_weights_copies_a_shipped_file_and_rejects_another_architecture(tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = ParserSpec(backbone="resnet18", input_size=256)
    source = build_model(spec)
    path = tmp_path / "parser.pt"
    save_parser(source, spec, path)

    target = build_model(spec)
    init_weights(target, spec, path)
    name = "cp.resnet.conv1.weight"
    # shipped files are fp16: the copy matches to half precision
    torch.testing.assert_close(target.state_dict()[name], source.state_dict()[name].half().float())

    with pytest.raises(ModelError, match="does not match"):
        init_weights(build_model(ParserSpec(backbone="resnet18", input_size=512)),
                     ParserSpec(backbone="resnet18", input_size=512), path)
