"""Image decoding from bytes (type sniffed, bombs refused before decoding), PNG/overlay output."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from identix_stream.core.classes import HAIR, NUM_CLASSES, PALETTE, SKIN
from identix_stream.errors import InvalidInput
from identix_stream.media.images import decode_image, decode_label_png, encode_png, overlay, read_image_header

MAX_PIXELS = 40_000_000


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims a huge canvas (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> bytes:
    return (shared_data / "multiperson/obama_and_biden.jpg").read_bytes()


@pytest.mark.data
@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_decode_real_photo_in_each_format(photo: bytes, ext: str) -> None:
    ref = decode_image(photo, MAX_PIXELS)
    ok, buf = cv2.imencode(ext, ref)
    assert ok
    header = read_image_header(buf.tobytes())
    assert (header.width, header.height) == (ref.shape[1], ref.shape[0])
    img = decode_image(buf.tobytes(), MAX_PIXELS)
    assert img.shape == ref.shape and img.dtype == np.uint8
    assert np.abs(img.astype(int) - ref.astype(int)).mean() < 8


@pytest.mark.data
def test_jpeg_header_size_matches_decoded(shared_data: Path) -> None:
    for path in sorted((shared_data / "multiperson").glob("*.jpg")):
        data = path.read_bytes()
        header = read_image_header(data)
        img = decode_image(data, MAX_PIXELS)
        assert {header.width, header.height} == set(img.shape[:2]) or (header.width, header.height) == (
            img.shape[1], img.shape[0]), path.name


@pytest.mark.data
@pytest.mark.parametrize(
    ("mutate", "code", "status"),
    [
        (lambda b: b"", "empty_file", 400),
        (lambda b: b[: len(b) // 2], "truncated_image", 400),
        (lambda b: b[:200], "truncated_image", 400),
        (lambda b: np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes(), "not_an_image", 415),
        (lambda b: b"GIF89a" + b[6:], "unsupported_image_type", 415),
        (lambda b: b"<html><body>hello</body></html>", "not_an_image", 415),
        (lambda b: b[:2] + b"\xff\xe0\x00\x01" + b[6:], "corrupt_image", 400),
    ],
    ids=["zero_bytes", "half", "header_only", "random", "gif", "html", "bad_segment"],
)
def test_broken_images(photo: bytes, mutate, code: str, status: int) -> None:
    with pytest.raises(InvalidInput) as err:
        decode_image(mutate(photo), MAX_PIXELS)
    assert (err.value.code, err.value.status) == (code, status)


def test_png_bomb_refused_before_decoding() -> None:
    bomb = png_claiming(100_000, 100_000)
    assert len(bomb) < 200
    with pytest.raises(InvalidInput) as err:
        decode_image(bomb, MAX_PIXELS)
    assert (err.value.code, err.value.status) == ("image_too_large", 413)
    assert "100000x100000" in err.value.message


@pytest.mark.data
def test_pixel_limit_is_configurable(photo: bytes) -> None:
    header = read_image_header(photo)
    decode_image(photo, header.pixels)
    with pytest.raises(InvalidInput) as err:
        decode_image(photo, header.pixels - 1)
    assert err.value.code == "image_too_large"


def test_label_png_round_trip_and_overlay() -> None:
    labels = np.zeros((60, 80), np.uint8)
    labels[10:50, 20:60] = SKIN
    labels[0:10, :] = HAIR
    png = encode_png(labels)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(decode_label_png(png), labels)
    image = np.full((60, 80, 3), 100, np.uint8)
    out = overlay(image, labels, alpha=1.0)
    assert tuple(out[30, 40]) == tuple(int(c) for c in PALETTE[SKIN][::-1])  # BGR
    assert tuple(out[5, 5]) == tuple(int(c) for c in PALETTE[HAIR][::-1])
    assert tuple(out[55, 5]) == (100, 100, 100)  # background untouched
    half = overlay(image, labels, alpha=0.5)
    assert abs(int(half[30, 40, 2]) - (100 + int(PALETTE[SKIN][0])) // 2) <= 1
    with pytest.raises(InvalidInput):
        overlay(image, labels[:10], 0.5)
    with pytest.raises(InvalidInput):
        encode_png(labels.astype(np.int32))
    assert labels.max() < NUM_CLASSES
