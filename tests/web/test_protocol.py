"""The live wire schema: frame parsing and its errors, config messages, result/dropped/error builders."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from identix_stream.core.classes import CELEBAMASK19_TO_11, IGNORE_INDEX
from identix_stream.core.types import DeepfakeEstimate, FaceResult, FrameResult
from identix_stream.errors import InvalidInput
from identix_stream.web import protocol
from identix_stream.web.protocol import LiveConfig


def _jpeg() -> bytes:
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, 32:] = (40, 200, 90)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def _raw(header: bytes, image: bytes = b"x") -> bytes:
    return struct.pack(">I", len(header)) + header + image


def test_frame_round_trip() -> None:
    jpeg = _jpeg()
    msg = protocol.parse_frame(protocol.encode_frame(7, jpeg, client_ts=123.5), max_frame_bytes=1 << 20)
    assert (msg.frame_id, msg.client_ts, msg.image) == (7, 123.5, jpeg)
    assert protocol.parse_frame(protocol.encode_frame(0, jpeg), 1 << 20).client_ts is None


@pytest.mark.parametrize(
    ("data", "code", "needle"),
    [
        (b"\x00\x00", "bad_header", "shorter"),
        (struct.pack(">I", 0) + b"img", "bad_header", "header length 0"),
        (struct.pack(">I", 5000) + b"{}", "bad_header", "header length 5000"),
        (struct.pack(">I", 40) + b'{"id": 1}', "bad_header", "runs past"),
        (_raw(b"\xff\xfe{"), "bad_header", "UTF-8 JSON"),
        (_raw(b"{id: 1}"), "bad_header", "UTF-8 JSON"),
        (_raw(b"[1]"), "bad_header", "JSON object"),
        (_raw(b"{}"), "bad_header", "None"),
        (_raw(b'{"id": "3"}'), "bad_header", "'3'"),
        (_raw(b'{"id": -1}'), "bad_header", "-1"),
        (_raw(b'{"id": true}'), "bad_header", "True"),
        (_raw(b'{"id": 1.5}'), "bad_header", "1.5"),
        (_raw(b'{"id": 9007199254740992}'), "bad_header", "9007199254740992"),
        (_raw(b'{"id": 1, "ts": "now"}'), "bad_header", "'now'"),
        (_raw(b'{"id": 1, "ts": NaN}'), "bad_header", "nan"),
        (_raw(b'{"id": 4}', b""), "empty_image", "frame 4"),
        (_raw(b'{"id": 4}', b"x" * 200), "frame_too_large", "limit of 100 bytes"),
    ],
)
def test_bad_frames_name_the_problem(data: bytes, code: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        protocol.parse_frame(data, max_frame_bytes=100)
    assert err.value.code == code
    assert needle in err.value.message


def test_peek_frame_id_recovers_the_id_of_an_oversized_or_empty_frame() -> None:
    assert protocol.peek_frame_id(protocol.encode_frame(11, b"y" * 500)) == 11
    assert protocol.peek_frame_id(protocol.encode_frame(12, b"")) == 12
    assert protocol.peek_frame_id(b"\x00\x00\x00\x02{}") is None
    assert protocol.peek_frame_id(b"garbage") is None


def test_config_messages() -> None:
    cfg = protocol.parse_text_message('{"type": "config", "mask_scale": 0.25}', LiveConfig())
    assert cfg == LiveConfig(mask_scale=0.25)
    cfg = protocol.parse_text_message('{"type": "config", "mask": "none", "landmarks": true}', cfg)
    assert cfg == LiveConfig(mask="none", mask_scale=0.25, landmarks=True)
    assert protocol.config_message(cfg)["config"]["mask"] == "none"


@pytest.mark.parametrize(
    ("text", "code", "needle"),
    [
        ("hello", "bad_message", "not JSON"),
        ("[1, 2]", "bad_message", "JSON object"),
        ('{"type": "frame"}', "bad_message", "'frame'"),
        ('{"mask": "png"}', "bad_message", "None"),
        ('{"type": "config", "colour": 1}', "bad_config", "'colour'"),
        ('{"type": "config", "mask": "rle"}', "bad_config", "'rle'"),
        ('{"type": "config", "mask": 3}', "bad_config", "must be a string"),
        ('{"type": "config", "mask_scale": 0}', "bad_config", "0.05..1"),
        ('{"type": "config", "mask_scale": 2}', "bad_config", "0.05..1"),
        ('{"type": "config", "mask_scale": "big"}', "bad_config", "'big'"),
        ('{"type": "config", "mask_scale": true}', "bad_config", "True"),
        ('{"type": "config", "landmarks": 1}', "bad_config", "true or false"),
    ],
)
def test_bad_text_messages(text: str, code: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        protocol.parse_text_message(text, LiveConfig())
    assert err.value.code == code
    assert needle in err.value.message


def _real_label_map(shared_data: Path) -> np.ndarray:
    mask_path = sorted((shared_data / "face_parsing/celebamask_mini/masks").glob("*.png"))[0]
    mask19 = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    labels = CELEBAMASK19_TO_11[mask19]
    labels[labels == IGNORE_INDEX] = 0
    return labels


def _result(labels: np.ndarray) -> FrameResult:
    face = FaceResult(
        track_id=3,
        box=(10.123, 20.0, 200.55, 240.0),
        score=0.98765,
        class_areas={"skin": 1200, "nose": 80},
        deepfake=DeepfakeEstimate(p_fake=0.12345, state="likely_real", factors={"blink": 0.5, "jitter": None},
                                  observations={"blink": {"text": "3 blinks in 12.0 s", "blinks": 3}}),
        track_state="confirmed",
        landmarks=((50.0, 60.0), (70.0, 61.0)),
    )
    h, w = labels.shape
    return FrameResult(
        frame_id=42, width=w, height=h, status="ok", faces=(face,), label_map=labels,
        timing_ms={"detect": 4.321, "parse": 50.0}, timestamp=1.5,
    )


@pytest.mark.data
def test_result_message_round_trips_a_real_label_map(shared_data: Path) -> None:
    labels = _real_label_map(shared_data)
    result = _result(labels)
    msg = json.loads(protocol.dumps(protocol.result_message(result, client_ts=99.0, extra_timing={"total": 61.26})))
    assert msg["v"] == 1 and msg["type"] == "result" and msg["id"] == 42
    assert msg["width"] == 512 and msg["height"] == 512 and msg["status"] == "ok"
    assert msg["client_ts"] == 99.0 and msg["timestamp"] == 1.5
    assert msg["timing"] == {"detect": 4.32, "parse": 50.0, "total": 61.26}
    (face,) = msg["faces"]
    assert face["track_id"] == 3 and face["box"] == [10.1, 20.0, 200.6, 240.0] and face["score"] == 0.9877
    assert face["track_state"] == "confirmed" and face["class_areas"] == {"skin": 1200, "nose": 80}
    assert face["deepfake"]["state"] == "likely_real" and face["deepfake"]["p_fake"] == 0.1235
    assert face["deepfake"]["factors"] == {"blink": 0.5, "jitter": None}
    assert face["deepfake"]["observations"] == {"blink": {"text": "3 blinks in 12.0 s", "blinks": 3}}
    assert "landmarks" not in face
    np.testing.assert_array_equal(protocol.decode_label_map(msg["label_map"]), labels)
    assert len(msg["label_map"]["data"]) < labels.size // 10  # far smaller than raw bytes


@pytest.mark.data
def test_result_message_honours_the_config(shared_data: Path) -> None:
    labels = _real_label_map(shared_data)
    result = _result(labels)
    cfg = LiveConfig(mask_scale=0.25, landmarks=True, factors=False)
    msg = protocol.result_message(result, cfg)
    small = protocol.decode_label_map(msg["label_map"])
    assert small.shape == (128, 128)
    expected = cv2.resize(labels, (128, 128), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(small, expected)
    assert set(np.unique(small)) <= set(np.unique(labels))
    assert msg["faces"][0]["landmarks"] == [[50.0, 60.0], [70.0, 61.0]]
    assert "factors" not in msg["faces"][0]["deepfake"] and "observations" not in msg["faces"][0]["deepfake"]
    assert protocol.result_message(result, LiveConfig(mask="none"))["label_map"] is None


def test_dropped_and_error_messages() -> None:
    assert protocol.dropped_message(5, "superseded") == {"v": 1, "type": "dropped", "id": 5, "reason": "superseded"}
    err = InvalidInput("frame 9 is not an image", code="not_an_image")
    assert protocol.error_from_exception(err, 9) == {
        "v": 1, "type": "error", "code": "not_an_image", "message": "frame 9 is not an image", "id": 9,
    }
    assert "id" not in protocol.error_message("bad_message", "nope")
    hello = protocol.hello_message(LiveConfig(), max_frame_bytes=1000, max_fps=30, device="cpu", precision="fp32")
    assert hello["classes"][10] == "hair" and len(hello["palette"]) == 11
    assert hello["limits"]["max_frame_bytes"] == 1000
