"""Container sniffing, decoding while the bytes are still arriving, broken files, MP4 output."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from identix_stream.errors import InvalidInput
from identix_stream.media.encoder import Mp4Writer, available_codec
from identix_stream.media.video import SpoolFile, UploadAborted, VideoReader, sniff_container

pytestmark = pytest.mark.data

MAX_PIXELS = 40_000_000


@pytest.mark.parametrize(
    ("name", "kind", "streamable"),
    [
        ("classic_mp4", "mp4", False),
        ("faststart_mp4", "mp4", True),
        ("fragmented_mp4", "mp4", True),
        ("mkv", "matroska", True),
        ("webm", "matroska", True),
        ("mpegts", "mpegts", True),
    ],
)
def test_sniff_real_containers(video_files: dict[str, Path], name: str, kind: str, streamable: bool) -> None:
    head = video_files[name].read_bytes()[:65536]
    info = sniff_container(head)
    assert info is not None
    assert (info.kind, info.streamable) == (kind, streamable)


@pytest.mark.parametrize(
    ("name", "code"),
    [("empty", "empty_file"), ("random", "unsupported_format"), ("text", "unsupported_format"),
     ("audio_wav", "no_video_stream")],
)
def test_sniff_refuses(video_files: dict[str, Path], name: str, code: str) -> None:
    with pytest.raises(InvalidInput) as err:
        sniff_container(video_files[name].read_bytes()[:65536], final=True)
    assert err.value.code == code
    assert 400 <= err.value.status < 500


def test_sniff_image_is_not_a_video(shared_data: Path) -> None:
    head = (shared_data / "multiperson/two_people.jpg").read_bytes()[:4096]
    with pytest.raises(InvalidInput) as err:
        sniff_container(head, final=True)
    assert (err.value.code, err.value.status) == ("not_a_video", 415)


def test_sniff_waits_for_enough_bytes(video_files: dict[str, Path]) -> None:
    data = video_files["classic_mp4"].read_bytes()
    assert sniff_container(data[:10]) is None  # not even a box header yet
    assert sniff_container(data[:4096]) is not None


@pytest.mark.parametrize("name", ["classic_mp4", "fragmented_mp4", "mkv", "mpegts", "multi_face"])
def test_decode_every_frame(video_files: dict[str, Path], name: str) -> None:
    with VideoReader(video_files[name], MAX_PIXELS) as reader:
        frames = list(reader.frames(stride=3))
        info = reader.info
    assert info.frames is not None and abs(len(frames) - info.frames) <= 1
    assert [f.index for f in frames] == list(range(len(frames)))
    with_images = [f for f in frames if f.image is not None]
    assert len(with_images) == (len(frames) + 2) // 3
    img = with_images[0].image
    assert img is not None and img.shape == (info.height, info.width, 3) and img.dtype == np.uint8
    assert img.std() > 10  # a real picture, not a blank frame
    ts = [f.timestamp for f in frames]
    assert ts == sorted(ts) and ts[-1] > 1.0


@pytest.mark.parametrize("name", ["audio_m4a", "audio_webm"])
def test_audio_only_has_no_video_stream(video_files: dict[str, Path], name: str) -> None:
    head = video_files[name].read_bytes()[:65536]
    assert sniff_container(head, final=True) is not None  # a real container...
    with pytest.raises(InvalidInput) as err:
        VideoReader(video_files[name], MAX_PIXELS)
    assert (err.value.code, err.value.status) == ("no_video_stream", 422)
    assert "audio" in err.value.message


@pytest.mark.parametrize("name", ["truncated_mp4", "garbage_mkv"])
def test_undecodable_files(video_files: dict[str, Path], name: str) -> None:
    with pytest.raises(InvalidInput) as err, VideoReader(video_files[name], MAX_PIXELS) as reader:
        list(reader.frames())
    assert err.value.code in ("corrupt_video", "no_video_stream", "no_frames")
    assert 400 <= err.value.status < 500


def test_truncated_streamable_keeps_the_good_frames(video_files: dict[str, Path]) -> None:
    with VideoReader(video_files["truncated_fragmented_mp4"], MAX_PIXELS) as reader:
        frames = list(reader.frames())
    assert 30 < len(frames) < 183


def test_pixel_limit(video_files: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput) as err:
        VideoReader(video_files["classic_mp4"], max_pixels=512 * 512 - 1)
    assert (err.value.code, err.value.status) == ("video_too_large", 413)


@pytest.mark.parametrize("name", ["fragmented_mp4", "webm", "mpegts", "faststart_mp4"])
def test_decoding_starts_before_the_upload_ends(video_files: dict[str, Path], tmp_path: Path, name: str) -> None:
    data = video_files[name].read_bytes()
    spool = SpoolFile(tmp_path / "upload")
    got: list[tuple[int, int]] = []  # (frame index, bytes written when it came out)
    errors: list[BaseException] = []

    def decode() -> None:
        try:
            with VideoReader(spool.reader(), MAX_PIXELS) as reader:
                for f in reader.frames(stride=1):
                    got.append((f.index, spool.size))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=decode)
    thread.start()
    chunk = max(4096, len(data) // 40)
    for start in range(0, len(data), chunk):
        spool.append(data[start : start + chunk])
        time.sleep(0.02)
    spool.finish()
    thread.join(30)
    assert not errors
    assert got, "no frame decoded"
    assert got[0][1] < len(data) // 2, f"first frame needed {got[0][1]} of {len(data)} bytes"
    with VideoReader(video_files[name], MAX_PIXELS) as reader:
        assert len(got) == sum(1 for _ in reader.frames())


def test_abort_unblocks_the_decoder(video_files: dict[str, Path], tmp_path: Path) -> None:
    data = video_files["mkv"].read_bytes()
    spool = SpoolFile(tmp_path / "upload")
    outcome: list[BaseException] = []

    def decode() -> None:
        try:
            with VideoReader(spool.reader(), MAX_PIXELS) as reader:
                for _ in reader.frames():
                    pass
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=decode)
    thread.start()
    spool.append(data[: len(data) // 3])
    time.sleep(0.3)
    spool.abort("client went away")
    thread.join(10)
    assert not thread.is_alive()
    assert outcome and isinstance(outcome[0], UploadAborted | InvalidInput)


def test_mp4_writer_round_trip(video_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with VideoReader(video_files["multi_face"], MAX_PIXELS) as reader:
        frames = [f.image for f in reader.frames() if f.image is not None][:20]
        fps = reader.info.fps or 30
    with Mp4Writer(out, frames[0].shape[1], frames[0].shape[0], fps) as writer:
        for img in frames:
            writer.write(img)
    assert writer.codec == available_codec() == "libx264"
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        decoded = [f.to_ndarray(format="bgr24") for f in c.decode(v)]
        assert v.codec_context.name == "h264"
        assert v.average_rate is not None and abs(float(v.average_rate) - fps) < 0.1
    assert len(decoded) == 20
    diff = np.abs(decoded[10].astype(int) - frames[10][: decoded[10].shape[0], : decoded[10].shape[1]].astype(int))
    assert diff.mean() < 6  # lossy but the same picture
    # fast start: the index precedes the media data, so browsers play it while downloading
    head = out.read_bytes()[:4096]
    assert 0 <= head.find(b"moov") < head.find(b"mdat")


def test_display_rotation_is_applied(video_files: dict[str, Path], tmp_path: Path) -> None:
    """A phone video stores landscape pixels plus a display matrix; frames come out upright
    (as ffmpeg's autorotate shows them)."""
    with VideoReader(video_files["multi_face"], MAX_PIXELS) as reader:
        originals = [f.image for f in reader.frames() if f.image is not None][:5]
    path = tmp_path / "rotated.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.set_display_rotation(90)
        for img in originals:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with VideoReader(path, MAX_PIXELS) as reader:
        upright = [f.image for f in reader.frames() if f.image is not None]
    assert len(upright) == 5 and upright[0] is not None and upright[0].shape == (640, 360, 3)
    assert np.abs(upright[2].astype(int) - np.rot90(originals[2], 1).astype(int)).mean() < 6
