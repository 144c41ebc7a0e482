"""``train-deepfake sbi --small-codec``: training samples shrunk to a small face are compressed at
that small size (as a camera or codec compresses a small face) before they are upsampled to the crop.
The option's CLI check is in tests/commands/test_train_deepfake_options.py."""

from __future__ import annotations

import numpy as np
import pytest

from identix_stream.training import sbi


def test_small_codec_compresses_only_shrunk_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[tuple[int, int]] = []
    real_compress = sbi._compress

    def counting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sizes.append(img.shape[:2])
        return real_compress(img, rng)

    monkeypatch.setattr(sbi, "_compress", counting)
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for _ in range(60):
        out = sbi.degrade(img, rng)
        assert out.shape == img.shape and out.dtype == np.uint8
    assert sizes == []  # off by default: the shipped recipe is unchanged
    for _ in range(60):
        out = sbi.degrade(img, rng, small_codec=1.0)
        assert out.shape == img.shape and out.dtype == np.uint8
    # the downscaling branch fires for ~45% of samples; each of those is compressed at its small size
    assert 10 <= len(sizes) <= 50
    assert all(32 <= h == w < 128 for h, w in sizes)


@pytest.mark.parametrize("side", [33, 48, 115])
def test_compression_keeps_odd_and_even_sizes(side: int) -> None:
    rng = np.random.default_rng(side)
    img = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    for _ in range(6):  # both codecs
        out = sbi._compress(img, rng)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert 0 < float(np.abs(out.astype(np.int16) - img).mean()) < 80  # changed, but still the image
