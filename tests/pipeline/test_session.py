"""Sessions on real frames with the real models: faces, stable track ids, sane label maps."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import pytest_asyncio

import identix_stream.pipeline.analyzer as analyzer_module
from identix_stream.core.classes import HAIR, SKIN
from identix_stream.core.types import FaceResult
from identix_stream.errors import FrameDropped, InvalidInput
from identix_stream.pipeline.analyzer import Analyzer
from identix_stream.pipeline.session import SessionKind

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.data, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def analyzer(parser_model: Path, shared_data: Path) -> AsyncIterator[Analyzer]:
    a = Analyzer(parser_model, precision="fp32", torch_threads=1, max_wait_ms=10)
    await a.start()
    yield a
    await a.stop()


def read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    if img is None:
        raise FileNotFoundError(path)
    return img


def video_frames(path: Path, n: int) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        out = []
        for frame in c.decode(video=0):
            out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == n:
                break
    return out


async def test_video_keeps_one_track_id(analyzer: Analyzer, shared_data: Path) -> None:
    frames = video_frames(shared_data / "videos" / "talking_heads" / "driving_d0.mp4", 8)
    session = analyzer.open_session("video")
    results = [await session.analyze(f, i) for i, f in enumerate(frames)]
    assert [r.status for r in results] == ["ok"] * len(frames)
    ids = {face.track_id for r in results for face in r.faces}
    assert len(ids) == 1 and all(len(r.faces) == 1 for r in results)
    assert results[0].faces[0].track_state == "tentative"
    assert all(r.faces[0].track_state == "confirmed" for r in results[2:])
    last = results[-1]
    h, w = frames[0].shape[:2]
    assert last.label_map.shape == (h, w) and last.label_map.dtype == np.uint8
    assert set(np.unique(last.label_map)) <= set(range(11))
    x1, y1, x2, y2 = (int(v) for v in last.faces[0].box)
    inside = last.label_map[max(0, y1):y2, max(0, x1):x2]
    assert (inside == SKIN).mean() > 0.3, "the face box should be mostly skin"
    assert (last.label_map == HAIR).sum() > 0
    assert last.faces[0].class_areas["skin"] > 0.2 * (x2 - x1) * (y2 - y1)
    summary = session.summary()
    assert summary[0]["frames_seen"] == len(frames) and summary[0]["track_id"] in ids
    session.close()
    with pytest.raises(InvalidInput):
        await session.analyze(frames[0], 99)


async def test_group_photo_gives_several_tracks(analyzer: Analyzer, shared_data: Path) -> None:
    img = read(shared_data / "multiperson" / "dlib_2008_001322.jpg")
    session = analyzer.open_session("image")
    r = await session.analyze(img, 0)
    assert r.status == "ok" and len(r.faces) >= 2
    assert len({f.track_id for f in r.faces}) == len(r.faces)
    assert all(f.track_state == "confirmed" for f in r.faces)
    for f in r.faces:
        assert f.class_areas.get("skin", 0) > 0
    session.close()


async def test_multi_face_video_ids_are_stable(analyzer: Analyzer, shared_data: Path) -> None:
    frames = video_frames(shared_data / "videos" / "multi_face" / "short_hamilton_clip.mp4", 6)
    session = analyzer.open_session("video")
    results = [await session.analyze(f, i) for i, f in enumerate(frames)]
    # each face keeps its id from frame to frame (matched by the nearest box centre)
    for prev, cur in itertools.pairwise(results):
        for face in cur.faces:
            near = [p for p in prev.faces if abs((p.box[0] + p.box[2]) - (face.box[0] + face.box[2])) < 40]
            if near:
                assert near[0].track_id == face.track_id
    assert any(r.faces for r in results)
    session.close()


async def test_no_face_and_face_too_small(analyzer: Analyzer, shared_data: Path) -> None:
    session = analyzer.open_session("image")
    r = await session.analyze(np.full((480, 640, 3), 90, np.uint8), 1)
    assert r.status == "no_face" and r.faces == () and not r.label_map.any()
    img = read(shared_data / "multiperson" / "dlib_2008_001009.jpg")  # 360x480, faces ~80 px
    small = cv2.resize(img, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[100:100 + small.shape[0], 100:100 + small.shape[1]] = small
    r2 = await session.analyze(canvas, 2)
    # the detector finds the 16x22 px face (image sessions search tiles) but it is too small to parse
    assert r2.status == "face_too_small" and r2.faces == () and not r2.label_map.any()
    with pytest.raises(InvalidInput):
        await session.analyze(np.zeros((480, 640), np.uint8), 3)
    session.close()


async def test_live_session_keeps_the_newest_frame(analyzer: Analyzer, shared_data: Path) -> None:
    frames = video_frames(shared_data / "videos" / "talking_heads" / "driving_d3.mp4", 4)
    session = analyzer.open_session("live")
    out = await asyncio.gather(*(session.analyze(f, i) for i, f in enumerate(frames)), return_exceptions=True)
    dropped = [o for o in out if isinstance(o, FrameDropped)]
    assert dropped and all(o.reason == "superseded" for o in dropped)
    last = out[-1]
    assert not isinstance(last, BaseException) and last.frame_id == 3
    assert all(isinstance(o, FrameDropped) or (not isinstance(o, BaseException) and o.status == "ok") for o in out)
    session.close()


@pytest.mark.parametrize("angle", [-30.0, 30.0])
async def test_rolled_face_is_parsed_upright(analyzer: Analyzer, shared_data: Path, angle: float) -> None:
    frame = video_frames(shared_data / "videos" / "talking_heads" / "driving_d10.mp4", 1)[0]
    h, w = frame.shape[:2]
    rotated = cv2.warpAffine(frame, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h))
    session = analyzer.open_session("image")
    upright = await session.analyze(frame, 0)
    rolled = await session.analyze(rotated, 1)
    session.close()
    assert upright.status == "ok" and rolled.status == "ok"
    # the crop follows the eye line, so the parse of the rolled face matches the upright one
    for name in ("skin", "nose", "hair"):
        a, b = upright.faces[0].class_areas.get(name, 0), rolled.faces[0].class_areas.get(name, 0)
        assert a > 0 and 0.7 < b / a < 1.4, (name, a, b)
    # and the label map is pasted back rotated: the upright map rotated the same way agrees with it
    expected = cv2.warpAffine(upright.label_map, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h),
                              flags=cv2.INTER_NEAREST)
    face = (expected > 0) | (rolled.label_map > 0)
    assert (expected[face] == rolled.label_map[face]).mean() > 0.8


async def test_stream_tracks_reuse_recent_deepfake_factors(analyzer: Analyzer, shared_data: Path) -> None:
    if analyzer.scorer is None:
        pytest.skip("no deepfake models in models/")
    frames = video_frames(shared_data / "videos" / "talking_heads" / "driving_d0.mp4", 6)
    session = analyzer.open_session("video")
    before = analyzer.deepfake_scored
    stamps = [0.0, 1 / 30, 2 / 30, 3 / 30, 4 / 30, 0.5]  # interval 0.1 s: fresh at 0, 0.1 and 0.5
    results = [await session.analyze(f, i, timestamp=t) for i, (f, t) in enumerate(zip(frames, stamps, strict=True))]
    assert all(len(r.faces) == 1 for r in results)
    assert analyzer.deepfake_scored - before == 3
    # reused factors are the track's last computed ones, and every frame still carries them
    blend = [r.faces[0].deepfake.factors.get("blend") for r in results]
    assert blend[0] == blend[1] == blend[2] and blend[3] == blend[4]
    assert all(b is not None for b in blend)
    image = analyzer.open_session("image")
    before = analyzer.deepfake_scored
    for i in range(2):
        await image.analyze(frames[0], i, timestamp=0.0)
    assert analyzer.deepfake_scored - before == 2  # single images are always scored


async def test_live_streams_refresh_deepfake_factors_less_often(analyzer: Analyzer, shared_data: Path) -> None:
    if analyzer.scorer is None:
        pytest.skip("no deepfake models in models/")
    assert (analyzer.deepfake_interval_s, analyzer.live_deepfake_interval_s) == (0.1, 0.25)
    frames = video_frames(shared_data / "videos" / "talking_heads" / "driving_d0.mp4", 6)
    stamps = [0.0, 0.1, 0.2, 0.26, 0.4, 0.55]
    scored = {}
    for kind in ("video", "live"):
        session = analyzer.open_session(kind)
        before = analyzer.deepfake_scored
        for i, (f, t) in enumerate(zip(frames, stamps, strict=True)):
            await session.analyze(f, i, timestamp=t)
        scored[kind] = analyzer.deepfake_scored - before
        session.close()
    # video: fresh at 0, 0.1, 0.2, 0.4 and 0.55 (0.26 is 0.06 s after 0.2); live: at 0, 0.26 and 0.55
    assert scored == {"video": 5, "live": 3}


async def test_photo_evidence_is_weighed_by_each_face_size(analyzer: Analyzer, shared_data: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from identix_stream.core import deepfake_fusion
    from identix_stream.core.deepfake_fusion import single_image_estimate
    from identix_stream.core.geometry import box_side

    if analyzer.scorer is None:
        pytest.skip("no deepfake models in models/")
    steep = ((100.0, 0.1), (1000.0, 1.0))  # so that every face's size visibly changes its estimate
    for group in deepfake_fusion.FUSION_GROUPS:
        monkeypatch.setitem(deepfake_fusion.RESOLUTION_RELIABILITY, group, steep)
    session = analyzer.open_session("image")
    result = await session.analyze(read(shared_data / "multiperson" / "dlib_bald_guys.jpg"), 0)
    sizes = [box_side(f.box) for f in result.faces]
    assert len(sizes) >= 5 and min(sizes) < 150 < max(sizes)
    for face in result.faces:
        est = face.deepfake
        factors = {k: v for k, v in est.factors.items() if v is not None}
        assert est.single_image and "blend" in factors  # the fingerprint may sit out (small or enlarged faces)
        # (the reported box is rounded, hence the tolerance)
        assert est.p_fake == pytest.approx(single_image_estimate(factors, box_side(face.box)).p_fake, abs=1e-3)
        # every face is under 1000 px, so its groups' log-odds are scaled down and the factors' contributions
        # change (p itself can land near the unscaled one when the two groups' changes cancel in the mixture)
        assert est.contributions == pytest.approx(single_image_estimate(factors, box_side(face.box)).contributions,
                                                  abs=1e-3)
        assert est.contributions != pytest.approx(single_image_estimate(factors).contributions, abs=1e-3)


async def _best_face(analyzer: Analyzer, kind: SessionKind, image: np.ndarray) -> tuple[FaceResult, np.ndarray]:
    session = analyzer.open_session(kind)
    try:
        result = await session.analyze(image, 0)
    finally:
        session.close()
    assert result.faces, kind
    return max(result.faces, key=lambda f: f.score), result.label_map


@pytest.mark.parametrize("turns", [1, 2, 3])
async def test_a_sideways_photo_is_parsed_and_scored_as_if_upright(analyzer: Analyzer, shared_data: Path,
                                                                   turns: int) -> None:
    """A real photo stored turned (no EXIF orientation): BlazeFace misreads the roll, so the face was
    cut sideways; its parse was wrong and the blend CNN called it a blend (0.96). The photo's orientation
    search finds the upright crop: the same parse, turned, and the same deepfake factors."""
    photo = read(sorted((shared_data / "deepfake" / "gan_vs_real_val" / "real").iterdir())[9])
    upright, upright_map = await _best_face(analyzer, "image", photo)
    turned, turned_map = await _best_face(analyzer, "image", np.ascontiguousarray(np.rot90(photo, turns)))
    for name in ("skin", "nose", "left_eye", "right_eye", "hair"):
        a, b = upright.class_areas.get(name, 0), turned.class_areas.get(name, 0)
        assert a > 0 and 0.85 < b / a < 1.15, (name, a, b)
    back = np.rot90(turned_map, -turns)
    face = (upright_map > 0) | (back > 0)
    assert (upright_map[face] == back[face]).mean() > 0.9
    if analyzer.scorer is None:
        pytest.skip("no deepfake models in models/")
    assert upright.deepfake.state != "likely_fake"
    assert turned.deepfake.state == upright.deepfake.state
    assert turned.deepfake.p_fake == pytest.approx(upright.deepfake.p_fake, abs=0.05)
    assert turned.deepfake.factors["blend"] == pytest.approx(upright.deepfake.factors["blend"], abs=0.05)
    assert ("gan_fingerprint" in turned.deepfake.factors) == ("gan_fingerprint" in upright.deepfake.factors)


async def test_a_face_found_only_turned_is_parsed_once(analyzer: Analyzer, shared_data: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A face the detector finds only in a turned copy of the photo is kept only if its crop parses as
    an upright face; that parse is reused, not run again on the same crop."""
    photo = read(shared_data / "deepfake" / "gan_vs_real_val" / "real" / "real_555.jpg")
    checked: list[bool] = []
    shows_upright_face = analyzer_module.shows_upright_face

    def checking(labels: np.ndarray) -> bool:
        checked.append(True)
        return shows_upright_face(labels)

    monkeypatch.setattr(analyzer_module, "shows_upright_face", checking)
    parsed: list[str] = []
    parse_crops = analyzer._parse_crops

    def counting(crops: list[np.ndarray]) -> Any:
        parsed.extend(hashlib.sha1(c.tobytes()).hexdigest() for c in crops)
        return parse_crops(crops)

    monkeypatch.setattr(analyzer, "_parse_crops", counting)
    face, _ = await _best_face(analyzer, "image", np.ascontiguousarray(np.rot90(photo, 1)))
    assert checked, "the upright detector found this face: the test no longer covers the turned-only path"
    assert face.class_areas.get("nose", 0) > 0
    assert len(parsed) == len(set(parsed)), "a crop was parsed twice"


