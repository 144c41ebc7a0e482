"""The shipped deepfake models on real data: loading, shapes, GAN faces vs real photos, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from identix_stream.core.deepfake_metrics import roc_auc
from identix_stream.errors import InvalidInput, ModelError
from identix_stream.inference.deepfake_features import (
    FP_SIZE,
    fingerprint_features,
    native_square,
    native_squares,
    reads_natively,
)
from identix_stream.inference.deepfake_scorer import DeepfakeScorer

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def scorer() -> DeepfakeScorer:
    return DeepfakeScorer.load(MODELS, "cpu")


def crops_of(folder: Path, n: int) -> list[np.ndarray]:
    files = sorted(folder.iterdir())[:n]
    return [cv2.resize(np.asarray(cv2.imread(str(p))), (256, 256), interpolation=cv2.INTER_AREA) for p in files]


def test_missing_or_wrong_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        DeepfakeScorer.load(tmp_path)
    shutil.copy(MODELS / "deepfake_sbi.pt", tmp_path)
    (tmp_path / "deepfake_spectral.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelError, match="identix-spectral-v1"):
        DeepfakeScorer.load(tmp_path)


def test_bad_crops_are_refused(scorer: DeepfakeScorer) -> None:
    with pytest.raises(InvalidInput, match="256, 256, 3"):
        scorer.score([np.zeros((128, 128, 3), np.uint8)], [np.zeros((128, 128), np.uint8)])
    with pytest.raises(InvalidInput, match="label maps"):
        scorer.score([np.zeros((256, 256, 3), np.uint8)], [])
    with pytest.raises(InvalidInput, match="1 crops but 0 source frames"):
        scorer.score([np.zeros((256, 256, 3), np.uint8)], [np.zeros((256, 256), np.uint8)], [])
    assert scorer.score([], []) == []


def test_gan_faces_score_above_real_photos(scorer: DeepfakeScorer, shared_data: Path) -> None:
    """gan_vs_real_val (StyleGAN2, never trained on): the fingerprint factor ranks fakes first, read
    from the photos' own pixels (the source frames, as the service does) or from the crops (fallback)."""
    val = shared_data / "deepfake" / "gan_vs_real_val"
    blank = [np.zeros((256, 256), np.uint8)] * 20  # no face parse: the boundary factor stays out
    auc = {}
    for mode in ("native", "resampled"):
        scores = {}
        for cls in ("fake", "real"):
            frames = [np.asarray(cv2.imread(str(p))) for p in sorted((val / cls).iterdir())[:20]]
            sources = [(f, (f.shape[1] / 2, f.shape[0] / 2)) for f in frames] if mode == "native" else None
            scores[cls] = scorer.score(crops_of(val / cls, 20), blank, sources)
        f, r = scores["fake"], scores["real"]
        assert all(set(x) == {"blend", "gan_fingerprint"} for x in f + r)
        assert all(0.0 <= v <= 1.0 for x in f + r for v in x.values())
        auc[mode] = roc_auc([x["gan_fingerprint"] for x in r], [x["gan_fingerprint"] for x in f])
    assert min(auc.values()) >= 0.85, auc


def test_a_frame_smaller_than_the_fingerprint_square_gets_no_fingerprint(scorer: DeepfakeScorer,
                                                                         shared_data: Path) -> None:
    """A 150-px copy of a real photo can only be read upscaled, which is what generators leave behind:
    the fingerprint stays out and the other factors are untouched."""
    photo = np.asarray(cv2.imread(str(sorted((shared_data / "deepfake" / "gan_vs_real_val" / "real").iterdir())[0])))
    crop = cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA)
    h, w = photo.shape[:2]
    small = cv2.resize(photo, (FP_SIZE - 10, FP_SIZE - 10), interpolation=cv2.INTER_AREA)
    just_enough = cv2.resize(photo, (FP_SIZE, FP_SIZE), interpolation=cv2.INTER_AREA)
    blank = [np.zeros((256, 256), np.uint8)] * 3
    full, tiny, edge = scorer.score([crop] * 3, blank, [(photo, (w / 2, h / 2)), (small, (75.0, 75.0)),
                                                        (just_enough, (80.0, 80.0))])
    assert "gan_fingerprint" in full and "gan_fingerprint" in edge
    assert "gan_fingerprint" not in tiny
    assert tiny["blend"] == full["blend"]
    notes = scorer.score_faces([crop], blank[:1], [(small, (75.0, 75.0))])[0].notes
    assert notes["gan_fingerprint"]["reason"] == "small_image" and notes["gan_fingerprint"]["image_px"] == FP_SIZE - 10
    assert not reads_natively(small) and reads_natively(just_enough)


