"""The live wire schema (version 1): the one module that builds every JSON message the server sends
over /ws/live, the WebRTC data channel and the video-upload progress stream, and that parses what
a live client sends. docs/protocol.md documents it; change both together.

Client -> server
  binary: 4-byte big-endian header length N, N bytes of UTF-8 JSON header (``{"id": int, "ts"?: number}``),
          then the encoded image (JPEG/PNG/WebP).
  text:   ``{"type": "config", ...}`` (see :class:`LiveConfig`).
Server -> client: text JSON objects, each with ``"v": 1`` and ``"type"``.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal

import cv2
import numpy as np

from identix_stream.core.classes import CLASS_NAMES, PALETTE
from identix_stream.core.types import FaceResult, FrameResult
from identix_stream.errors import IdentixError, InvalidInput
from identix_stream.media.images import decode_label_png, encode_png

PROTOCOL_VERSION: Final[int] = 1
HEADER_PREFIX_BYTES: Final[int] = 4
MAX_HEADER_BYTES: Final[int] = 4096
MAX_FRAME_ID: Final[int] = 2**53 - 1  # ids must survive a round trip through a JavaScript number
MIN_MASK_SCALE: Final[float] = 0.05

MaskEncoding = Literal["png", "none"]
_MASK_ENCODINGS: Final[tuple[str, ...]] = ("png", "none")


# ---------------------------------------------------------------------------------------------
# client -> server


@dataclass(frozen=True, slots=True)
class FrameMessage:
    """One parsed binary frame message: the header fields and the still-encoded image bytes."""

    frame_id: int
    client_ts: float | None
    image: bytes


def peek_frame_id(data: bytes) -> int | None:
    """Best-effort frame id of a message that failed validation, so its error can name the frame."""
    try:
        return parse_frame(data, max_frame_bytes=len(data) + 1, allow_empty_image=True).frame_id
    except InvalidInput:
        return None


def parse_frame(data: bytes, max_frame_bytes: int, *, allow_empty_image: bool = False) -> FrameMessage:
    """Split and validate a binary frame message; raises InvalidInput with a stable code."""
    size = len(data)
    if size > max_frame_bytes:
        raise InvalidInput(
            f"frame message of {size} bytes exceeds the limit of {max_frame_bytes} bytes",
            code="frame_too_large",
        )
    if size < HEADER_PREFIX_BYTES:
        raise InvalidInput(
            f"frame message of {size} bytes is shorter than the {HEADER_PREFIX_BYTES}-byte header length",
            code="bad_header",
        )
    (header_len,) = struct.unpack_from(">I", data, 0)
    if header_len == 0 or header_len > MAX_HEADER_BYTES:
        raise InvalidInput(
            f"header length {header_len} is outside 1..{MAX_HEADER_BYTES} bytes", code="bad_header"
        )
    end = HEADER_PREFIX_BYTES + header_len
    if end > size:
        raise InvalidInput(
            f"header length {header_len} runs past the end of the {size}-byte message", code="bad_header"
        )
    try:
        header = json.loads(data[HEADER_PREFIX_BYTES:end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"frame header is not UTF-8 JSON: {exc}", code="bad_header") from None
    if not isinstance(header, dict):
        raise InvalidInput(f"frame header must be a JSON object, got {type(header).__name__}", code="bad_header")
    frame_id = header.get("id")
    if isinstance(frame_id, bool) or not isinstance(frame_id, int) or not 0 <= frame_id <= MAX_FRAME_ID:
        raise InvalidInput(
            f"frame header 'id' must be an integer in 0..{MAX_FRAME_ID}, got {frame_id!r}", code="bad_header"
        )
    ts = header.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts)):
        raise InvalidInput(f"frame header 'ts' must be a finite number, got {ts!r}", code="bad_header")
    image = bytes(data[end:])
    if not image and not allow_empty_image:
        raise InvalidInput(f"frame {frame_id} carries no image bytes after its header", code="empty_image")
    return FrameMessage(frame_id=frame_id, client_ts=None if ts is None else float(ts), image=image)


def encode_frame(frame_id: int, image: bytes, client_ts: float | None = None) -> bytes:
    """Build a client binary frame message (used by the Python clients in tests and tools)."""
    header: dict[str, Any] = {"id": frame_id}
    if client_ts is not None:
        header["ts"] = client_ts
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return struct.pack(">I", len(raw)) + raw + image


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """What a live client asks to receive; changed by a text ``config`` message at any time."""

    mask: MaskEncoding = "png"  # label-map encoding, or "none" for boxes/tracks/deepfake only
    mask_scale: float = 1.0  # label map size relative to the frame, MIN_MASK_SCALE..1
    landmarks: bool = False  # include per-face landmarks when the detector gives them
    factors: bool = True  # include the per-factor deepfake scores

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_CONFIG_FIELDS: Final[dict[str, type]] = {"mask": str, "mask_scale": float, "landmarks": bool, "factors": bool}


def parse_text_message(text: str, current: LiveConfig) -> LiveConfig:
    """Parse a client text message; the only text message is ``config``. Returns the new config
    (fields not named keep their current value); raises InvalidInput naming the bad field."""
    try:
        msg = json.loads(text)
    except ValueError:
        raise InvalidInput(
            f"text message is not JSON (got {text[:40]!r}); frames are sent as binary messages", code="bad_message"
        ) from None
    if not isinstance(msg, dict):
        raise InvalidInput(f"text message must be a JSON object, got {type(msg).__name__}", code="bad_message")
    kind = msg.get("type")
    if kind != "config":
        raise InvalidInput(f"unknown text message type {kind!r}; the only one is 'config'", code="bad_message")
    changes: dict[str, Any] = {}
    for key, value in msg.items():
        if key in ("type", "v"):
            continue
        expected = _CONFIG_FIELDS.get(key)
        if expected is None:
            raise InvalidInput(
                f"unknown config field {key!r}; known: {', '.join(sorted(_CONFIG_FIELDS))}", code="bad_config"
            )
        if expected is bool:
            if not isinstance(value, bool):
                raise InvalidInput(f"config field {key!r} must be true or false, got {value!r}", code="bad_config")
        elif expected is float:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidInput(f"config field {key!r} must be a number, got {value!r}", code="bad_config")
            value = float(value)
        elif not isinstance(value, str):
            raise InvalidInput(f"config field {key!r} must be a string, got {value!r}", code="bad_config")
        changes[key] = value
    if "mask" in changes and changes["mask"] not in _MASK_ENCODINGS:
        raise InvalidInput(
            f"config field 'mask' must be one of {', '.join(_MASK_ENCODINGS)}, got {changes['mask']!r}",
            code="bad_config",
        )
    if "mask_scale" in changes and not MIN_MASK_SCALE <= changes["mask_scale"] <= 1.0:
        raise InvalidInput(
            f"config field 'mask_scale' must be in {MIN_MASK_SCALE}..1, got {changes['mask_scale']!r}",
            code="bad_config",
        )
    return replace(current, **changes)


# ---------------------------------------------------------------------------------------------
# server -> client


def dumps(message: dict[str, Any]) -> str:
    """Serialise a message compactly (NaN is not JSON: builders never put one in)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def message(kind: str, **fields: Any) -> dict[str, Any]:
    """Any server message: ``{"v": 1, "type": kind, **fields}`` (e.g. an upload's ``progress``)."""
    return {"v": PROTOCOL_VERSION, "type": kind, **fields}


