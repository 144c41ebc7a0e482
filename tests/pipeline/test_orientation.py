"""pipeline/orientation.py: the orientation search on a simulated face (no models): the crop at a given
roll shows the synthetic parse turned by how far that roll is from the face's true roll."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from identix_stream.core.classes import L_BROW, L_EYE, L_LIP, NOSE, NUM_CLASSES, R_BROW, R_EYE, SKIN, U_LIP
from identix_stream.pipeline.orientation import FaceView, orient_faces

BOX = (10.0, 10.0, 90.0, 90.0)


def upright_parse() -> np.ndarray:
    lab = np.zeros((256, 256), np.uint8)
    lab[40:230, 50:206] = SKIN
    lab[80:90, 76:112] = R_BROW
    lab[80:90, 144:180] = L_BROW
    lab[95:105, 80:110] = R_EYE
    lab[95:105, 146:176] = L_EYE
    lab[110:150, 118:138] = NOSE
    lab[170:180, 100:156] = U_LIP
    lab[182:192, 100:156] = L_LIP
    return lab


class SimulatedFace:
    """Crops of one face whose true roll is ``true_roll``; counts the crops it was asked to parse. As the
    real parser does, it finds fewer parts in a crop turned more than 30 degrees."""

    def __init__(self, true_roll: float) -> None:
        self.true_roll = true_roll
        self.parsed = 0

    def cut(self, roll: float, box: tuple[float, float, float, float] | None) -> tuple:
        residual = self.true_roll - roll  # the roll left in a crop cut at ``roll``
        m = cv2.getRotationMatrix2D((128.0, 128.0), -residual, 1.0)
        labels = cv2.warpAffine(upright_parse(), m, (256, 256), flags=cv2.INTER_NEAREST)
        if _gap(residual, 0.0) > 30.0:
            labels[np.isin(labels, (L_BROW, R_BROW, U_LIP, L_LIP))] = SKIN
        return box or BOX, labels, np.eye(2, 3)

    def parse(self, crops: list[np.ndarray]) -> list[torch.Tensor]:
        self.parsed += len(crops)
        return [torch.nn.functional.one_hot(torch.from_numpy(c.astype(np.int64)), NUM_CLASSES).permute(2, 0, 1).float()
                for c in crops]

    def first_view(self, roll: float) -> FaceView:
        box, crop, m = self.cut(roll, None)
        return FaceView.parsed(roll, box, crop, m, self.parse([crop])[0])


def _gap(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize(("true_roll", "detector_roll"), [(90.0, 0.0), (180.0, 3.0), (-90.0, 10.0), (-100.0, -40.0)])
def test_a_turned_face_ends_cut_upright(true_roll: float, detector_roll: float) -> None:
    face = SimulatedFace(true_roll)
    first = face.first_view(detector_roll)
    [view] = orient_faces([first], [face.cut], face.parse, [[]])
    assert _gap(view.roll, true_roll) < 5.0, view.roll
    assert view.share > first.share


def test_an_upright_face_keeps_its_first_view() -> None:
    face = SimulatedFace(4.0)
    first = face.first_view(4.0)
    [view] = orient_faces([first], [face.cut], face.parse, [[]])
    assert view is first
    assert face.parsed == 1 + 3  # the first view and three quarter turns; no eye-line step needed


def test_a_detection_from_a_turned_copy_is_a_candidate() -> None:
    face = SimulatedFace(135.0)  # between two quarter turns of the detector's roll 0
    first = face.first_view(0.0)
    [view] = orient_faces([first], [face.cut], face.parse, [[(133.0, (20.0, 20.0, 80.0, 80.0))]])
    assert _gap(view.roll, 135.0) < 5.0
    assert view.box == (20.0, 20.0, 80.0, 80.0)
