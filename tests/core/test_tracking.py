"""Face tracker: ids, states and recovery, table-driven on synthetic box sequences."""

from __future__ import annotations

import pytest

from identix_stream.core.tracking import FaceTracker, iou

A = (100.0, 100.0, 200.0, 220.0)
B = (400.0, 120.0, 480.0, 220.0)


def shifted(box: tuple[float, float, float, float], dx: float, dy: float = 0.0) -> tuple[float, float, float, float]:
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(A, A, 1.0), (A, B, 0.0), ((0, 0, 10, 10), (5, 0, 15, 10), 1 / 3)],
)
def test_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float], expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)


def test_two_faces_keep_their_ids_while_moving() -> None:
    t = FaceTracker()
    first = t.update([A, B])
    ids = [tr.track_id for tr in first]
    assert len(set(ids)) == 2 and [tr.state for tr in first] == ["tentative", "tentative"]
    for step in range(1, 10):
        # order of detections changes from frame to frame; ids follow the faces
        out = t.update([shifted(B, -8 * step), shifted(A, 10 * step, 3 * step)])
        assert [tr.track_id for tr in out] == [ids[1], ids[0]]
        assert all(tr.state == "confirmed" for tr in out)


def test_fast_motion_without_overlap_keeps_the_id() -> None:
    t = FaceTracker()
    tid = t.update([A])[0].track_id
    t.update([A])
    # jumps 60 px (half the box side): IoU 0.25 but the centre is near
    moved = shifted(A, 60)
    assert iou(A, moved) < 0.3
    assert t.update([moved])[0].track_id == tid


def test_lost_then_recovered_and_tentative_discarded() -> None:
    t = FaceTracker(max_lost=3)
    tid = t.update([A])[0].track_id
    t.update([A])
    t.update([])
    assert [tr.state for tr in t.tracks] == ["lost"]
    back = t.update([shifted(A, 5)])[0]
    assert back.track_id == tid and back.state == "confirmed"
    # a one-frame false positive is tentative and gone after one miss
    ghost = t.update([shifted(A, 5), B])[1]
    assert ghost.state == "tentative"
    t.update([shifted(A, 5)])
    assert all(tr.track_id != ghost.track_id for tr in t.tracks)


def test_lost_track_expires_and_new_face_gets_new_id() -> None:
    t = FaceTracker(max_lost=2)
    tid = t.update([A])[0].track_id
    t.update([A])
    for _ in range(3):
        t.update([])
    assert t.tracks == []
    assert t.update([A])[0].track_id != tid


def test_single_images_confirm_at_once() -> None:
    out = FaceTracker(confirm_hits=1).update([A, B])
    assert [tr.state for tr in out] == ["confirmed", "confirmed"]
