"""Socket.IO with HandTalk's events over real loopback, with a real python-socketio client."""

from __future__ import annotations

import threading
import time

import pytest
import socketio
from test_api_support import first_index_of, hand_points, sample_frames, server_env, uvicorn_server


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sio")
    with uvicorn_server(server_env(tmp), tmp / "server.log") as (base, _):
        yield base


class Recorder:
    """A connected socketio.Client that records `prediction` and `error` events."""

    def __init__(self, url: str) -> None:
        self.client = socketio.Client(reconnection=False)
        self.predictions: list[dict] = []
        self.errors: list[dict] = []
        self._event = threading.Event()
        self.client.on("prediction", self._on("predictions"))
        self.client.on("error", self._on("errors"))
        self.client.connect(url, wait_timeout=10, transports=["websocket"])

    def _on(self, bucket: str):
        def handler(data):
            getattr(self, bucket).append(data)
            self._event.set()
        return handler

    def wait_for(self, bucket: str, count: int, timeout_s: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while len(getattr(self, bucket)) < count and time.monotonic() < deadline:
            self._event.wait(0.1)
            self._event.clear()
        return getattr(self, bucket)

    def close(self) -> None:
        self.client.disconnect()


@pytest.fixture
def recorder(url):
    rec = Recorder(url)
    yield rec
    rec.close()


def _stream_hand(recorder: Recorder, hand, as_dicts: bool = False) -> None:
    for t in range(30):  # HandTalk's 30-frame window: predictions at frames 10, 15, ..., 30 (stride 5, 8 frames at least)
        points = hand[t % len(hand)].tolist()
        if as_dicts:
            points = [{"x": x, "y": y, "z": z} for x, y, z in points]
        recorder.client.emit("landmark_stream", {"landmarks": points, "timestamp": t / 30})


@pytest.mark.parametrize("as_dicts", [False, True], ids=["[[x,y,z]]", "[{x,y,z}]"])
def test_one_hand_goes_to_the_hands_only_model(recorder, as_dicts):
    hand, _ = hand_points(first_index_of("j", path=__import__("test_api_support").FINGERSPELLING_SAMPLE))
    _stream_hand(recorder, hand, as_dicts)
    predictions = recorder.wait_for("predictions", 5)
    assert len(predictions) == 5, predictions
    for p in predictions:
        assert p["model"] == "fingerspelling"  # no body: the hands-only classifier answered
        assert {"label", "confidence", "latency_ms", "accepted", "timestamp"} <= set(p)
        assert isinstance(p["label"], str) and p["latency_ms"] > 0
        assert (p["label"] != "") == p["accepted"]
    assert predictions[-1]["timestamp"] == pytest.approx(29 / 30)
    assert not recorder.errors


def test_a_holistic_frame_goes_to_the_encoder(recorder):
    frames, label = sample_frames(first_index_of("hello"))
    for t, frame in enumerate(frames[:20]):
        recorder.client.emit("landmark_stream", {"frame": frame, "layout": "pose_hands", "timestamp": t})
    predictions = recorder.wait_for("predictions", 3)  # at frames 10, 15 and 20
    assert len(predictions) == 3
    assert all(p["model"] == "encoder" for p in predictions)
    assert predictions[-1]["results"][0]["label"] == label


@pytest.mark.parametrize(
    "payload, needle",
    [
        ({"landmarks": [[0.1, 0.2, 0.3]] * 20}, "21 hand points"),
        ({"landmarks": [["a", "b", "c"]] * 21}, "non-numeric"),
        ({"landmarks": [{"x": 0.1}] * 21}, "keys x and y"),
        ({"frame": [0.5] * 100}, "100 values"),
        ("just a string", "landmark_stream takes"),
        ({"timestamp": 1}, "a message is a frame"),
        ({"landmarks": [[1e308, 0.2, 0.3]] * 21}, "finite number between"),
        ({"landmarks": [[True, 0.2, 0.3]] * 21}, "non-numeric"),
        ({"frame": ["0.5"] * 258}, "non-numeric"),
    ],
    ids=["20 points", "strings", "missing y", "wrong frame length", "string payload", "no landmarks",
         "1e308 (the REST rule)", "true as a coordinate", "a number in a string"],
)
def test_bad_payloads_emit_error_and_the_connection_goes_on(recorder, payload, needle):
    recorder.client.emit("landmark_stream", payload)
    errors = recorder.wait_for("errors", 1)
    assert errors and needle.lower() in errors[0]["message"].lower(), errors
    hand, _ = hand_points(0)
    _stream_hand(recorder, hand)
    assert len(recorder.wait_for("predictions", 5)) == 5


def test_a_holistic_frame_by_parts_goes_to_the_encoder(recorder):
    import numpy as np

    from signseek.landmarks.layouts import flat_to_canonical
    from signseek.landmarks.schema import PARTS

    frames, _ = sample_frames(first_index_of("thank-you"))
    points, _ = flat_to_canonical(np.asarray(frames, dtype=np.float32))
    for t, frame in enumerate(points[:10]):
        parts = {part: frame[block].tolist() for part, block in PARTS.items()
                 if part != "face" and np.isfinite(frame[block]).all()}
        recorder.client.emit("landmark_stream", {**parts, "timestamp": t})
    predictions = recorder.wait_for("predictions", 1)  # at frame 10
    assert len(predictions) == 1 and predictions[0]["model"] == "encoder"
    assert not recorder.errors


def test_predictions_come_back_in_the_order_the_frames_were_sent(recorder):
    """Frames of one client are handled in order even when inference is slower than the stream."""
    hand, _ = hand_points(first_index_of("j", path=__import__("test_api_support").FINGERSPELLING_SAMPLE))
    for _ in range(3):
        _stream_hand(recorder, hand)
    predictions = recorder.wait_for("predictions", 17)  # frames 10, 15, ..., 90 (stride 5)
    assert [p["frame"] for p in predictions] == list(range(10, 91, 5))
    assert not recorder.errors
