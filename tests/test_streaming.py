"""WebSocket /ws/stream over real loopback: predictions every stride frames, "no sign" when idle,
errors that leave the stream open, and memory that stays flat over a 10,000-frame stream."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import psutil
import pytest
import websockets
from test_api_support import first_index_of, sample_frames, server_env, uvicorn_server

from demo.api.streaming import FrameWindow
from signseek.landmarks.schema import empty_points


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws")
    with uvicorn_server(server_env(tmp), tmp / "server.log") as (url, pid):
        yield url.replace("http://", "ws://"), pid


async def _recv_json(ws, timeout: float = 10.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def test_frame_window_is_bounded_and_strided():
    window = FrameWindow(size=10, stride=4, min_frames=8)
    due = [window.push(empty_points(1)[0]) for _ in range(40)]
    assert len(window.frames) == 10 and window.count == 40
    assert [i + 1 for i, d in enumerate(due) if d] == [8, 12, 16, 20, 24, 28, 32, 36, 40]


def test_stream_predicts_a_signed_sequence_and_says_no_sign_when_idle(server):
    url, _ = server
    frames, label = sample_frames(first_index_of("hello"))

    async def session():
        async with websockets.connect(url + "/ws/stream?window=20&stride=20") as ws:
            ready = await _recv_json(ws)
            assert ready == {"type": "ready", "window": 20, "stride": 20, "min_frames": 8}
            for frame in frames:  # 20 frames: one prediction on the whole sign
                await ws.send(json.dumps({"frame": frame, "timestamp": 1.5}))
            signed = await _recv_json(ws)
            for _ in range(20):  # nobody in view
                await ws.send(json.dumps([0.0] * 258))
            idle = await _recv_json(ws)
            return signed, idle

    signed, idle = asyncio.run(session())
    assert signed["type"] in {"prediction", "no_sign"} and signed["frame"] == 20
    assert signed["timestamp"] == 1.5
    assert signed["results"][0]["label"] == label
    assert signed["model"] == "encoder" and signed["model_version"]
    assert idle["type"] == "no_sign" and idle["label"] is None and idle["rejection_reason"] == "no_hands"


@pytest.mark.parametrize(
    "message, needle",
    [
        ("not json at all", "not valid JSON"),
        ("[NaN" + ", 0.5" * 257 + "]", "NaN"),
        ("[Infinity" + ", 0.5" * 257 + "]", "Infinity"),
        (json.dumps([0.5] * 100), "100 values"),
        (json.dumps({"frame": "abc"}), "flat list"),
        (json.dumps({"landmarks": [[0.1, 0.2, 0.3]] * 5}), "21 hand points"),
        (json.dumps({"something": 1}), "a message is a frame"),
        (json.dumps([[0.5] * 258]), "flat list"),
        (json.dumps([1e308] + [0.5] * 257), "finite number between"),
        (json.dumps({"landmarks": [[1e308, 0.1, 0.1]] * 21}), "finite number between"),
        (json.dumps([True] + [0.5] * 257), "non-numeric"),
        (json.dumps(["0.5"] + [0.5] * 257), "non-numeric"),
    ],
    ids=["not json", "NaN", "Infinity", "wrong length", "frame not a list", "too few hand points",
         "unknown message", "nested list", "1e308 frame", "1e308 hand", "true", "number in a string"],
)
def test_bad_messages_get_an_error_and_the_stream_goes_on(server, message, needle):
    url, _ = server
    frames, _ = sample_frames(first_index_of("tea"))

    async def session():
        async with websockets.connect(url + "/ws/stream?window=10&stride=10") as ws:
            await _recv_json(ws)
            await ws.send(message)
            error = await _recv_json(ws)
            for frame in frames[:10]:
                await ws.send(json.dumps(frame))
            after = await _recv_json(ws)
            return error, after

    error, after = asyncio.run(session())
    assert error["type"] == "error" and 400 <= error["status"] < 500
    assert needle.lower() in error["message"].lower(), error["message"]
    assert after["type"] in {"prediction", "no_sign"}


def test_bad_query_parameters_close_with_an_error(server):
    url, _ = server

    async def session():
        async with websockets.connect(url + "/ws/stream?window=100000") as ws:
            return await _recv_json(ws)

    error = asyncio.run(session())
    assert error["type"] == "error" and "window" in error["message"]


def test_ten_thousand_frames_keep_memory_flat(server):
    """10,000 frames (5,000 signing, 5,000 idle) through one connection: RSS grows < 10%."""
    url, pid = server
    process = psutil.Process(pid)
    frames, _ = sample_frames(first_index_of("water"))
    signing = [json.dumps(f) for f in frames]
    idle = json.dumps([0.0] * 258)
    n_frames, warmup = 10_000, 500
    expected = n_frames // 8  # one message every stride (8) frames

    async def session():
        replies = 0
        async with websockets.connect(url + "/ws/stream?window=60&stride=8", max_queue=None) as ws:
            await _recv_json(ws)

            async def drain():
                nonlocal replies
                async for _ in ws:
                    replies += 1

            reader = asyncio.create_task(drain())
            baseline = None
            for i in range(n_frames):
                block = (i // 500) % 2  # alternate 500 signing frames and 500 idle frames
                await ws.send(signing[i % len(signing)] if block == 0 else idle)
                if i % 200 == 199:  # stay within ~200 frames of the server, as a 30 Hz client does:
                    # a flood on a loaded machine backs up past uvicorn's keepalive ping timeout
                    deadline = asyncio.get_running_loop().time() + 60
                    while replies < (i + 1) // 8 - 25 and asyncio.get_running_loop().time() < deadline:
                        await asyncio.sleep(0.05)
                if i == warmup:
                    await asyncio.sleep(0.5)
                    baseline = process.memory_info().rss
            deadline = asyncio.get_running_loop().time() + 180
            while replies < expected and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.2)  # let the server catch up with every frame sent
            final = process.memory_info().rss
            reader.cancel()
            return baseline, final, replies

    baseline, final, replies = asyncio.run(session())
    growth = (final - baseline) / baseline
    assert replies == expected  # none lost
    assert growth < 0.10, f"RSS grew {growth:.1%} ({baseline / 2**20:.1f} -> {final / 2**20:.1f} MiB)"
    assert np.isfinite(growth)
