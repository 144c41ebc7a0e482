"""tools/eval_with_fusion.py puts a fusion report's fit in place of the shipped weights for one run and
refuses reports it cannot use."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from identix_stream.core import deepfake_fusion
from identix_stream.errors import DataError

TOOL = Path(__file__).resolve().parents[2] / "tools" / "eval_with_fusion.py"
FACTORS = {"blend": 0.8, "boundary": 0.6, "gan_fingerprint": 0.1}


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_with_fusion", TOOL)
    if spec is None or spec.loader is None:
        raise ImportError(TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fusion_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tool writes the module's tables: give each test copies that are put back afterwards."""
    monkeypatch.setattr(deepfake_fusion, "FUSION_GROUPS", dict(deepfake_fusion.FUSION_GROUPS))
    monkeypatch.setattr(deepfake_fusion, "RESOLUTION_RELIABILITY", dict(deepfake_fusion.RESOLUTION_RELIABILITY))


def report(swap: list[object], knots: list[list[float]]) -> dict[str, object]:
    return {"groups": {"swap": swap, "synthetic": list(deepfake_fusion.FUSION_GROUPS["synthetic"])},
            "resolution": {"knots": {"swap": knots, "synthetic": [[28.0, 0.5], [177.0, 1.0]]}}}


@pytest.mark.usefixtures("fusion_tables")
def test_the_report_fit_replaces_the_named_group_only() -> None:
    tool = load_tool()
    synthetic = deepfake_fusion.FUSION_GROUPS["synthetic"]
    before, _ = deepfake_fusion.frame_log_odds(FACTORS, face_px=50.0)
    tool.apply_report(report([2.0, {"blend": 3.0}], [[28.0, 0.1], [64.0, 1.0]]), ["swap"])
    assert deepfake_fusion.FUSION_GROUPS["swap"] == (2.0, {"blend": 3.0})
    assert deepfake_fusion.FUSION_GROUPS["synthetic"] == synthetic
    assert deepfake_fusion.RESOLUTION_RELIABILITY["swap"] == ((28.0, 0.1), (64.0, 1.0))
    assert deepfake_fusion.reliability("swap", 46.0) == pytest.approx(0.55)
    after, contributions = deepfake_fusion.frame_log_odds(FACTORS, face_px=50.0)
    assert after != before
    assert "boundary" not in contributions  # the fitted group has no boundary weight


@pytest.mark.usefixtures("fusion_tables")
def test_unusable_reports_are_refused(tmp_path: Path) -> None:
    tool = load_tool()
    shipped = dict(deepfake_fusion.FUSION_GROUPS)
    with pytest.raises(DataError, match="unknown fusion group 'blend'"):
        tool.apply_report(report([1.0, {"blend": 1.0}], [[28.0, 1.0]]), ["blend"])
    no_swap = report([1.0, {"blend": 1.0}], [[28.0, 1.0]])
    del no_swap["groups"]["swap"]  # type: ignore[attr-defined]
    with pytest.raises(DataError, match="no fit for group 'swap'"):
        tool.apply_report(no_swap, ["swap"])
    assert shipped == deepfake_fusion.FUSION_GROUPS
    bad = tmp_path / "eval.json"
    bad.write_text(json.dumps({"auc": 0.9}))  # an eval-deepfake report, not a fusion fit
    with pytest.raises(DataError, match="not a train-deepfake fusion report"):
        tool.read_report(bad)
    (tmp_path / "cut.json").write_text("{\"groups\": ")
    with pytest.raises(DataError, match="cannot read fusion report"):
        tool.read_report(tmp_path / "cut.json")
