"""Training material of the blend CNN: self-blends, cross-identity blends and the shared degradations,
on real labelled CelebAMask faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from identix_stream.training import train_deepfake
from identix_stream.training.data import load_celebamask
from identix_stream.training.sbi import crop_sample, cross_blend, degrade, face_region, frame_edge_cut, self_blend
from identix_stream.training.train_deepfake import make_pair, make_pair_with_alpha

SIZE = 128


@pytest.fixture(scope="module")
def faces(shared_data: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(128 crop, binary face region) of four held-out CelebAMask faces."""
    rng = np.random.default_rng(0)
    out = []
    for s in load_celebamask(shared_data / "face_parsing" / "celebamask_mini", "val")[:4]:
        out.append(crop_sample(s.image, face_region(s.labels, s.coarse), s.face_box, SIZE, rng))
    return out


def _change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)


@pytest.mark.parametrize("kind", ["self", "cross"])
def test_blends_change_the_face_and_leave_the_background(faces: list[tuple[np.ndarray, np.ndarray]], kind: str
                                                         ) -> None:
    rng = np.random.default_rng(1)
    inside_changes, outside_changes = [], []
    for i, (img, mask) in enumerate(faces):
        for _ in range(5):
            donor, donor_mask = faces[(i + 1) % len(faces)]
            out = self_blend(img, mask, rng) if kind == "self" else cross_blend(img, mask, donor, donor_mask, rng)
            assert out is not None and out.shape == img.shape and out.dtype == np.uint8
            diff = _change(out, img)
            far = mask == 0
            far[SIZE // 8: -SIZE // 8, SIZE // 8: -SIZE // 8] &= False  # the seam may feather past the mask
            inside_changes.append(float(diff[mask > 0].mean()))
            outside_changes.append(float(diff[far].mean()) if far.any() else 0.0)
    assert np.median(inside_changes) > 3.0, inside_changes
    assert np.median(outside_changes) < 0.25 * np.median(inside_changes), (inside_changes, outside_changes)


def test_a_cross_blend_changes_the_face_more_than_a_self_blend(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Another person's face inside the seam is a bigger change than a perturbed copy of the same face."""
    rng = np.random.default_rng(2)
    own, other = [], []
    for i, (img, mask) in enumerate(faces):
        donor, donor_mask = faces[(i + 2) % len(faces)]
        for _ in range(5):
            own.append(float(_change(self_blend(img, mask, rng), img)[mask > 0].mean()))
            blended = cross_blend(img, mask, donor, donor_mask, rng)
            assert blended is not None
            other.append(float(_change(blended, img)[mask > 0].mean()))
    assert np.median(other) > np.median(own), (own, other)


def test_cross_blend_needs_two_faces(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    img, mask = faces[0]
    assert cross_blend(img, mask, img, np.zeros_like(mask), np.random.default_rng(0)) is None
    assert cross_blend(img, np.zeros_like(mask), img, mask, np.random.default_rng(0)) is None
    speck = np.zeros_like(mask)
    speck[60:65, 60:65] = 1  # 25 pixels: too small a donor face to move onto the target's box
    assert cross_blend(img, mask, img, speck, np.random.default_rng(0)) is None


def test_degradations_keep_the_crop_shape_and_type(faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    rng = np.random.default_rng(3)
    img = faces[0][0]
    outs = [degrade(img, rng) for _ in range(60)]  # every branch (grey, occluder, 1/4 scale) is drawn
    assert all(o.shape == img.shape and o.dtype == np.uint8 and o.flags.c_contiguous for o in outs)
    grey = [o for o in outs if np.array_equal(o[..., 0], o[..., 1]) and np.array_equal(o[..., 1], o[..., 2])]
    assert grey, "the grey branch never ran in 60 draws"


def test_pairs_are_rgb_crops_of_the_model_input_size(shared_data: Path) -> None:
    s = load_celebamask(shared_data / "face_parsing" / "celebamask_mini", "val")[0]
    d = load_celebamask(shared_data / "face_parsing" / "celebamask_mini", "val")[1]
    item = (s.image, face_region(s.labels, s.coarse), s.face_box)
    donor = (d.image, face_region(d.labels, d.coarse), d.face_box)
    real, fake = make_pair(item, np.random.default_rng(4), donor)
    assert real.shape == fake.shape == (SIZE, SIZE, 3) and real.dtype == fake.dtype == np.uint8
    assert not np.array_equal(real, fake)
    # a larger-input model (--input-size) trains on crops cut at its own size from the source image
    big_real, big_fake = make_pair(item, np.random.default_rng(4), donor, size=192)
    assert big_real.shape == big_fake.shape == (192, 192, 3)
    assert not np.array_equal(big_real, big_fake)


def test_a_frame_edge_cut_blacks_out_beyond_a_rectangle_near_the_face() -> None:
    """The cut ends the frame between 10% inside the face box and 35% of its size beyond it, on at least one
    side, and the mask loses the same pixels."""
    image = np.full((300, 400, 3), 200, np.uint8)
    mask = np.ones((300, 400), np.uint8)
    box = (150.0, 100.0, 250.0, 200.0)  # 100 px face
    rng = np.random.default_rng(5)
    for _ in range(50):
        img, msk = frame_edge_cut(image, mask, box, rng)
        kept = img[..., 0] > 0
        assert np.array_equal(kept, msk > 0)
        assert not kept.all(), "no side was cut"
        rows, cols = np.flatnonzero(kept.any(1)), np.flatnonzero(kept.any(0))
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        assert kept[top:bottom, left:right].all(), "what is kept is one rectangle"
        cut = [left > 0, top > 0, right < 400, bottom < 300]
        assert any(cut)
        # where a side was cut, the frame ends from 35 px outside the face box to 10 px inside it
        if cut[0]:
            assert 150 - 36 <= left <= 150 + 11
        if cut[1]:
            assert 100 - 36 <= top <= 100 + 11
        if cut[2]:
            assert 250 - 11 <= right <= 250 + 36
        if cut[3]:
            assert 200 - 11 <= bottom <= 200 + 36


def test_frame_edge_crops_are_black_outside_the_frame_like_the_service_crop(shared_data: Path) -> None:
    s = load_celebamask(shared_data / "face_parsing" / "celebamask_mini", "val")[0]
    region = face_region(s.labels, s.coarse)
    edged = [crop_sample(s.image, region, s.face_box, SIZE, np.random.default_rng(k), frame_edges=1.0)
             for k in range(12)]
    black = [float((crop.max(axis=2) == 0).mean()) for crop, _ in edged]
    assert min(black) > 0.01, black  # every crop reaches past the cut frame
    assert all(m[c.max(axis=2) == 0].sum() == 0 for c, m in edged), "the face mask stops where the frame ends"
    plain = [crop_sample(s.image, region, s.face_box, SIZE, np.random.default_rng(k))[0] for k in range(12)]
    assert max(float((c.max(axis=2) == 0).mean()) for c in plain) < 0.01  # mirrored there, as shipped


def test_a_blend_leaves_the_black_beyond_the_frame_black(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the fake's blend could tint the black where the frame ended (its source copy is colour-shifted and
    feathered into it): a cue of the training data, not of face swaps. make_pair keeps it black."""
    samples = load_celebamask(shared_data / "face_parsing" / "celebamask_mini", "val")[:8]
    rng = np.random.default_rng(6)
    tinted = []
    for s in samples:
        region = face_region(s.labels, s.coarse)
        for _ in range(3):
            crop, mask = crop_sample(s.image, region, s.face_box, SIZE, rng, frame_edges=1.0)
            fake = self_blend(crop, mask, rng)
            tinted.append(fake is not None and bool((fake[crop.max(axis=2) == 0].max(axis=1) > 8).any()))
    assert any(tinted), "the raw self-blend no longer tints the black: this test checks nothing"
    def no_flips_or_resizing(img: np.ndarray, rng: np.random.Generator, small_codec: float = 0.0) -> tuple:
        return img, False

    monkeypatch.setattr(train_deepfake, "degrade_flipped", no_flips_or_resizing)
    for k, s in enumerate(samples):
        item = (s.image, face_region(s.labels, s.coarse), s.face_box)
        real, fake = make_pair(item, np.random.default_rng(k), size=SIZE, frame_edges=1.0)
        black = real.max(axis=2) == 0
        assert black.any()
        assert fake[black].max() == 0



def test_the_blend_weights_follow_the_fake_through_a_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """make_pair_with_alpha's weights mark where the fake was blended also after the fake was mirrored
    (the seam head would otherwise learn the wrong side of the face). A blend of the image's left half
    only, then a mirror: the weights must mark the right half."""
    def left_half_blend(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple:
        alpha = np.zeros(img.shape[:2], np.float32)
        alpha[:, : img.shape[1] // 2] = 1.0
        return np.clip(img.astype(np.int16) + 60 * alpha[..., None].astype(np.int16), 0, 255).astype(np.uint8), alpha

    def mirror_only(img: np.ndarray, rng: np.random.Generator, small_codec: float = 0.0) -> tuple:
        return np.ascontiguousarray(img[:, ::-1]), True

    monkeypatch.setattr(train_deepfake, "self_blend_with_alpha", left_half_blend)
    monkeypatch.setattr(train_deepfake, "degrade_flipped", mirror_only)
    image = np.full((200, 200, 3), 100, np.uint8)
    mask = np.zeros((200, 200), np.uint8)
    mask[60:140, 70:130] = 1
    real, fake, alpha = make_pair_with_alpha((image, mask, (70.0, 60.0, 130.0, 140.0)), np.random.default_rng(0),
                                             size=SIZE)
    assert alpha.shape == (SIZE, SIZE) and alpha.dtype == np.float32
    changed = _change(fake, real) > 30
    assert changed[:, SIZE // 2:].all() and not changed[:, : SIZE // 2].any()  # the fake's blend is now right
    np.testing.assert_array_equal(alpha > 0.5, changed)
