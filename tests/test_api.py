"""REST API: routes, payload names, OpenAPI, bad input (4xx JSON, never 500), auth, logging.

Most cases use FastAPI's TestClient on the real app (real engine on the fixture bundle);
`test_rest_over_loopback` runs a real uvicorn server on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from test_api_support import (
    assert_json_error,
    first_index_of,
    fixture_bundle_dir,
    make_settings,
    sample_frames,
    server_env,
    uvicorn_server,
)

from demo.api import create_app
from demo.api.logging import JsonLineFormatter
from signseek.bundle import BundleError


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("api")
    videos = path / "videos"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (path / "secret.txt").write_text("do not serve me")
    return path


@pytest.fixture(scope="module")
def client(workdir) -> TestClient:
    app = create_app(make_settings(workdir, MAX_FRAMES=200, MAX_UPLOAD_MB=0.5, MAX_JSON_MB=0.5))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


# ---------------------------------------------------------------------------- read routes


def test_healthz_reports_model_backend_and_references(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["model_loaded"] is True
    assert body["backend"].startswith("onnxruntime")
    assert body["reference_count"] == 99  # 3 reference clips of each of 33 labels
    assert body["version"] and body["model_version"].startswith("fixture-masked-mean@")


def test_handtalk_health_and_model_info(client):
    health = client.get("/health").json()
    assert health["status"] == "healthy" and health["model_loaded"] is True
    assert health["uptime_seconds"] >= 0
    info = client.get("/model/info").json()
    assert info["num_classes"] == 32  # 33 labels minus the idle "-"
    assert info["input_shape"] == [32, 231]
    assert "fingerspelling" in info["classifiers"]
    assert "hello" in info["labels"]


def test_config_shows_settings_and_their_sources(client):
    body = client.get("/v1/config").json()
    assert body["settings"]["MAX_FRAMES"] == 200
    assert body["sources"]["MAX_FRAMES"] == "argument"
    assert body["sources"]["SIM_THRESHOLD"] in {"default", "bundle", "env"}
    assert body["settings"]["API_KEY"] is None
    assert set(body["settings"]) == set(body["sources"])


def test_openapi_documents_the_guide_payloads(client):
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert {"frames", "layout", "fps", "top_k", "metadata"} <= set(components["SequencePayload"]["properties"])
    response_fields = set(components["InferenceResponse"]["properties"])
    assert {"label", "confidence", "accepted", "rejection_reason", "top_k", "results", "motion", "model",
            "timings_ms", "model_version"} <= response_fields
    assert {"label", "category", "similarity", "confidence", "raw_similarity", "prototype_similarity",
            "dtw_distance", "dtw_score"} <= set(components["SentenceResult"]["properties"])
    for path in ("/healthz", "/v1/config", "/v1/samples/random", "/videos/{filename}", "/v1/inference",
                 "/v1/inference/video", "/health", "/model/info", "/v1/signs", "/v1/signs/video",
                 "/v1/signs/{name}", "/v1/references/export"):
        assert path in schema["paths"], path


# ---------------------------------------------------------------------------- inference


def test_random_sample_posts_straight_back(client):
    sample = client.get("/v1/samples/random").json()
    assert sample["layout"] == "pose_hands" and len(sample["frames"][0]) == 258
    assert sample["label"]
    response = client.post("/v1/inference", json=sample)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["accepted"], bool)
    assert body["model"] == "encoder"
    assert body["timings_ms"]["total"] >= body["timings_ms"]["embed"] > 0


def test_sample_filtered_by_label_and_unknown_label(client):
    assert client.get("/v1/samples/random", params={"label": "tea"}).json()["label"] == "tea"
    assert_json_error(client.get("/v1/samples/random", params={"label": "no-such-sign"}), 404)


def test_reference_clip_is_recognised_as_its_own_label(client):
    frames, label = sample_frames(first_index_of("hello"))
    body = client.post("/v1/inference", json={"frames": frames, "top_k": 3}).json()
    assert body["results"][0]["label"] == label == "hello"
    assert body["results"][0]["raw_similarity"] == pytest.approx(1.0, abs=1e-4)
    assert body["top_k"] == len(body["results"]) == 3
    assert body["accepted"] is (body["rejection_reason"] == "none")


def test_null_frames_and_null_values_are_not_detected(client):
    frames, _ = sample_frames(first_index_of("hello"))
    frames[0] = None  # a frame with nothing detected
    frames[1] = [None] * 258
    response = client.post("/v1/inference", json={"frames": frames, "layout": "pose_hands"})
    assert response.status_code == 200, response.text


def test_idle_input_is_rejected_not_failed(client):
    body = client.post("/v1/inference", json={"frames": [[0.0] * 258] * 20}).json()
    assert body["accepted"] is False and body["label"] is None
    assert body["rejection_reason"] == "no_hands"


# ---------------------------------------------------------------------------- bad input

FRAME = [0.5] * 258


def _raw(body: str) -> dict:
    return {"content": body.encode(), "headers": {"content-type": "application/json"}}


BAD_INFERENCE = {
    "wrong frame length": ({"json": {"frames": [[0.1] * 100]}}, 422, "100 values"),
    "mixed frame lengths": ({"json": {"frames": [FRAME, [0.1] * 126]}}, 422, "same length"),
    "layout mismatch": ({"json": {"frames": [FRAME], "layout": "hands"}}, 422, "126"),
    "unknown layout": ({"json": {"frames": [FRAME], "layout": "body25"}}, 422, "layout"),
    "NaN literal": (_raw('{"frames": [[NaN' + ", 0.1" * 257 + "]]}"), 400, "NaN"),
    "Infinity literal": (_raw('{"frames": [[Infinity' + ", 0.1" * 257 + "]]}"), 400, "Infinity"),
    "-Infinity literal": (_raw('{"frames": [[-Infinity' + ", 0.1" * 257 + "]]}"), 400, "Infinity"),
    "overflowing number": (_raw('{"frames": [[1e999' + ", 0.1" * 257 + "]]}"), 422, "finite"),
    "no frames": ({"json": {"frames": []}}, 422, "at least one frame"),
    "all frames null": ({"json": {"frames": [None, None]}}, 422, "null"),
    "missing frames": ({"json": {"layout": "pose_hands"}}, 422, "frames"),
    "too many frames": ({"json": {"frames": [[0.0] * 126] * 201}}, 422, "MAX_FRAMES"),
    "not JSON": (_raw("frames=1,2,3"), 400, "JSON"),
    "truncated JSON": (_raw('{"frames": [[0.1, 0.2'), 400, "JSON"),
    "frames is a string": ({"json": {"frames": "abc"}}, 422, "frames"),
    "a value is a string": ({"json": {"frames": [["x"] * 258]}}, 422, "frames[0][0]"),
    "a frame is a number": ({"json": {"frames": [3.0]}}, 422, "frames[0]"),
    "top_k not an int": ({"json": {"frames": [FRAME], "top_k": "many"}}, 422, "top_k"),
    "top_k zero": ({"json": {"frames": [FRAME], "top_k": 0}}, 422, "top_k"),
    "body is a list": ({"json": [FRAME]}, 422, "body"),
    "true as a coordinate": ({"json": {"frames": [[True] + [0.5] * 257]}}, 422, "frames[0][0]"),
    "a number in a string": ({"json": {"frames": [["0.5"] + [0.5] * 257]}}, 422, "frames[0][0]"),
    "1e308 (beyond the coordinate range)": ({"json": {"frames": [[1e308] + [0.5] * 257]}}, 422, "frames[0][0]"),
    "layout hands with 258 values": ({"json": {"frames": [FRAME], "layout": "hands"}}, 422, "126"),
    "body over the size limit": ({"json": {"frames": [[0.123456789] * 1662] * 60}}, 413, "too large"),
}


@pytest.mark.parametrize("case", list(BAD_INFERENCE), ids=list(BAD_INFERENCE))
def test_bad_inference_input_is_a_4xx_saying_what_to_fix(client, case):
    kwargs, status, needle = BAD_INFERENCE[case]
    body = assert_json_error(client.post("/v1/inference", **kwargs), status)
    assert needle.lower() in body["message"].lower(), body["message"]
    assert client.get("/healthz").status_code == 200  # still serving


@pytest.mark.parametrize(
    "upload, status",
    [
        (("clip.mp4", b"\x00\x01garbage" * 500, "video/mp4"), 422),
        (("notes.txt", b"just some text, not a video\n" * 20, "text/plain"), 422),
        (("empty.webm", b"", "video/webm"), 422),
        (("huge.mp4", b"\x00" * (600 * 1024), "video/mp4"), 413),
    ],
    ids=["corrupt mp4", "text file", "empty file", "over MAX_UPLOAD_MB"],
)
def test_bad_video_upload_is_a_4xx(client, upload, status):
    body = assert_json_error(client.post("/v1/inference/video", files={"file": upload}), status)
    if status == 422 and upload[1]:  # the message names the user's file, not a temporary name
        assert upload[0] in body["message"], body["message"]


def test_writes_open_is_said_in_healthz_and_config(client):
    health = client.get("/healthz").json()
    assert health["writes"] == "open" and any("writes are open" in w for w in health["warnings"])
    config = client.get("/v1/config").json()
    assert config["access"]["writes"] == "open" and "warning" in config["access"]
    assert not config["models_dir"].startswith("/")  # no absolute server path


def test_unknown_routes_and_wrong_methods_get_the_error_shape(client):
    assert assert_json_error(client.get("/v1/nothing"), 404)["error"] == "not_found"
    response = client.put("/v1/inference")
    assert assert_json_error(response, 405)["error"] == "method_not_allowed" and response.headers["allow"] == "POST"
    response = client.delete("/v1/signs/video")  # the concrete path wins, as OpenAPI reads paths
    assert assert_json_error(response, 405) and response.headers["allow"] == "POST"


def test_video_route_without_a_file_is_a_4xx(client):
    assert_json_error(client.post("/v1/inference/video", data={"x": "1"}), 422)


def test_unexpected_errors_are_json_500_and_logged(workdir):
    app = create_app(make_settings(workdir))

    def broken():
        raise RuntimeError("a genuine bug")

    app.add_api_route("/test-only/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/test-only/broken")
        assert response.status_code == 500
        assert response.json()["error"] == "internal_error"
        assert "RuntimeError" in response.json()["message"]
        assert test_client.get("/healthz").status_code == 200


# ---------------------------------------------------------------------------- videos


def test_videos_are_served_and_listed(client):
    assert client.get("/videos").json()["videos"] == ["clip.mp4"]
    response = client.get("/videos/clip.mp4")
    assert response.status_code == 200 and response.content.startswith(b"\x00\x00\x00\x18ftyp")


@pytest.mark.parametrize(
    "path",
    [
        "/videos/..%2Fsecret.txt",
        "/videos/%2e%2e%2fsecret.txt",
        "/videos/..%5Csecret.txt",
        "/videos/.hidden.mp4",
        "/videos/sub%2F..%2F..%2Fsecret.txt",
        "/videos/%2Fetc%2Fpasswd",
        "/videos/missing.mp4",
        "/videos/secret.txt",
    ],
)
def test_video_path_traversal_is_refused(client, path):
    response = client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code)
    assert b"do not serve me" not in response.content
    assert_json_error(response, (400, 404))


def test_path_traversal_over_raw_http_is_refused(workdir):
    """httpx would normalise '..' away; send the request line as a client could."""
    import socket

    with uvicorn_server(server_env(workdir), workdir / "traversal.log") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        for target in ("/videos/../secret.txt", "/videos/../../etc/passwd", "/videos/..%2f..%2fetc%2fpasswd"):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            status = int(reply.split(b" ", 2)[1])
            assert 400 <= status < 500, (target, reply[:200])
            assert b"do not serve me" not in reply and b"root:" not in reply


# ---------------------------------------------------------------------------- start-up


def test_bundle_not_matching_its_manifest_stops_start_up(workdir, tmp_path):
    broken = tmp_path / "models"
    shutil.copytree(fixture_bundle_dir(), broken)
    with open(broken / "embeddings.npy", "ab") as fh:
        fh.write(b"\x00")
    with pytest.raises(BundleError, match=r"embeddings\.npy"):
        create_app(make_settings(workdir, MODELS_DIR=broken))


def test_missing_bundle_stops_start_up_with_a_clear_message(workdir, tmp_path):
    with pytest.raises(BundleError, match="export_manifest.json"):
        create_app(make_settings(workdir, MODELS_DIR=tmp_path / "nothing-here"))


# ---------------------------------------------------------------------------- logs


def test_requests_are_logged_as_json_lines_with_stage_timings(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger("signseek.api.requests")
    logger.addHandler(handler)
    try:
        frames, _ = sample_frames(first_index_of("tea"))
        client.post("/v1/inference", json={"frames": frames})
        client.post("/v1/inference", json={"frames": []})
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ok, bad = lines[-2], lines[-1]
    assert {"time", "route", "status", "latency_ms", "method"} <= set(ok)
    assert ok["route"] == "/v1/inference" and ok["status"] == 200 and ok["latency_ms"] > 0
    assert {"parse", "prepare", "embed", "search", "dtw", "total"} <= set(ok["stages_ms"])
    assert bad["status"] == 422


# ---------------------------------------------------------------------------- loopback


def test_rest_over_loopback(workdir):
    """A real uvicorn server: health, a sample round trip, and bad input that leaves it serving."""
    with uvicorn_server(server_env(workdir), workdir / "rest.log") as (url, _):
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/healthz").json()["model_loaded"] is True
            sample = http.get("/v1/samples/random").json()
            assert http.post("/v1/inference", json=sample).status_code == 200
            bad = http.post("/v1/inference", content=b'{"frames": [[NaN]]}',
                            headers={"content-type": "application/json"})
            assert bad.status_code == 400 and bad.json()["error"] == "invalid_json"
            assert http.get("/health").json()["status"] == "healthy"


def test_chunked_body_over_the_limit_is_a_413(client):
    """No Content-Length to check up front: the limit is enforced while the body streams in."""

    def chunks():
        yield b'{"frames": ['
        for _ in range(400):
            yield b"[" + b", ".join([b"0.123456"] * 258) + b"],"
        yield b"[0.1]]}"

    response = client.post("/v1/inference", content=chunks(), headers={"content-type": "application/json"})
    assert "MAX_JSON_MB" in assert_json_error(response, 413)["message"]
    assert client.get("/healthz").status_code == 200
