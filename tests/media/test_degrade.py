"""Worse copies of real inputs (media/degrade.py): resized, re-encoded, checked on real clips and photos."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from identix_stream.errors import DataError, InvalidInput
from identix_stream.media.degrade import Degradation, degrade_image, degrade_video, rescale
from tests.media.videofiles import TALKING, write_audio_only

MAX_PIXELS = 4096 * 4096


@pytest.mark.parametrize(("kwargs", "shown"), [
    ({"scale": 0.0}, "0.0"), ({"scale": 4.5}, "4.5"), ({"scale": -0.5}, "-0.5"),
    ({"crf": 52}, "52"), ({"crf": -1}, "-1"), ({"jpeg_quality": 0}, "0"), ({"jpeg_quality": 101}, "101"),
])
def test_bad_settings_are_refused_with_the_value(kwargs: dict[str, float], shown: str) -> None:
    with pytest.raises(DataError, match=shown):
        Degradation(**kwargs)  # type: ignore[arg-type]


def test_the_default_changes_nothing() -> None:
    d = Degradation()
    assert not d.active
    img = np.random.default_rng(0).integers(0, 256, (61, 83, 3), dtype=np.uint8)
    assert degrade_image(img, d) is img


def test_rescale_keeps_the_aspect_with_even_sides_and_a_floor() -> None:
    img = np.zeros((908, 480, 3), np.uint8)  # a portrait phone clip's frame
    assert rescale(img, 0.5).shape == (454, 240, 3)
    assert rescale(img, 0.333).shape == (302, 160, 3)
    assert rescale(np.zeros((40, 30, 3), np.uint8), 0.1).shape == (16, 16, 3)
    assert rescale(img, 2.25).shape == (2042, 1080, 3)


def test_an_enlarged_copy_is_smooth_where_the_original_was_sharp() -> None:
    """Bicubic upscaling, as an editor's export does: the copy holds the same picture with no new detail."""
    img = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    d = Degradation(scale=2.0)
    assert d.changes_images and d.changes_videos
    big = degrade_image(img, d)
    assert big.shape == (120, 160, 3)
    back = cv2.resize(big, (80, 60), interpolation=cv2.INTER_AREA)
    assert np.abs(back.astype(int) - img.astype(int)).mean() < 25
    neighbour_step = np.abs(np.diff(big.astype(int), axis=1)).mean()
    assert neighbour_step < 0.7 * np.abs(np.diff(img.astype(int), axis=1)).mean()


@pytest.mark.data
def test_a_photo_shrinks_and_loses_detail_to_jpeg(shared_data: Path) -> None:
    path = sorted((shared_data / "deepfake" / "gan_vs_real_val" / "real").iterdir())[0]
    img = np.asarray(cv2.imread(str(path)))
    half = degrade_image(img, Degradation(scale=0.5))
    assert half.shape[:2] == (img.shape[0] // 2 // 2 * 2, img.shape[1] // 2 // 2 * 2)
    rough = degrade_image(img, Degradation(scale=0.5, jpeg_quality=20))
    assert rough.shape == half.shape
    err = np.abs(rough.astype(int) - half.astype(int)).mean()
    assert 0.5 < err < 20, err  # visibly blockier, still the same picture


@pytest.mark.data
def test_a_real_clip_is_shrunk_and_reencoded_frame_for_frame(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / TALKING
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        n_src = sum(1 for _ in inp.decode(stream))
        fps_src = float(stream.average_rate or 0)
    out = tmp_path / "half.mp4"
    written = degrade_video(src, out, Degradation(scale=0.5, crf=34), MAX_PIXELS)
    assert written == n_src
    with av.open(str(out)) as inp:
        stream = inp.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in inp.decode(stream)]
        assert (stream.width, stream.height) == (256, 256)
        assert float(stream.average_rate or 0) == pytest.approx(fps_src, rel=0.01)
    assert len(frames) == n_src
    # a harder CRF makes a smaller file from the same frames
    better = tmp_path / "half_crf18.mp4"
    degrade_video(src, better, Degradation(scale=0.5, crf=18), MAX_PIXELS)
    assert out.stat().st_size < better.stat().st_size


@pytest.mark.parametrize(("kind", "message"), [("garbage", "cannot be opened"), ("audio", "no video stream")])
def test_a_file_without_video_is_refused_and_nothing_is_written(kind: str, message: str, tmp_path: Path) -> None:
    bad = tmp_path / "input.mp4"
    if kind == "garbage":
        bad.write_bytes(b"not a video at all" * 20)
    else:
        write_audio_only(bad, "mp4", "aac")
    with pytest.raises(InvalidInput, match=message):
        degrade_video(bad, tmp_path / "out.mp4", Degradation(scale=0.5), MAX_PIXELS)
    assert not (tmp_path / "out.mp4").exists()