def test_enlarged_gan_faces_lose_the_fingerprint_in_photos_but_not_in_video_frames(scorer: DeepfakeScorer,
                                                                                  shared_data: Path) -> None:
    """StyleGAN2 faces enlarged 1.5x (bicubic) read as real at their new size; shrunk by 1.5 or 2 they
    read as generated again, so a photo's reading is dropped instead of clearing the face. Video frames
    are left as they are, and faces whose own-size reading is already "generated" keep it."""
    val = shared_data / "deepfake" / "gan_vs_real_val" / "fake"
    frames = [np.asarray(cv2.imread(str(p))) for p in sorted(val.iterdir())[:12]]
    big = [cv2.resize(f, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC) for f in frames]
    crops = crops_of(val, 12)
    blank = [np.zeros((256, 256), np.uint8)] * 12

    def centre(f: np.ndarray) -> tuple[float, float]:
        return f.shape[1] / 2, f.shape[0] / 2

    as_video = scorer.score(crops, blank, [(f, centre(f)) for f in big], [False] * 12)
    as_photo = scorer.score(crops, blank, [(f, centre(f)) for f in big], [True] * 12)
    native = scorer.score(crops, blank, [(f, centre(f)) for f in frames], [True] * 12)
    assert all("gan_fingerprint" in x for x in as_video)
    reads_real = [i for i, x in enumerate(as_video) if x["gan_fingerprint"] < 0.5]
    assert len(reads_real) >= 6  # enlarging hides most of them
    dropped = [i for i, x in enumerate(as_photo) if "gan_fingerprint" not in x]
    assert set(dropped) <= set(reads_real) and len(dropped) >= 6
    photo_notes = scorer.score_faces(crops, blank, [(f, centre(f)) for f in big], [True] * 12)
    assert {i for i, x in enumerate(photo_notes) if x.notes["gan_fingerprint"].get("reason") == "maybe_enlarged"} \
        == set(dropped)
    assert all(photo_notes[i].notes["gan_fingerprint"]["shrink"] in (1.5, 2.0) for i in dropped)
    kept_in_photo = [i for i in range(12) if i not in dropped]
    assert all("gan_fingerprint" in as_photo[i] and as_photo[i]["blend"] == as_video[i]["blend"] for i in kept_in_photo)
    kept = [x for x in native if "gan_fingerprint" in x]
    assert len(kept) >= 10 and sum(x["gan_fingerprint"] > 0.5 for x in kept) >= 8  # at their own size: found
    with pytest.raises(InvalidInput, match="one flag per source frame"):
        scorer.score(crops[:1], blank[:1], [(frames[0], centre(frames[0]))], [True, False])


