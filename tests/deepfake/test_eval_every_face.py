"""``eval-deepfake --every-face`` scores every person of a group photo as its own item; without it a photo
is one item, its most confident face."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from identix_stream.core.tracking import iou

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.data, pytest.mark.slow]
GROUP_PHOTOS = ("two_people.jpg", "dlib_2008_001322.jpg")


def test_every_face_of_a_group_photo_is_an_item(tmp_path: Path, shared_data: Path, parser_model: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from identix_stream.cli import main

    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    for name in GROUP_PHOTOS:
        shutil.copy(shared_data / "multiperson" / name, tmp_path / "real")
    shutil.copy(sorted((shared_data / "deepfake" / "gan_vs_real_val" / "fake").iterdir())[0], tmp_path / "fake")
    base = ["eval-deepfake", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--json",
            "--model", str(parser_model), "--models-dir", str(ROOT / "models")]
    assert main(base) == 0
    one = json.loads(capsys.readouterr().out)
    assert main([*base, "--every-face"]) == 0
    every = json.loads(capsys.readouterr().out)

    assert one["counts"] == {"real": len(GROUP_PHOTOS), "fake": 1}
    real_items = [i for i in every["items"] if i["label"] == "real"]
    assert every["counts"] == {"real": len(real_items), "fake": 1}
    for name in GROUP_PHOTOS:
        items = [i for i in real_items if i["file"] == name]
        assert len(items) >= 2, name  # both photos hold several people
        assert len(items) == items[0]["faces"]
        assert [i["face"] for i in items] == list(range(len(items)))
        boxes = [tuple(i["box"]) for i in items]
        assert all(iou(a, b) < 0.3 for k, a in enumerate(boxes) for b in boxes[k + 1:]), boxes  # distinct people
        single = next(i for i in one["items"] if i["file"] == name)
        assert "face" not in single and single["faces"] == len(items)
        assert items[0]["p_fake"] == single["p_fake"]  # the first is the face scored without the option
        assert len({round(i["p_fake"], 6) for i in items}) > 1, name  # each person read on their own
