"""``eval-deepfake --downscale/--upscale/--crf/--jpeg`` scores worse copies of real media through the service's
pipeline, says so in the report and leaves no copies behind."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.media.videofiles import TALKING

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_degraded_copies_are_scored_and_removed(tmp_path: Path, shared_data: Path, parser_model: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from identix_stream.cli import main

    scratch = tmp_path / "scratch"  # where the command's temporary copies go
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    (tmp_path / "real" / "speaker").mkdir(parents=True)
    (tmp_path / "fake").mkdir()
    shutil.copy(shared_data / TALKING, tmp_path / "real" / "speaker")
    for p in sorted((shared_data / "deepfake" / "gan_vs_real_val" / "fake").iterdir())[:2]:
        shutil.copy(p, tmp_path / "fake")
    base = ["eval-deepfake", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--json",
            "--model", str(parser_model), "--models-dir", str(ROOT / "models"), "--max-seconds", "2",
            "--stride", "3", "--min-frames", "3"]
    reports = {}
    for name, extra in (("as is", []), ("worse", ["--downscale", "0.5", "--crf", "32", "--jpeg", "50"]),
                        ("enlarged", ["--upscale", "1.5"])):
        assert main(base + extra) == 0
        reports[name] = json.loads(capsys.readouterr().out)
    worse, as_is, enlarged = reports["worse"], reports["as is"], reports["enlarged"]
    assert enlarged["degradation"] == {"scale": 1.5, "crf": None, "jpeg_quality": None}
    assert enlarged["counts"] == as_is["counts"]
    for a, e in zip(sorted(as_is["items"], key=lambda i: i["file"]), sorted(enlarged["items"], key=lambda i: i["file"]),
                    strict=True):
        assert a["factors"]["blend"] != e["factors"]["blend"], a["file"]  # the enlarged copy was scored
        if e["label"] == "real":  # a video: its frames are read as they are
            assert "gan_fingerprint" in e["factors"]
        else:  # an enlarged GAN photo may lose its fingerprint (it reads generated once shrunk back)
            assert "gan_fingerprint" in e["factors"] or e["state"] != "likely_real"
    for report in reports.values():  # a video (or its copy) is named by its path below --real
        assert [i["file"] for i in report["items"] if i["label"] == "real"] == [f"speaker/{Path(TALKING).name}"]
    assert worse["degradation"] == {"scale": 0.5, "crf": 32, "jpeg_quality": 50}
    assert "degradation" not in as_is
    # the person is still found and tracked in the half-size clip, and both GAN faces in the small JPEGs
    assert worse["counts"] == as_is["counts"] == {"real": 1, "fake": 2}
    assert all(i["face_detected"] for i in worse["items"] if i["label"] == "fake")
    # what was scored is the worse copy: every item's evidence moved
    pairs = zip(sorted(as_is["items"], key=lambda i: i["file"]), sorted(worse["items"], key=lambda i: i["file"]),
                strict=True)
    for a, w in pairs:
        assert a["file"] == w["file"]
        assert a["factors"]["blend"] != w["factors"]["blend"], a["file"]
        assert "gan_fingerprint" in a["factors"] or a["state"] != "likely_real"  # see the enlargement check
        if w["label"] == "real":  # the clip at 256x256 still holds the fingerprint's 160-px square
            assert a["factors"]["gan_fingerprint"] != w["factors"]["gan_fingerprint"]
        else:  # the 300-px GAN images at 150 px do not: no fingerprint, and never cleared as real
            assert "gan_fingerprint" not in w["factors"]
            assert w["state"] != "likely_real" and w["p_fake"] >= 1 / 3 - 1e-6
    assert not list(scratch.glob("identix-degraded-*"))
    assert [p.name for p in (tmp_path / "real" / "speaker").iterdir()] == [Path(TALKING).name]  # input untouched
