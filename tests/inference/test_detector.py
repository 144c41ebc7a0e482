"""Face detector: recall on the dlib-annotated group photos, rotated faces, calibration sanity."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from identix_stream.core.tracking import iou
from identix_stream.errors import InvalidInput
from identix_stream.inference.detector import FaceDetector, calibrate_box

pytestmark = pytest.mark.data


def dlib_boxes(root: Path) -> dict[Path, list[tuple[float, float, float, float]]]:
    out: dict[Path, list[tuple[float, float, float, float]]] = {}
    for xml in ("dlib_training.xml", "dlib_testing.xml"):
        for image in ET.parse(root / "multiperson" / xml).getroot().iter("image"):
            boxes = []
            for b in image.iter("box"):
                x, y, w, h = (float(b.get(k, 0)) for k in ("left", "top", "width", "height"))
                boxes.append((x, y, x + w, y + h))
            out[root / "multiperson" / f"dlib_{image.get('file')}"] = boxes
    return out


@pytest.fixture(scope="module")
def detector() -> Iterator[FaceDetector]:
    det = FaceDetector()
    yield det
    det.close()


def read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    if img is None:
        raise FileNotFoundError(path)
    return img


def recall(detector: FaceDetector, shared_data: Path, mapping: str, tile: bool | None = None) -> tuple[int, int]:
    hits = total = 0
    for path, boxes in dlib_boxes(shared_data).items():
        img = read(path)
        dets = detector.detect(img, tile=tile)
        cand = [d.box if mapping == "raw" else d.face_box() for d in dets]
        for g in boxes:
            total += 1
            hits += max((iou(g, c) for c in cand), default=0.0) >= 0.5
    return hits, total


def test_recall_on_dlib_boxes(detector: FaceDetector, shared_data: Path) -> None:
    # dlib boxes are tight squares (brows to chin); BlazeFace's own box is framed the same way,
    # so it is compared as is. The calibrated parser face box (forehead-top..chin) is taller.
    hits, total = recall(detector, shared_data, "raw")
    assert total == 43
    assert hits / total >= 0.95, f"recall {hits}/{total}"
    hits_fb, _ = recall(detector, shared_data, "face_box")
    assert hits_fb / total >= 0.85, f"face-box recall {hits_fb}/{total}"
    # single images are searched in tiles too (what image sessions do): every face is found
    hits_tiled, _ = recall(detector, shared_data, "raw", tile=True)
    assert hits_tiled == total, f"tiled recall {hits_tiled}/{total}"


@pytest.mark.parametrize("angle", [-30, 30])
def test_rolled_faces_are_found_with_their_roll(detector: FaceDetector, shared_data: Path, angle: float) -> None:
    img = read(shared_data / "multiperson" / "obama_and_biden.jpg")
    base = detector.detect(img)
    assert len(base) >= 2
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    rotated = cv2.warpAffine(img, m, (w, h))
    dets = detector.detect(rotated)
    assert len(dets) >= 2
    # cv2's positive angle turns the picture counter-clockwise, i.e. the faces roll by -angle
    # (image y down). Match each face to its rotated self by centre; BlazeFace's 6 keypoints are
    # coarse, so the roll is checked to within 15 degrees.
    for d0 in base[:2]:
        c = m @ np.array([(d0.box[0] + d0.box[2]) / 2, (d0.box[1] + d0.box[3]) / 2, 1.0])
        d = min(dets, key=lambda d: math.dist(c, ((d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2)))
        assert abs(((d.roll_deg - d0.roll_deg + angle) + 180) % 360 - 180) < 15, (d.roll_deg, d0.roll_deg)


def test_small_faces_from_40px(detector: FaceDetector, shared_data: Path) -> None:
    # the 37-45 px faces of a 500x375 VOC photo
    img = read(shared_data / "multiperson" / "dlib_2007_007763.jpg")
    sizes = [d.box[2] - d.box[0] for d in detector.detect(img)]
    assert len(sizes) >= 6 and min(sizes) < 50


def test_no_face_in_a_blank_frame_and_bad_input(detector: FaceDetector) -> None:
    assert detector.detect(np.full((480, 640, 3), 127, np.uint8)) == []
    with pytest.raises(InvalidInput):
        detector.detect(np.zeros((480, 640), np.uint8))


def test_calibration_follows_the_roll() -> None:
    box = (100.0, 100.0, 200.0, 200.0)
    upright = calibrate_box(box, 0.0)
    assert upright[3] - upright[1] > upright[2] - upright[0]  # the face box is taller than wide
    # rolled 90 degrees, the upward shift becomes sideways
    c0 = ((upright[0] + upright[2]) / 2, (upright[1] + upright[3]) / 2)
    rolled = calibrate_box(box, 90.0)
    c90 = ((rolled[0] + rolled[2]) / 2, (rolled[1] + rolled[3]) / 2)
    assert math.isclose(c90[1], 150.0, abs_tol=0.5) and not math.isclose(c0[1], 150.0, abs_tol=0.5)


def test_big_group_photo_is_tiled(detector: FaceDetector, shared_data: Path) -> None:
    img = read(shared_data / "multiperson" / "dlib_bald_guys.jpg")  # 1986x1545, many small faces
    tiled = detector.detect(img)
    whole = FaceDetector(tile_min_side=10_000)
    try:
        single = whole.detect(img)
    finally:
        whole.close()
    assert len(tiled) >= len(single) + 5
    # no face is reported twice after merging the passes
    for i, a in enumerate(tiled):
        for b in tiled[i + 1 :]:
            assert iou(a.box, b.box) < 0.3