@pytest.mark.parametrize("turns", [1, 3])
async def test_a_close_up_turned_a_quarter_is_cut_upright(analyzer: Analyzer, shared_data: Path, turns: int) -> None:
    """A face that fills its 300-px photo: turned a quarter, the parser filled the wrong view's crop with
    parts almost as well as the upright one's (part ratio 0.118 vs 0.153), so the wrong view was kept and
    its left eye came out at 134 px instead of ~580. A view whose parse is not level now gives way to a
    level one with at least its part ratio."""
    photo = read(shared_data / "deepfake" / "gan_vs_real_val" / "real" / "real_540.jpg")
    upright, _ = await _best_face(analyzer, "image", photo)
    turned, _ = await _best_face(analyzer, "image", np.ascontiguousarray(np.rot90(photo, turns)))
    for name in ("left_eye", "right_eye", "nose", "upper_lip"):
        a, b = upright.class_areas.get(name, 0), turned.class_areas.get(name, 0)
        assert a > 0 and 0.8 < b / a < 1.25, (name, a, b)


async def test_a_sideways_face_in_a_stream_gets_no_deepfake_factors_instead_of_a_false_alarm(
        analyzer: Analyzer, shared_data: Path) -> None:
    """Streams do not search orientations on every frame (five more parser passes per face and frame).
    A turned face there is cut sideways, and its parse shows it: no image factor is reported for it."""
    if analyzer.scorer is None:
        pytest.skip("no deepfake models in models/")
    photo = read(sorted((shared_data / "deepfake" / "gan_vs_real_val" / "real").iterdir())[9])
    upright, _ = await _best_face(analyzer, "video", photo)
    sideways, _ = await _best_face(analyzer, "video", np.ascontiguousarray(np.rot90(photo, 1)))
    assert "blend" in upright.deepfake.factors
    assert sideways.deepfake.factors == {}


