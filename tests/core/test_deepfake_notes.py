"""What the deepfake factors saw: the notes' regions, wording and measurements (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from identix_stream.core import deepfake_notes as notes
from identix_stream.core.classes import BACKGROUND, HAIR, L_EYE, MOUTH, SKIN, U_LIP


def _cell(*parts: tuple[int, float]) -> np.ndarray:
    """A 20x20 patch filled with class ids in the given shares, row by row."""
    flat = np.concatenate([np.full(round(400 * share), cls, np.uint8) for cls, share in parts])
    return flat[:400].reshape(20, 20)


@pytest.mark.parametrize(("parts", "region"), [
    (((SKIN, 0.5), (HAIR, 0.5)), "face outline"),
    (((SKIN, 0.5), (BACKGROUND, 0.5)), "face outline"),
    (((SKIN, 0.9), (BACKGROUND, 0.1)), "skin"),
    (((HAIR, 0.95), (SKIN, 0.05)), "hair"),
    (((L_EYE, 0.6), (SKIN, 0.4)), "left eye"),
    (((U_LIP, 0.3), (MOUTH, 0.4), (SKIN, 0.3)), "mouth"),
])
def test_cell_region(parts: tuple[tuple[int, float], ...], region: str) -> None:
    assert notes.cell_region(_cell(*parts)) == region


def test_cell_region_of_an_empty_patch_is_background() -> None:
    assert notes.cell_region(np.zeros((0, 0), np.uint8)) == "background"


def test_blend_note_words_the_reading() -> None:
    assert notes.blend_note(0.9, "face outline") == {
        "text": "blend-seam evidence, strongest on the face outline", "region": "face outline"}
    assert notes.blend_note(0.2, "skin")["text"] == "no clear blend seam (strongest on the skin)"


def test_fingerprint_notes() -> None:
    grid = notes.fingerprint_note(0.9, 9, 160)
    assert grid["squares"] == 9 and "generator" in str(grid["text"]) and "9 squares" in str(grid["text"])
    assert "camera-like" in str(notes.fingerprint_note(0.1, 1, 160)["text"])
    small = notes.fingerprint_small_frame(99, 160)
    assert small["reason"] == "small_image" and small["image_px"] == 99 and "99 px" in str(small["text"])
    assert notes.fingerprint_enlarged(1.5)["shrink"] == 1.5


def test_turned_notes_cover_every_factor_with_their_own_dicts() -> None:
    seen = notes.turned_notes(("blend", "boundary"))
    assert set(seen) == {"blend", "boundary"} and all(n["reason"] == "face_turned" for n in seen.values())
    assert seen["blend"] is not seen["boundary"]


def test_boundary_note_names_the_strongest_sign() -> None:
    features = np.array([np.log(0.5), 0.0, 0.85, 0.0, np.log(2.0)])
    note = notes.boundary_note(features, np.array([0.1, 0.0, -2.0, 0.3, 0.5]))
    assert note["noise_ratio"] == 0.5 and note["sharpness_ratio"] == 2.0 and note["colour_gap"] == 8.5
    assert str(note["text"]).endswith("strongest sign: colour gap at the face edge (towards real)")


def test_temporal_notes_say_when_they_will_speak() -> None:
    assert notes.blink_note(1, 4.0, 10.0)["text"] == "1 blink in 4.0 s; speaks after 10 s"
    ready = notes.blink_note(4, 12.0, 10.0)
    assert "(20 a minute" in str(ready["text"]) and ready["blinks"] == 4 and ready["seconds"] == 12.0
    assert "speaks after 25" in str(notes.jump_note(0, 10, 25, 0.02)["text"])
    assert "(5.0%; speaks above 2%)" in str(notes.jump_note(2, 40, 25, 0.02)["text"])
    assert notes.jitter_note(None, None, 4, 10, 0.04) == {"text": "needs 10 frames (4 so far)", "frames": 4}
    assert notes.jitter_note(0.012, 0.003, 30, 10, 0.04)["box"] == 0.012
    assert "needs 2 s" in str(notes.expression_note(None, None, 1.0, 2.0, 0.15)["text"])
    frozen = notes.expression_note(0.05, None, 3.0, 2.0, 0.15)
    assert frozen["mouth_variation"] == 0.05 and "eye_variation" not in frozen
    assert str(frozen["text"]).startswith("mouth area varies 5%")
