"""Faces searched in turned copies of a photo: the mapping back is exact, and a sideways face gets its roll."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from identix_stream.core.geometry import turn_point, turns_to_upright, unturn_point
from identix_stream.inference.detector import Detection, FaceDetector, unturn_detection
from identix_stream.pipeline.orientation import group_turned


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_a_point_of_a_turned_image_maps_back_onto_the_same_pixel(turns: int) -> None:
    image = np.zeros((40, 70), np.uint8)
    image[11, 52] = 1  # pixel centre (52.5, 11.5)
    turned = np.rot90(image, turns)
    y, x = np.argwhere(turned)[0]
    assert unturn_point(x + 0.5, y + 0.5, turns, 70, 40) == pytest.approx((52.5, 11.5))
    assert turn_point(52.5, 11.5, turns, 70, 40) == pytest.approx((x + 0.5, y + 0.5))


@pytest.mark.parametrize(("roll", "turns"), [(3.0, 0), (-88.0, 1), (179.0, 2), (-179.0, 2), (95.0, 3), (40.0, 0)])
def test_the_turns_that_bring_a_face_upright(roll: float, turns: int) -> None:
    assert turns_to_upright(roll) == turns


def test_a_detection_in_a_quarter_turn_comes_back_with_the_turn_in_its_roll() -> None:
    # an upright face in the turned copy: eyes level, the person's right eye on the image left
    keypoints = ((40.0, 35.0), (60.0, 35.0), (50.0, 45.0), (50.0, 52.0), (32.0, 38.0), (68.0, 38.0))
    upright = Detection((30.0, 20.0, 70.0, 60.0), 0.9, keypoints)
    assert upright.roll_deg == pytest.approx(0.0)
    back = unturn_detection(upright, 1, 100, 80)
    assert back.box == pytest.approx((100 - 60.0, 30.0, 100 - 20.0, 70.0))
    assert abs(back.roll_deg) == pytest.approx(90.0)
    assert back.score == 0.9


def test_detections_of_one_face_in_several_turns_form_one_group() -> None:
    a = Detection((10.0, 10.0, 50.0, 50.0), 0.8)
    same_turned = Detection((12.0, 8.0, 52.0, 49.0), 0.95)
    elsewhere = Detection((200.0, 10.0, 240.0, 50.0), 0.6)
    groups = group_turned([[a], [same_turned], [elsewhere], []])
    assert [(g[0], g[1], g[2]) for g in groups] == [(a, (same_turned,), True), (elsewhere, (), False)]


@pytest.mark.data
def test_a_sideways_photo_is_found_upright_in_a_turned_copy(shared_data: Path) -> None:
    path = sorted((shared_data / "deepfake" / "gan_vs_real_val" / "real").iterdir())[0]
    photo = cv2.imread(str(path))
    if photo is None:
        raise FileNotFoundError(path)
    detector = FaceDetector()
    try:
        upright_roll = detector.detect(photo)[0].roll_deg
        for turns in (1, 2, 3):
            per_turn = detector.detect_turned(np.ascontiguousarray(np.rot90(photo, turns)), tile=True)
            rolls = [d.roll_deg for dets in per_turn for d in dets]
            expected = upright_roll - 90.0 * turns  # np.rot90 turns counter-clockwise
            gaps = [abs((r - expected + 180.0) % 360.0 - 180.0) for r in rolls]
            assert min(gaps) < 15.0, (turns, rolls, expected)
    finally:
        detector.close()