async def test_a_video_stored_upside_down_is_analysed_upright(analyzer: Analyzer, shared_data: Path) -> None:
    """BlazeFace reports an upside-down face as upright, so a stream stored upside down was cut upside
    down. The orientation search on a stream's first faces turns the stream: later frames are detected
    in the frame turned by 180 degrees, their faces parsed like the upright clip's and scored."""
    frames = video_frames(shared_data / "videos" / "talking_heads" / "driving_d0.mp4", 10)
    upright = analyzer.open_session("video")
    flipped = analyzer.open_session("video")
    try:
        for i, frame in enumerate(frames):
            expected = await upright.analyze(frame, i, i / 25.0)
            got = await flipped.analyze(np.ascontiguousarray(np.rot90(frame, 2)), i, i / 25.0)
        assert upright.orientation.turns == 0 and flipped.orientation.decided and flipped.orientation.turns == 2
        (face,) = got.faces
        assert {"blend", "gan_fingerprint", "boundary"} <= set(face.deepfake.factors)
        back = np.rot90(got.label_map, 2)
        both = (expected.label_map > 0) | (back > 0)
        assert (expected.label_map[both] == back[both]).mean() > 0.8
    finally:
        upright.close()
        flipped.close()


async def test_a_crowded_first_frame_searches_only_the_faces_the_stream_decision_needs(
        analyzer: Analyzer, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream's orientation is decided from its first 3 faces: a first frame with more faces searches
    only the 3 largest (each search costs several parser passes), and an upright group stays unturned."""
    photo = read(shared_data / "multiperson" / "dlib_bald_guys.jpg")
    searched: list[int] = []
    cutters = analyzer._cutters

    def counting(jobs: Any, faces: Any, idx: list[int]) -> Any:
        searched.append(len(idx))
        return cutters(jobs, faces, idx)

    monkeypatch.setattr(analyzer, "_cutters", counting)
    session = analyzer.open_session("video")
    try:
        result = await session.analyze(photo, 0, 0.0)
        again = await session.analyze(photo, 1, 0.04)
    finally:
        session.close()
    assert len(result.faces) > 3 and len(again.faces) > 3
    assert searched == [3] and session.orientation.decided and session.orientation.turns == 0


async def test_the_photo_orientation_search_can_be_turned_off(analyzer: Analyzer, shared_data: Path) -> None:
    """IDENTIX_PHOTO_ORIENTATION_SEARCH=0: an upside-down photo is cut as the detector reads it again."""
    photo = read(sorted((shared_data / "deepfake" / "gan_vs_real_val" / "real").iterdir())[9])
    _, upright_map = await _best_face(analyzer, "image", photo)
    analyzer.photo_orientation_search = False
    try:
        _, turned_map = await _best_face(analyzer, "image", np.ascontiguousarray(np.rot90(photo, 2)))
    finally:
        analyzer.photo_orientation_search = True
    back = np.rot90(turned_map, -2)
    face = (upright_map > 0) | (back > 0)
    assert (upright_map[face] == back[face]).mean() < 0.8