def test_the_blend_maps_mean_is_the_blend_logit_and_its_peak_is_named(scorer: DeepfakeScorer,
                                                                    shared_data: Path) -> None:
    """The blend CNN's per-position logit map averages exactly to its logit (the head is linear after
    the pooling), so the map's peak says where the reading comes from; the note names the parse region
    there. A crop parsed upside down gets no factors, and every factor's note says why."""
    from identix_stream.core.classes import L_BROW, L_EYE, MOUTH, R_BROW, R_EYE, SKIN
    from identix_stream.inference.deepfake_nets import resize_for_sbi, sbi_input

    crops = crops_of(shared_data / "deepfake" / "gan_vs_real_val" / "real", 4)
    x = sbi_input(resize_for_sbi(crops, scorer.sbi_size), scorer.sbi_equalize)
    with torch.inference_mode():
        maps, logits = scorer.sbi.logit_map(x), scorer.sbi(x)
    assert maps.shape == (4, scorer.sbi_size // 16, scorer.sbi_size // 16)
    np.testing.assert_allclose(maps.mean((1, 2)).numpy(), logits.numpy(), atol=1e-4)

    upright = np.zeros((256, 256), np.uint8)
    upright[40:230, 50:206] = SKIN
    upright[90:100, 70:110], upright[90:100, 146:186] = R_BROW, L_BROW
    upright[110:125, 75:105], upright[110:125, 151:181] = R_EYE, L_EYE
    upright[180:200, 100:156] = MOUTH
    turned = np.ascontiguousarray(upright[::-1])
    read, unread = scorer.score_faces([crops[0], crops[0]], [upright, turned])
    assert set(read.factors) == {"blend", "gan_fingerprint", "boundary"}
    assert read.notes["blend"]["region"] in {"skin", "left eyebrow", "right eyebrow", "left eye", "right eye",
                                             "mouth", "background", "face outline"}
    px, py = read.notes["blend"]["crop_point"]
    assert 0 < px < 256 and 0 < py < 256
    assert unread.factors == {} and {n["reason"] for n in unread.notes.values()} == {"face_turned"}
    assert set(unread.notes) == {"blend", "gan_fingerprint", "boundary"}


def test_a_photos_fingerprint_is_the_mean_reading_of_its_squares(scorer: DeepfakeScorer, shared_data: Path) -> None:
    """In a photo the fingerprint averages the head's log-odds over the grid of squares around the face
    (``native_squares``); a video frame reads the one square at the face centre. Over the first 20 GAN
    and 20 real photos of gan_vs_real_val the photo reading ranks them at least as well."""
    val = shared_data / "deepfake" / "gan_vs_real_val"
    frames = {cls: [np.asarray(cv2.imread(str(p))) for p in sorted((val / cls).iterdir())[:20]]
              for cls in ("fake", "real")}
    blank = [np.zeros((256, 256), np.uint8)] * 20
    got: dict[str, dict[str, list[float]]] = {"photo": {}, "video": {}}
    for cls, fs in frames.items():
        sources = [(f, (f.shape[1] / 2, f.shape[0] / 2)) for f in fs]
        crops = crops_of(val / cls, 20)
        for mode, still in (("photo", True), ("video", False)):
            rows = scorer.score(crops, blank, sources, [still] * 20)
            got[mode][cls] = [r["gan_fingerprint"] for r in rows if "gan_fingerprint" in r]
            for (frame, centre), r in zip(sources, rows, strict=True):
                if "gan_fingerprint" not in r:
                    assert still  # only a photo's enlargement check drops it
                    continue
                squares = native_squares(frame, centre) if still else [native_square(frame, centre)]
                assert len(squares) == (9 if still else 1)
                logit = scorer.spectral.logit(np.stack([fingerprint_features(q) for q in squares])).mean()
                assert r["gan_fingerprint"] == pytest.approx(1.0 / (1.0 + np.exp(-logit)), abs=1e-9)
    auc = {mode: roc_auc(g["real"], g["fake"]) for mode, g in got.items()}
    assert len(got["photo"]["fake"]) + len(got["photo"]["real"]) >= 30
    assert auc["photo"] >= max(0.9, auc["video"] - 0.02), auc


@pytest.mark.slow
def test_eval_deepfake_cli_on_images(
    tmp_path: Path, shared_data: Path, parser_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from identix_stream.cli import main

    val = shared_data / "deepfake" / "gan_vs_real_val"
    for cls in ("real", "fake"):
        (tmp_path / cls).mkdir()
        for p in sorted((val / cls).iterdir())[:6]:
            shutil.copy(p, tmp_path / cls)
    (tmp_path / "real" / "notes.txt").write_text("ignored: not an image")
    # a patch of a photo with no whole face in it: scored as one whole-image crop, and said so
    photo = np.asarray(cv2.imread(str(sorted((val / "real").iterdir())[0])))
    cv2.imwrite(str(tmp_path / "real" / "zz_patch.png"), photo[:60, :60])
    rc = main(["eval-deepfake", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--json",
               "--model", str(parser_model), "--models-dir", str(MODELS)])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"real": 7, "fake": 6}
    assert report["images_without_detected_face"] == {"real": 1, "fake": 0}
    by_file = {i["file"]: i for i in report["items"]}
    assert by_file["zz_patch.png"]["face_detected"] is False and by_file["zz_patch.png"]["faces"] == 0
    # a 60-px patch cannot hold the fingerprint's square: said per item and counted in the report
    assert by_file["zz_patch.png"]["unread"]["gan_fingerprint"] in ("small_image", "face_turned")
    assert sum(report["unread_factors"]["real"].values()) >= 1
    assert sum(n for k, n in report["unread_factors"]["fake"].items() if k.startswith("gan_fingerprint")) \
        == sum("gan_fingerprint" not in i["factors"] for i in report["items"] if i["label"] == "fake")
    assert sum(i["face_detected"] for i in report["items"]) == 12
    assert 0.0 <= report["auc"] <= 1.0 and 0.0 <= report["eer"] <= 1.0 and 0.0 <= report["accuracy"] <= 1.0
    assert {"blend", "gan_fingerprint"} <= set(report["factor_auc"])
    assert all(i["state"] in ("likely_real", "likely_fake", "uncertain") for i in report["items"])
    assert report["auc"] >= 0.7
