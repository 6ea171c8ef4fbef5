"""Hostile inputs against a real server (uvicorn on 127.0.0.1, default limits), made with ffmpeg:
a 0.2 MB clip that is 1080p at 240 fps for 20 s, a 46 MB JSON body (alone and 4 at once) and 44
concurrent uploads. Each is refused or queued before the expensive work; /healthz, polled from
another process every 100 ms, answers within 1 s throughout, and the server's RSS stays bounded.
The same scenarios, measured against the code before this, are benchmarks/bench_hostile.py."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest
from test_api_support import server_env, uvicorn_server

from benchmarks.bench_hostile import (
    NORMAL_CLIP,
    big_json_body,
    make_bomb_clip,
    scenario_bomb,
    scenario_json,
    scenario_uploads,
)

pytestmark = pytest.mark.slow

HEALTHZ_MS = 1000  # the bar: /healthz within 1 s under any mix of these


def healthz_bound_ms() -> float:
    """1 s on a machine with a core to spare; on an oversubscribed one (more runnable threads
    than cores: a shared developer box) every process waits its turn, so the bar is scaled by
    the 1-minute load per core, and the test says so."""
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    if per_core > 1.0:
        print(f"NOTE: load {per_core:.1f} per core: /healthz bar scaled to {HEALTHZ_MS * per_core:.0f} ms")
    return HEALTHZ_MS * max(1.0, per_core)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    with uvicorn_server(server_env(tmp), tmp / "server.log") as (url, pid):
        # A server that has served a clip (its MediaPipe graph built), as on a live deployment.
        warm = httpx.post(url + "/v1/inference/video", timeout=300,
                          files={"file": (NORMAL_CLIP.name, NORMAL_CLIP.read_bytes(), "video/mp4")})
        assert warm.status_code == 200, warm.text
        yield url, pid


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    if shutil.which("ffmpeg") is None:
        pytest.skip("NO FFMPEG: the hostile clip is made with ffmpeg (make system-deps installs it)")
    return make_bomb_clip(tmp_path_factory.mktemp("bomb") / "bomb.mp4")


def _healthy(result: dict) -> None:
    assert result["healthz_polls"] > 0 and result["healthz_failures"] == 0, result
    assert result["healthz_max_ms"] < healthz_bound_ms(), result


def test_a_small_clip_that_would_decode_ten_gigapixels_is_refused_before_decoding(server, bomb):
    url, pid = server
    result = scenario_bomb(url, pid, bomb, NORMAL_CLIP, timeout_s=120)
    assert result["bomb"]["status"] == 413 and result["bomb"]["error"] == "video_too_large", result
    assert result["bomb"]["s"] < 30  # the header was read, not 4,800 frames (it took 128 s before)
    assert result["normal_after_5s"]["status"] == 200, result  # not stuck behind the bomb
    _healthy(result)
    assert result["rss_peak_mib"] - result["rss_start_mib"] < 400, result


def test_a_46_mb_json_body_is_refused_before_it_is_read(server):
    url, pid = server
    body = big_json_body(46.0)
    for copies in (4,):  # benchmarks/bench_hostile.py measures one alone too
        result = scenario_json(url, pid, body, copies)
        assert [a["status"] for a in result["answers"]] == [413] * copies, result
        assert {a["error"] for a in result["answers"]} == {"payload_too_large"}
        _healthy(result)
        assert result["rss_peak_mib"] - result["rss_start_mib"] < 100, result  # it was +350-866 MB before


def test_44_concurrent_uploads_are_queued_rate_limited_or_told_to_retry(server):
    url, pid = server
    result = scenario_uploads(url, pid, NORMAL_CLIP, n=44, timeout_s=240)
    statuses = result["statuses"]
    assert set(statuses) <= {"200", "429", "503"}, result  # served, rate limited or busy: nothing else
    assert statuses.get("200", 0) >= 1 and statuses.get("503", 0) + statuses.get("429", 0) >= 30, result
    assert result["refusals_with_retry_after"] == result["refusals"], result  # each says when to come back
    assert result["json_inference_during"]["status"] == 200, result  # the cheap route is not held up
    _healthy(result)
    assert result["rss_peak_mib"] - result["rss_start_mib"] < 600, result
