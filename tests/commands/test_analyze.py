"""``identix-stream analyze`` end to end (real model, real files), in-process."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from identix_stream.cli import main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.data, pytest.mark.slow]


@pytest.fixture(scope="module")
def model_env(parser_model: Path) -> dict[str, str]:
    return {"IDENTIX_MODEL_PATH": str(parser_model), "IDENTIX_TORCH_THREADS": "1", "IDENTIX_DEVICE": "cpu"}


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str],
            *args: str) -> tuple[int, str, str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(["analyze", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_image_json_and_overlay(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                model_env: dict[str, str], shared_data: Path, tmp_path: Path) -> None:
    photo = shared_data / "multiperson/two_people.jpg"
    out = tmp_path / "overlay.png"
    code, stdout, _ = run_cli(monkeypatch, capsys, model_env, str(photo), "--json", "--out", str(out))
    assert code == 0
    report = json.loads(stdout)
    assert report["kind"] == "image" and report["status"] == "ok" and len(report["faces"]) >= 2
    drawn = cv2.imread(str(out))
    original = cv2.imread(str(photo))
    assert drawn is not None and original is not None and drawn.shape == original.shape
    x1, y1, x2, y2 = (int(v) for v in report["faces"][0]["box"])
    changed = np.abs(drawn.astype(int) - original.astype(int)).sum(2) > 0
    assert changed[y1:y2, x1:x2].mean() > 0.3  # the mask is drawn on the face


def test_video_summary_stride_and_annotated_mp4(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                model_env: dict[str, str], shared_data: Path, tmp_path: Path) -> None:
    clip = shared_data / "videos/talking_heads/driving_d18.mp4"  # 216 frames, one person
    out = tmp_path / "annotated.mp4"
    code, stdout, stderr = run_cli(monkeypatch, capsys, model_env, str(clip), "--json", "--stride", "8",
                                   "--out", str(out))
    assert code == 0
    report = json.loads(stdout)
    assert (report["stride"], report["frames_decoded"], report["frames_analyzed"]) == (8, 216, 27)
    assert [f["frame"] for f in report["frames"]] == list(range(0, 216, 8))
    (person,) = report["summary"]
    assert person["frames_seen"] >= 25
    assert report["timing"]["analysis_s"] > 0 and report["out_frames"] == 216
    assert "analyse" in stderr  # the progress bar
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name in ("h264", "mpeg4")
        assert sum(1 for _ in c.decode(video=0)) == 216
    # the human summary names the person and the stride
    code, stdout, _ = run_cli(monkeypatch, capsys, model_env, str(clip), "--stride", "54", "--no-progress")
    assert code == 0 and "person #1" in stdout and "stride 54" in stdout
    # ... and what each factor saw: 4 frames over ~5.4 s are too few for the temporal factors to speak yet
    assert "    blend 0." in stdout and "    jitter (not yet): needs 10 frames (4 so far)" in stdout
    assert "    blink (not yet): " in stdout and "speaks after 10 s" in stdout


def test_image_summary_says_why_a_factor_was_not_read(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str],
                                                      model_env: dict[str, str], shared_data: Path) -> None:
    crop = shared_data / "deepfake/dfdc_crops/real/abarnvbtwb-003-00.png"  # 94x121: under the fingerprint's 160 px
    code, stdout, _ = run_cli(monkeypatch, capsys, model_env, str(crop))
    assert code == 0 and "face #1" in stdout
    assert "    gan fingerprint: not read: the image is 94 px on its short side" in stdout
    assert "    blend 0." in stdout


@pytest.mark.parametrize("name", ["empty", "audio"])
def test_bad_files_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                          model_env: dict[str, str], tmp_path: Path, name: str) -> None:
    path = tmp_path / "bad.mp4"
    if name == "empty":
        path.write_bytes(b"")
    else:
        from tests.media.videofiles import write_audio_only

        write_audio_only(path, "mp4", "aac")
    code, _, _ = run_cli(monkeypatch, capsys, model_env, str(path))
    assert code == 2
