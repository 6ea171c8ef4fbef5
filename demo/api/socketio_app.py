"""Socket.IO at /socket.io with HandTalk's events, so HandTalk clients work unchanged.

Client -> server, event ``landmark_stream``:
    {"landmarks": [[x, y, z] x 21] or [{"x", "y", "z"} x 21], "timestamp": t}      one hand
    {"landmarks": ..., "handedness": "left" | "right", "timestamp": t}
    {"frame": [1629 | 1662 | 258 | 170 | 126 values], "layout": "...", "timestamp": t}  a Holistic frame
    {"pose": [...33], "face": [...468], "left_hand": [...21], "right_hand": [...21]}   a Holistic frame by part
Server -> client:
    ``prediction``  {"label", "confidence", "latency_ms", "accepted", "rejection_reason", "model",
                     "top_k" (how many results), "results" (the guide's ranked entries, as in
                     InferenceResponse), "timestamp", "frame"}; ``label`` is "" when no sign was accepted
    ``error``       {"message", "error"}

Frames go into a per-connection sliding window (HandTalk's 30 frames); every ``STRIDE`` frames
the window is recognised. A hand with no body goes to the hands-only model (the bundle's
fingerspelling classifier); ``model`` says which model answered.
"""

from __future__ import annotations

import logging
import time

import socketio
from anyio import to_thread
from fastapi import FastAPI

from signseek.errors import SignSeekError

from .errors import ApiError
from .service import Service
from .streaming import FrameWindow, idle_result, parse_frame_message

log = logging.getLogger("signseek.api.socketio")

WINDOW = 30  # HandTalk's buffer
STRIDE = 5
MAX_MESSAGE_BYTES = 1_000_000


def mount(app: FastAPI, service: Service) -> socketio.AsyncServer:
    """Create the Socket.IO server, mount it on ``app`` at /socket.io, return it."""
    # async_handlers=False: one client's events are handled one after another, in the order
    # they arrived, so its window fills in order and its predictions go out in order (other
    # clients are not held up: inference runs in a worker thread).
    sio = socketio.AsyncServer(
        async_mode="asgi", cors_allowed_origins="*", max_http_buffer_size=MAX_MESSAGE_BYTES,
        logger=False, engineio_logger=False, async_handlers=False,
    )
    windows: dict[str, FrameWindow] = {}

    @sio.event
    async def connect(sid, environ, auth=None):
        windows[sid] = FrameWindow(WINDOW, STRIDE)

    @sio.event
    async def disconnect(sid, *args):
        windows.pop(sid, None)

    async def send_error(sid: str, code: str, message: str) -> None:
        await sio.emit("error", {"message": message, "error": code}, to=sid)

    @sio.on("landmark_stream")
    async def landmark_stream(sid, data=None):
        window = windows.setdefault(sid, FrameWindow(WINDOW, STRIDE))
        if not isinstance(data, (dict, list)):
            await send_error(sid, "invalid_message", "landmark_stream takes {\"landmarks\": [[x, y, z] x 21], "
                             "\"timestamp\": t} or {\"frame\": [...values]}")
            return
        try:
            frame, timestamp = parse_frame_message(data, None)
        except (SignSeekError, ApiError) as exc:
            await send_error(sid, exc.code, exc.message)
            return
        if frame is None:
            window.clear()
            return
        if not window.push(frame):
            return
        start = time.perf_counter()
        frame_number = window.count
        if window.has_hands():
            try:
                result = await to_thread.run_sync(service.predict, window.points())
            except (SignSeekError, ApiError) as exc:
                await send_error(sid, exc.code, exc.message)
                return
        else:
            result = idle_result(service)
        latency_ms = round((time.perf_counter() - start) * 1000, 3)
        await sio.emit("prediction", {
            "label": result["label"] if result["accepted"] and result["label"] is not None else "",
            "confidence": result["confidence"],
            "latency_ms": latency_ms,
            "accepted": result["accepted"],
            "rejection_reason": result["rejection_reason"],
            "model": result["model"],
            "top_k": result["top_k"],
            "results": result["results"],
            "model_version": result["model_version"],
            "timestamp": timestamp,
            "frame": frame_number,
        }, to=sid)

    app.mount("/socket.io", socketio.ASGIApp(sio))
    return sio