def hello_message(
    config: LiveConfig, *, max_frame_bytes: int, max_fps: float, device: str, precision: str
) -> dict[str, Any]:
    """Sent once when a live connection opens: limits, the class table and the active config."""
    return message(
        "hello",
        limits={"max_frame_bytes": max_frame_bytes, "max_fps": max_fps, "max_header_bytes": MAX_HEADER_BYTES},
        classes=list(CLASS_NAMES),
        palette=PALETTE.tolist(),
        config=config.to_json(),
        device=device,
        precision=precision,
    )


def config_message(config: LiveConfig) -> dict[str, Any]:
    """The answer to a valid ``config`` message: the whole config now in force."""
    return message("config", config=config.to_json())


def dropped_message(frame_id: int, reason: str) -> dict[str, Any]:
    """A frame that was received but not analysed (superseded / rate_limited / overloaded)."""
    return message("dropped", id=frame_id, reason=reason)


def error_message(code: str, msg: str, frame_id: int | None = None) -> dict[str, Any]:
    out = message("error", code=code, message=msg)
    if frame_id is not None:
        out["id"] = frame_id
    return out


def error_from_exception(exc: IdentixError, frame_id: int | None = None) -> dict[str, Any]:
    return error_message(exc.code, exc.message, frame_id)


def encode_label_map(label_map: np.ndarray, scale: float) -> dict[str, Any]:
    """The label map as an 8-bit grayscale PNG whose pixel values are class ids, nearest-neighbour
    resized by ``scale`` (width/height rounded, at least 1), base64 in the JSON."""
    height, width = label_map.shape
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    labels = label_map
    if (out_w, out_h) != (width, height):
        labels = cv2.resize(label_map, (out_w, out_h), interpolation=cv2.INTER_NEAREST)
    return {
        "encoding": "png",
        "width": out_w,
        "height": out_h,
        "data": base64.b64encode(encode_png(np.ascontiguousarray(labels))).decode("ascii"),
    }


def decode_label_map(encoded: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_label_map` (for Python clients and tests)."""
    labels = decode_label_png(base64.b64decode(encoded["data"]))
    if labels.shape != (encoded["height"], encoded["width"]):
        raise InvalidInput("label map PNG does not decode to its declared size", code="bad_label_map")
    return labels


def _round_box(box: tuple[float, float, float, float]) -> list[float]:
    return [round(float(v), 1) for v in box]


def face_json(face: FaceResult, config: LiveConfig) -> dict[str, Any]:
    deepfake = face.deepfake.to_json()
    if not config.factors:
        deepfake.pop("factors", None)
        deepfake.pop("observations", None)
    out: dict[str, Any] = {
        "track_id": face.track_id,
        "box": _round_box(face.box),
        "score": round(float(face.score), 4),
        "track_state": face.track_state,
        "class_areas": {name: int(n) for name, n in face.class_areas.items()},
        "deepfake": deepfake,
    }
    if config.landmarks:
        out["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks]
    return out


def result_message(
    result: FrameResult,
    config: LiveConfig = LiveConfig(),  # frozen, so safe as a default
    *,
    client_ts: float | None = None,
    extra_timing: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The ``result`` message for one analysed frame."""
    timing = {k: round(float(v), 2) for k, v in result.timing_ms.items()}
    if extra_timing:
        timing.update({k: round(float(v), 2) for k, v in extra_timing.items()})
    out = message(
        "result",
        id=result.frame_id,
        width=result.width,
        height=result.height,
        status=result.status,
        faces=[face_json(face, config) for face in result.faces],
        label_map=None if config.mask == "none" else encode_label_map(result.label_map, config.mask_scale),
        timing=timing,
    )
    if result.timestamp is not None:
        out["timestamp"] = round(float(result.timestamp), 4)
    if client_ts is not None:
        out["client_ts"] = client_ts
    return out
