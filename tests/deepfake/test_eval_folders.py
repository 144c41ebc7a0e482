"""``eval-deepfake`` finds the images and videos of a folder's subfolders too, names each item by its
path below the folder, and leaves hidden files out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from identix_stream.commands.eval_deepfake import _files
from identix_stream.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_files_walks_subfolders_and_skips_hidden_and_other_files(tmp_path: Path) -> None:
    wanted = [_touch(tmp_path / "a.JPG"), _touch(tmp_path / "id1" / "clip.mp4"),
              _touch(tmp_path / "id1" / "deeper" / "f.png"), _touch(tmp_path / "id2" / "f.png")]
    _touch(tmp_path / ".cache" / "thumb.png")
    _touch(tmp_path / "id2" / ".hidden.png")
    _touch(tmp_path / "notes.txt")
    (tmp_path / "folder.png").mkdir()  # a folder named like an image is not a file
    assert _files(tmp_path) == sorted(wanted)


def test_files_refuses_a_folder_without_media(tmp_path: Path) -> None:
    _touch(tmp_path / "sub" / "notes.txt")
    _touch(tmp_path / ".hidden" / "x.png")
    with pytest.raises(DataError, match="no images or videos"):
        _files(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        _files(tmp_path / "missing")


@pytest.mark.data
@pytest.mark.slow
def test_items_are_named_by_their_path_below_the_folder(tmp_path: Path, shared_data: Path, parser_model: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from identix_stream.cli import main

    real_photo = sorted((shared_data / "deepfake" / "gan_vs_real_val" / "real").iterdir())[0]
    gan_face = sorted((shared_data / "deepfake" / "gan_vs_real_val" / "fake").iterdir())[0]
    for sub in ("person_a", "person_b"):  # the same file name in two subfolders
        (tmp_path / "real" / sub).mkdir(parents=True)
        shutil.copy(real_photo, tmp_path / "real" / sub / "face.png")
    (tmp_path / "fake" / "gen").mkdir(parents=True)
    shutil.copy(gan_face, tmp_path / "fake" / "gen" / gan_face.name)
    (tmp_path / "fake" / ".trash").mkdir()
    shutil.copy(real_photo, tmp_path / "fake" / ".trash" / "face.png")

    assert main(["eval-deepfake", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--json",
                 "--model", str(parser_model), "--models-dir", str(ROOT / "models")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"real": 2, "fake": 1}
    assert sorted(i["file"] for i in report["items"] if i["label"] == "real") == ["person_a/face.png",
                                                                                  "person_b/face.png"]
    assert [i["file"] for i in report["items"] if i["label"] == "fake"] == [f"gen/{gan_face.name}"]
    a, b = (i for i in report["items"] if i["label"] == "real")
    assert a["p_fake"] == pytest.approx(b["p_fake"])  # the same photo scores the same wherever it lies
