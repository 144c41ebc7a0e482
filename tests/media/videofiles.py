"""Test videos made with PyAV from the shared clips: remuxes (no re-encode) into streamable
containers, a VP8 WebM, audio-only files and deliberately broken copies."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

TALKING = "videos/talking_heads/driving_d12.mp4"  # 512x512 25 fps, 7.3 s, classic MP4 (moov last) + AAC


def remux(src: Path, dst: Path, fmt: str, options: dict[str, str] | None = None, seconds: float | None = None) -> Path:
    """Copy the video stream of ``src`` into another container without re-encoding."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt, options=options or {}) as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for packet in inp.demux(vin):
            if packet.dts is None:
                continue
            if seconds is not None and packet.pts is not None and vin.time_base is not None \
                    and float(packet.pts * vin.time_base) > seconds:
                break
            packet.stream = vout
            out.mux(packet)
    return dst


def transcode_webm(src: Path, dst: Path, seconds: float, width: int = 320) -> Path:
    """A VP8 WebM like a browser's MediaRecorder makes (short and small: encoding costs CPU)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="webm") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libvpx", rate=vin.average_rate)
        vout.width = width
        vout.height = round(width * vin.height / vin.width / 2) * 2
        vout.pix_fmt = "yuv420p"
        vout.options = {"deadline": "realtime", "cpu-used": "8"}
        vout.bit_rate = 1_000_000
        for frame in inp.decode(vin):
            if frame.time is not None and frame.time > seconds:
                break
            img = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
            img.pts = None
            for packet in vout.encode(img):
                out.mux(packet)
        for packet in vout.encode(None):
            out.mux(packet)
    return dst


def write_audio_only(dst: Path, fmt: str, codec: str, seconds: float = 1.0) -> Path:
    """A real audio-only file (a 440 Hz tone) made with PyAV."""
    rate = 48000
    with av.open(str(dst), "w", format=fmt) as out:
        stream: av.AudioStream = out.add_stream(codec, rate=rate)  # type: ignore[assignment]
        stream.layout = "mono"
        t = np.arange(int(rate * seconds)) / rate
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame_size = stream.codec_context.frame_size or 1024
        fmt_name = stream.codec_context.format.name if stream.codec_context.format else "fltp"
        pts = 0
        for start in range(0, len(samples), frame_size):
            chunk = samples[start : start + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            arr = chunk[None, :]
            if fmt_name == "s16":
                arr = (arr * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(arr, format=fmt_name, layout="mono")
            frame.sample_rate = rate
            frame.pts = pts
            pts += frame_size
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


def build_video_files(shared_data: Path, d: Path) -> dict[str, Path]:
    """Real clips in several containers plus broken copies, written into ``d``."""
    src = shared_data / TALKING
    files = {
        "classic_mp4": src,
        "faststart_mp4": shared_data / "videos/talking_heads/driving_d20.mp4",
        "fragmented_mp4": remux(src, d / "frag.mp4", "mp4", {"movflags": "frag_keyframe+empty_moov+default_base_moof"}),
        "mkv": remux(src, d / "clip.mkv", "matroska"),
        "mpegts": remux(src, d / "clip.ts", "mpegts"),
        "webm": transcode_webm(src, d / "clip.webm", seconds=2.0),
        "multi_face": shared_data / "videos/multi_face/short_hamilton_clip.mp4",
        "audio_m4a": write_audio_only(d / "tone.m4a", "mp4", "aac"),
        "audio_wav": write_audio_only(d / "tone.wav", "wav", "pcm_s16le"),
        "audio_webm": write_audio_only(d / "tone.webm", "webm", "libopus"),
    }
    data = src.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])  # classic MP4 cut before its index
    files["truncated_mp4"] = d / "truncated.mp4"
    frag = files["fragmented_mp4"].read_bytes()
    (d / "truncated_frag.mp4").write_bytes(frag[: len(frag) // 2])  # streamable: the first half still decodes
    files["truncated_fragmented_mp4"] = d / "truncated_frag.mp4"
    (d / "empty.mp4").write_bytes(b"")
    files["empty"] = d / "empty.mp4"
    rng = np.random.default_rng(6)
    (d / "random.mp4").write_bytes(rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    files["random"] = d / "random.mp4"
    # right magic (EBML / ftyp) followed by garbage
    (d / "garbage.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    files["garbage_mkv"] = d / "garbage.mkv"
    (d / "text.mp4").write_bytes(b"this is not a video at all, just some text\n" * 100)
    files["text"] = d / "text.mp4"
    return files
