"""WebSocket `/ws/stream`: landmark frames in (one a message, ~30 Hz), predictions out.

    ws://host/ws/stream?window=60&stride=8&layout=pose_hands

Client -> server, one JSON text message per frame, any of:
    [v0, v1, ...]                                   a flat frame (1629/1662/258/170/126 values)
    {"frame": [...], "layout": "...", "timestamp": t}
    {"landmarks": [[x, y, z] x 21], "handedness": "right", "timestamp": t}   one hand (HandTalk)
    {"type": "reset"}                               forget the window
Server -> client:
    {"type": "ready", "window": 60, "stride": 8, "min_frames": 8}
    {"type": "prediction", "frame": n, "timestamp": t, ...InferenceResponse}   a sign was accepted
    {"type": "no_sign", "frame": n, "timestamp": t, ...InferenceResponse}      idle / rejected
    {"type": "error", "error": code, "message": what to fix}                   the stream goes on

The server keeps only the last ``window`` frames (a deque), so memory stays flat however long
the stream; every ``stride`` frames it recognises the window in a worker thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque

import numpy as np
from anyio import to_thread
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from signseek.errors import SignSeekError
from signseek.landmarks.schema import LEFT_HAND, PARTS, RIGHT_HAND, empty_points

from .errors import ApiError, describe, error_body
from .payloads import COORDINATE_RULE, coordinate, frames_to_points, hand_points_frame, invalid, point_xyz
from .service import Service
from .strict_json import loads_strict

router = APIRouter()
log = logging.getLogger("signseek.api.stream")

DEFAULT_WINDOW = 60  # 2 s at 30 Hz
DEFAULT_STRIDE = 8
MAX_WINDOW = 300
MIN_FRAMES = 8  # a window shorter than this is not worth recognising
MAX_MESSAGE_BYTES = 256 * 1024
_NUMBER_TYPES = {float, int, type(None)}  # bool is a subclass of int, but its own type here  # one frame of 1662 values is ~30 kB of JSON


class FrameWindow:
    """The last ``size`` canonical frames of a stream, and how many frames came in overall."""

    def __init__(self, size: int, stride: int, min_frames: int = MIN_FRAMES) -> None:
        self.frames: deque[np.ndarray] = deque(maxlen=size)
        self.stride = stride
        self.min_frames = min(min_frames, size)
        self.count = 0

    def push(self, frame: np.ndarray) -> bool:
        """Add a frame [543, 3]; True when a prediction is due."""
        self.frames.append(frame)
        self.count += 1
        return len(self.frames) >= self.min_frames and self.count % self.stride == 0

    def clear(self) -> None:
        self.frames.clear()

    def points(self) -> np.ndarray:
        return np.stack(self.frames)

    def has_hands(self) -> bool:
        """Any hand in the window? (No: idle, no need to run the model.)"""
        return any(np.isfinite(f[LEFT_HAND, 0]).all() or np.isfinite(f[RIGHT_HAND, 0]).all() for f in self.frames)


def parse_parts_frame(data: dict) -> np.ndarray:
    """{"pose": [[x,y,z] x 33], "left_hand": [...], "right_hand": [...], "face": [...]} -> [543, 3]."""
    frame = empty_points(1)[0]
    for part, block in PARTS.items():
        values = data.get(part)
        if values is None:
            continue
        size = block.stop - block.start
        if not isinstance(values, list) or len(values) != size:
            raise invalid(f"{part} must be {size} points as [[x, y, z], ...], got {len(values) if isinstance(values, list) else type(values).__name__}")
        frame[block] = np.array([point_xyz(p, i) for i, p in enumerate(values)], dtype=np.float32)
    return frame


def parse_frame_message(data, default_layout: str | None) -> tuple[np.ndarray | None, float | None]:
    """A decoded message -> (canonical frame [543, 3], timestamp), or (None, None) for a reset."""
    timestamp = None
    if isinstance(data, dict):
        if data.get("type") == "reset":
            return None, None
        ts = data.get("timestamp")
        timestamp = float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None
        if timestamp is not None and not math.isfinite(timestamp):  # Socket.IO's parser lets NaN through
            timestamp = None
        if "landmarks" in data:
            return hand_points_frame(data["landmarks"], data.get("handedness")), timestamp
        if "frame" in data:
            layout = data.get("layout", default_layout)
            if layout is not None and not isinstance(layout, str):
                raise invalid("layout must be a string such as 'pose_hands'")
            values = data["frame"]
        elif any(k in data for k in ("pose", "left_hand", "right_hand", "face")):
            return parse_parts_frame(data), timestamp
        else:
            raise invalid("a message is a frame: [values...], {\"frame\": [...]}, {\"landmarks\": 21 points} "
                          "or {\"type\": \"reset\"}", "invalid_message")
    else:
        values, layout = data, default_layout
    if not isinstance(values, list):
        raise invalid(f"a frame is a flat list of numbers, one frame a message: {COORDINATE_RULE}")
    if not set(map(type, values)) <= _NUMBER_TYPES:  # C speed; the slow path names the culprit
        if any(isinstance(v, (list, dict)) for v in values):
            raise invalid(f"a frame is a flat list of numbers, one frame a message: {COORDINATE_RULE}")
        for i, value in enumerate(values):
            coordinate(value, f"frame value {i}")
    points, _, _ = frames_to_points([values], layout, 1)  # the range part of the rule, as on REST
    return points[0], timestamp


def stream_result(result: dict, frame: int, timestamp: float | None) -> dict:
    kind = "prediction" if result.get("accepted") else "no_sign"
    return {"type": kind, "frame": frame, "timestamp": timestamp, **result}


def idle_result(service: Service, reason: str = "no_hands") -> dict:
    """What the stream says when nobody is signing, without running the model."""
    return {
        "top_k": 0, "results": [],
        "label": None, "confidence": 0.0, "accepted": False, "rejection_reason": reason,
        "motion": 0.0, "model": "none", "timings_ms": {}, "model_version": service.model_version,
    }


def _error(exc) -> dict:
    status, code, message, _ = describe(exc)
    return error_body(status, code, message, type="error")


def _bounded_int(value: str | None, default: int, low: int, high: int, name: str) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"{name} must be an integer between {low} and {high}") from None
    if not low <= number <= high:
        raise invalid(f"{name} must be between {low} and {high}, got {number}")
    return number


@router.websocket("/ws/stream")
async def ws_stream(websocket: WebSocket) -> None:
    service: Service = websocket.app.state.service
    await websocket.accept()
    params = websocket.query_params
    try:
        size = _bounded_int(params.get("window"), DEFAULT_WINDOW, 1, MAX_WINDOW, "window")
        stride = _bounded_int(params.get("stride"), DEFAULT_STRIDE, 1, MAX_WINDOW, "stride")
        layout = params.get("layout")
    except (SignSeekError, ApiError) as exc:
        await websocket.send_json(_error(exc))
        await websocket.close(code=1008)
        return
    window = FrameWindow(size, stride)
    await websocket.send_json({"type": "ready", "window": size, "stride": stride, "min_frames": window.min_frames})
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text") if message.get("text") is not None else message.get("bytes")
            try:
                if raw is None or len(raw) > MAX_MESSAGE_BYTES:
                    raise invalid(f"a message must be one JSON frame of at most {MAX_MESSAGE_BYTES} bytes",
                                  "invalid_message")
                data = loads_strict(raw)
                frame, timestamp = parse_frame_message(data, layout)
            except (SignSeekError, ApiError) as exc:
                await websocket.send_json(_error(exc))
                continue
            if frame is None:
                window.clear()
                continue
            if not window.push(frame):
                continue
            if not window.has_hands():
                await websocket.send_json(stream_result(idle_result(service), window.count, timestamp))
                continue
            start = time.perf_counter()
            try:
                result = await to_thread.run_sync(service.predict, window.points())
            except (SignSeekError, ApiError) as exc:
                await websocket.send_json(_error(exc))
                continue
            result["timings_ms"] = {**result.get("timings_ms", {}), "total": round((time.perf_counter() - start) * 1000, 3)}
            await websocket.send_json(stream_result(result, window.count, timestamp))
    except WebSocketDisconnect:
        pass
    log.info("stream closed", extra={"fields": {"event": "ws_closed", "frames": window.count}})
