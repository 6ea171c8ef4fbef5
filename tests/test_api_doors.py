"""Every door of the real app (`python app.py`: the Gradio UI mounted on the API) with API_KEY set:
no anonymous request changes the reference store, whether it comes through REST, Gradio's API
(gradio_client and raw HTTP on /gradio_api/call/...), the WebSocket or Socket.IO. With the key,
the same Gradio door does write (so the refusals are the key's doing). Also on the full app:
one error shape for unknown routes and wrong methods (405 with Allow), no absolute server paths
in /v1/config or Gradio's /config, and a key sent in a query string never reaches the log."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import tempfile
from pathlib import Path

import httpx
import pytest
from demo_support import demo_env, running_app, sample_video
from test_api_support import assert_json_error, first_index_of, sample_frames

pytestmark = pytest.mark.slow

KEY = "door-key-7f3a9c"


def _sequences(label: str, n: int = 3) -> list[dict]:
    first = first_index_of(label)
    return [{"frames": sample_frames(first + i)[0]} for i in range(n)]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("doors")
    # DEMO_WARM=0: the page's gallery and examples are not prepared (not what these doors are about).
    env = {**demo_env(tmp), "API_KEY": KEY, "RATE_LIMIT_INFERENCE": "0", "DEMO_WARM": "0"}
    log = tmp / "server.log"
    with running_app(env, log) as url:
        yield url, Path(env["STORE_PATH"]), log


def _store_state(url: str, db: Path) -> tuple:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT label, COUNT(*) FROM clips GROUP BY label ORDER BY label").fetchall()
    signs = httpx.get(f"{url}/v1/signs", timeout=30).json()
    return tuple(rows), signs["total_references"], httpx.get(f"{url}/healthz", timeout=30).json()["reference_count"]


def _gradio_args(info: dict, endpoint: str, name: str, clip: str | None, key: str = "", upload=None) -> list:
    """Arguments for a Gradio endpoint, by parameter name (as /gradio_api/info lists them)."""
    args = []
    for param in info["named_endpoints"][endpoint]["parameters"]:
        pname, ptype = param["parameter_name"], param.get("python_type", {}).get("type", "")
        if "key" in pname:
            args.append(key)
        elif "name" in pname:
            args.append(name)
        elif ptype == "list[filepath]":
            args.append([upload(clip) for _ in range(3)] if clip else [])
        elif ptype == "filepath":
            args.append(upload(clip) if clip else None)
        else:
            args.append(param.get("parameter_default"))
    return args


def _raw_gradio_call(url: str, endpoint: str, data: list) -> str:
    """POST /gradio_api/call/<name>, then read its event stream to the end; returns the stream."""
    with httpx.Client(base_url=url, timeout=60) as http:
        started = http.post(f"/gradio_api/call{endpoint}", json={"data": data})
        assert started.status_code == 200, started.text
        event_id = started.json()["event_id"]
        return http.get(f"/gradio_api/call{endpoint}/{event_id}").text


def _raw_upload(url: str, path: str) -> dict:
    with open(path, "rb") as fh:
        response = httpx.post(f"{url}/gradio_api/upload", files={"files": (Path(path).name, fh, "video/mp4")},
                              timeout=60)
    assert response.status_code == 200, response.text
    return {"path": response.json()[0], "meta": {"_type": "gradio.FileData"}}


def test_no_anonymous_request_through_any_door_changes_the_store(app_url):
    url, db, _ = app_url
    clip = str(sample_video("signer_selfie.mp4"))
    http = httpx.Client(base_url=url, timeout=60)
    # The owner enrols a sign with the key: the thing an anonymous visitor will try to delete.
    owned = http.post("/v1/signs", json={"name": "owned-sign", "sequences": _sequences("tea")},
                      headers={"X-API-Key": KEY})
    assert owned.status_code == 200, owned.text
    before = _store_state(url, db)
    assert dict(before[0]) == {"owned-sign": 3}

    # REST: no key, a wrong key, the key in a query string instead of the header.
    for kwargs in ({}, {"headers": {"X-API-Key": "wrong"}}, {"params": {"api_key": KEY}}):
        assert_json_error(http.post("/v1/signs", json={"name": "intruder", "sequences": _sequences("hello")},
                                    **kwargs), 401)
        assert_json_error(http.delete("/v1/signs/owned-sign", **kwargs), 401)
        assert_json_error(http.post("/v1/references/export", **kwargs), 401)
        with open(clip, "rb") as fh:
            files = [("files", (f"t{i}.mp4", fh.read(), "video/mp4")) for i in range(3)]
        assert_json_error(http.post("/v1/signs/video", data={"name": "hello"}, files=files, **kwargs), 401)

    # Gradio's API through gradio_client: enrol (a new sign, and more clips of the shipped 'hello'),
    # delete the owner's sign.
    from gradio_client import Client, handle_file

    info = http.get("/gradio_api/info").json()
    client = Client(url, verbose=False)
    for name in ("intruder", "hello"):
        try:
            client.predict(*_gradio_args(info, "/enrol_sign", name, clip, upload=handle_file), api_name="/enrol_sign")
        except Exception:  # refused: the page shows why; what matters is the store below
            pass
    try:
        client.predict(*_gradio_args(info, "/delete_sign", "owned-sign", None), api_name="/delete_sign")
    except Exception:
        pass

    # Gradio's API over raw HTTP, as the curl did.
    _raw_gradio_call(url, "/delete_sign", _gradio_args(info, "/delete_sign", "owned-sign", None))
    _raw_gradio_call(url, "/delete_sign", ["owned-sign"])  # the key argument left out
    _raw_gradio_call(url, "/enrol_sign", _gradio_args(info, "/enrol_sign", "hello", clip,
                                                      upload=lambda p: _raw_upload(url, p)))

    # WebSocket and Socket.IO: streaming doors; nothing they accept writes, whatever is sent.
    import socketio
    import websockets

    async def ws_door() -> None:
        async with websockets.connect(url.replace("http://", "ws://") + "/ws/stream?api_key=" + KEY) as ws:
            await ws.recv()  # ready
            for message in ({"type": "enrol", "name": "intruder"}, {"type": "delete", "name": "owned-sign"},
                            sample_frames(first_index_of("hello"))[0][0]):
                await ws.send(json.dumps(message))
            await ws.send(json.dumps({"type": "reset"}))

    asyncio.run(ws_door())
    sio = socketio.Client(reconnection=False)
    sio.connect(url, transports=["websocket"], wait_timeout=10)
    for event in ("enrol_sign", "delete_sign", "landmark_stream"):
        sio.emit(event, {"name": "owned-sign", "frame": sample_frames(first_index_of("hello"))[0][0]})
    sio.sleep(0.5)
    sio.disconnect()

    assert _store_state(url, db) == before  # nothing anonymous changed the reference store

    # The same Gradio door with the key does write: the refusals above were the key's doing.
    stream = _raw_gradio_call(url, "/delete_sign", _gradio_args(info, "/delete_sign", "owned-sign", None, key=KEY))
    assert "event: complete" in stream, stream[-500:]
    assert dict(_store_state(url, db)[0]) == {}


def test_unknown_routes_and_wrong_methods_get_the_error_shape_under_gradio(app_url):
    url, _, _ = app_url
    with httpx.Client(base_url=url, timeout=30) as http:
        assert assert_json_error(http.get("/no/such/route"), 404)["error"] == "not_found"
        assert assert_json_error(http.post("/gradio_api/no-such-thing"), 404)["error"] == "not_found"
        for method, path, allow in (("PUT", "/v1/inference", "POST"), ("GET", "/v1/inference", "POST"),
                                    ("TRACE", "/healthz", "GET"), ("DELETE", "/v1/signs", "GET, POST"),
                                    ("POST", "/videos/x.mp4", "GET")):
            response = http.request(method, path)
            assert assert_json_error(response, 405)["error"] == "method_not_allowed", (method, path)
            assert response.headers["allow"] == allow


def test_no_absolute_server_paths_in_public_config(app_url):
    url, db, _ = app_url
    roots = {str(Path(__file__).resolve().parents[1]), tempfile.gettempdir(), str(Path.home()), str(db.parent)}
    pattern = re.compile("|".join(re.escape(r) for r in roots if r not in ("/", "")))
    for path in ("/v1/config", "/config", "/healthz"):
        text = httpx.get(url + path, timeout=30).text
        found = pattern.findall(text)
        assert not found, f"{path} shows server paths: {sorted(set(found))}"
    body = httpx.get(url + "/v1/config", timeout=30).json()
    assert body["access"]["writes"] == "key" and body["settings"]["API_KEY"] == "***"


def test_a_key_in_a_query_string_never_reaches_the_log(app_url):
    url, _, log = app_url
    secret = "querykey-" + "9" * 12
    assert_json_error(httpx.post(f"{url}/v1/references/export?api_key={secret}&token={secret}", timeout=30), 401)
    httpx.get(f"{url}/healthz?key={secret}", timeout=30)
    text = log.read_text()
    assert "/v1/references/export" in text  # the requests were logged...
    assert secret not in text and KEY not in text  # ...without the secrets
