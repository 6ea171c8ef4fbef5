"""Enrolment routes on the engine's reference store: enrol, list, recognise, delete, export,
the optional API key on write routes, bad names / too few clips (4xx, never 500), and real clips."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from test_api_support import assert_json_error, first_index_of, make_settings, real_video, sample_frames

from demo.api import create_app
from signseek.bundle import load_bundle

KEY = "s3cret-key"


def _sequences(label: str = "hello", n: int = 3) -> list[dict]:
    first = first_index_of(label)
    return [{"frames": sample_frames(first + i)[0]} for i in range(n)]


@pytest.fixture
def client(tmp_path) -> TestClient:
    with TestClient(create_app(make_settings(tmp_path)), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def keyed(tmp_path) -> TestClient:
    with TestClient(create_app(make_settings(tmp_path, API_KEY=KEY)), raise_server_exceptions=False) as c:
        yield c


def test_enrol_recognise_list_delete(client):
    before = client.get("/healthz").json()["reference_count"]
    sequences = _sequences("hello")
    response = client.post("/v1/signs", json={"name": "akwaaba", "sequences": sequences})
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "akwaaba", "added": 3, "references": 3, "total_references": before + 3}

    signs = {s["name"]: s for s in client.get("/v1/signs").json()["signs"]}
    assert signs["akwaaba"] == {"name": "akwaaba", "category": "word", "references": 3, "enrolled": True}
    assert signs["hello"]["enrolled"] is False and signs["hello"]["references"] == 3

    # The enrolled clip is now its own nearest reference: recognised at once, no retraining.
    body = client.post("/v1/inference", json=sequences[0]).json()
    assert body["results"][0]["label"] in {"akwaaba", "hello"}
    assert "akwaaba" in [c["label"] for c in body["results"]]

    deleted = client.delete("/v1/signs/akwaaba")
    assert deleted.status_code == 200 and deleted.json()["removed"] == 3
    assert client.get("/healthz").json()["reference_count"] == before
    assert_json_error(client.delete("/v1/signs/akwaaba"), 404)
    body = assert_json_error(client.delete("/v1/signs/hello"), 403)  # the bundle's own signs stay
    assert body["error"] == "bundle_sign"


def test_export_writes_a_verified_bundle_with_the_enrolled_sign(client, tmp_path):
    assert client.post("/v1/signs", json={"name": "akwaaba", "sequences": _sequences("tea")}).status_code == 200
    response = client.post("/v1/references/export")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "export_manifest.json" in body["files"] and "sign_encoder.onnx" in body["files"]
    assert not body["path"].startswith("/")  # no absolute server path in a public answer
    bundle = load_bundle(tmp_path / "exports" / body["name"])  # verifies every file against the manifest
    assert bundle.labels.count("akwaaba") == 3
    assert len(bundle.labels) == body["references"]


BAD_ENROL = {
    "empty name": ({"name": "", "sequences": _sequences()}, "empty"),
    "blank name": ({"name": "   ", "sequences": _sequences()}, "empty"),
    "over-long name": ({"name": "x" * 65, "sequences": _sequences()}, "64"),
    "slash in name": ({"name": "a/b", "sequences": _sequences()}, "not allowed"),
    "idle label": ({"name": "-", "sequences": _sequences()}, "-"),
    "too few sequences": ({"name": "akwaaba", "sequences": _sequences(n=2)}, "at least 3"),
    "no sequences": ({"name": "akwaaba", "sequences": []}, "at least 3"),
    "bad frame in a sequence": (
        {"name": "akwaaba", "sequences": [*_sequences(n=2), {"frames": [[0.1] * 100]}]}, "sequences[2]"),
    "a clip without hands": (
        {"name": "akwaaba", "sequences": [*_sequences(n=2), {"frames": [[0.0] * 258] * 10}]}, "no hands"),
    "unknown category": ({"name": "akwaaba", "sequences": _sequences(), "category": "banana"}, "category"),
    "name not a string": ({"name": 5, "sequences": _sequences()}, "name"),
    "sequences not a list": ({"name": "akwaaba", "sequences": "abc"}, "sequences"),
}


@pytest.mark.parametrize("case", list(BAD_ENROL), ids=list(BAD_ENROL))
def test_bad_enrolment_is_a_4xx_saying_what_to_fix(client, case):
    payload, needle = BAD_ENROL[case]
    body = assert_json_error(client.post("/v1/signs", json=payload), 422)
    assert needle.lower() in body["message"].lower(), body["message"]
    assert client.get("/v1/signs").status_code == 200


def test_video_enrolment_needs_enough_valid_clips(client):
    two = [("files", (f"c{i}.mp4", b"\x00" * 100, "video/mp4")) for i in range(2)]
    body = assert_json_error(client.post("/v1/signs/video", data={"name": "akwaaba"}, files=two), 422)
    assert "at least 3" in body["message"]
    corrupt = [("files", (f"c{i}.mp4", b"\x00garbage" * 200, "video/mp4")) for i in range(3)]
    body = assert_json_error(client.post("/v1/signs/video", data={"name": "akwaaba"}, files=corrupt), 422)
    assert "files[0]" in body["message"] and "c0.mp4" in body["message"]
    clip = [("files", ("c.mp4", b"\x00" * 100, "video/mp4"))] * 3
    assert_json_error(client.post("/v1/signs/video", data={"name": ""}, files=clip), 422)
    assert_json_error(client.post("/v1/signs/video", files=clip), 422)  # no name field


def test_write_routes_need_the_api_key_read_routes_do_not(keyed):
    payload = {"name": "akwaaba", "sequences": _sequences()}
    assert_json_error(keyed.post("/v1/signs", json=payload), 401)
    body = assert_json_error(keyed.post("/v1/signs", json=payload, headers={"X-API-Key": "wrong"}), 401)
    assert "X-API-Key" in body["message"]
    assert_json_error(keyed.delete("/v1/signs/akwaaba"), 401)
    assert_json_error(keyed.post("/v1/references/export"), 401)
    assert_json_error(keyed.post("/v1/signs/video", data={"name": "x"}), 401)
    assert keyed.get("/v1/signs").status_code == 200
    assert keyed.post("/v1/inference", json=_sequences()[0]).status_code == 200
    assert keyed.get("/v1/config").json()["settings"]["API_KEY"] == "***"
    ok = keyed.post("/v1/signs", json=payload, headers={"X-API-Key": KEY})
    assert ok.status_code == 200, ok.text
    assert keyed.delete("/v1/signs/akwaaba", headers={"X-API-Key": KEY}).status_code == 200


@pytest.mark.slow
def test_real_clip_is_recognised_and_enrolled_from_video(client):
    video = real_video()
    if video is None:
        pytest.skip("NO REAL VIDEO: sample_dataset/videos/ and ../shared/datasets/webcam-clip are both missing")
    data = video.read_bytes()
    response = client.post("/v1/inference/video", files={"file": (video.name, data, "video/mp4")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timings_ms"]["extract"] > 0 and body["diagnostics"]["n_frames"] > 10
    files = [("files", (f"take{i}.mp4", data, "video/mp4")) for i in range(3)]
    enrolled = client.post("/v1/signs/video", data={"name": "selfie sign"}, files=files)
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["added"] == 3
    again = client.post("/v1/inference/video", files={"file": (video.name, data, "video/mp4")}).json()
    assert again["results"][0]["label"] == "selfie sign"


# ---------------------------------------------------------------------------- the one write rule


def test_read_only_refuses_every_write_even_with_the_key(tmp_path):
    app = create_app(make_settings(tmp_path, API_KEY=KEY, READ_ONLY=True))
    with TestClient(app, raise_server_exceptions=False) as c:
        headers = {"X-API-Key": KEY}
        body = assert_json_error(c.post("/v1/signs", json={"name": "akwaaba", "sequences": _sequences()},
                                        headers=headers), 403)
        assert body["error"] == "read_only"
        assert_json_error(c.delete("/v1/signs/akwaaba", headers=headers), 403)
        assert_json_error(c.post("/v1/references/export", headers=headers), 403)
        assert c.get("/healthz").json()["writes"] == "read_only"
        with pytest.raises(Exception, match="read-only"):  # the service's own door says the same
            app.state.service.enrol("akwaaba", [], key=KEY)


def test_shipped_signs_are_read_only_unless_allowed(tmp_path):
    payload = {"name": "hello", "sequences": _sequences("hello")}
    with TestClient(create_app(make_settings(tmp_path)), raise_server_exceptions=False) as c:
        assert assert_json_error(c.post("/v1/signs", json=payload), 403)["error"] == "bundle_sign"
    with TestClient(create_app(make_settings(tmp_path, BUNDLE_SIGNS_WRITABLE=True)),
                    raise_server_exceptions=False) as c:
        assert c.post("/v1/signs", json=payload).json()["references"] == 3 + 3  # the bundle's 3 and these
        assert c.delete("/v1/signs/hello").json()["removed"] == 3  # only the added clips go


def test_healthz_sees_another_workers_enrolment(tmp_path):
    """Two processes' worth of service on one store: the second's /healthz counts the first's enrolment."""
    with TestClient(create_app(make_settings(tmp_path)), raise_server_exceptions=False) as one, \
            TestClient(create_app(make_settings(tmp_path)), raise_server_exceptions=False) as two:
        before = two.get("/healthz").json()["reference_count"]
        assert one.post("/v1/signs", json={"name": "akwaaba", "sequences": _sequences()}).status_code == 200
        assert two.get("/healthz").json()["reference_count"] == before + 3  # no other request in between


def test_exports_rotate(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, EXPORTS_KEEP=2)), raise_server_exceptions=False) as c:
        names = [c.post("/v1/references/export").json()["name"] for _ in range(3)]
    kept = sorted(p.name for p in (tmp_path / "exports").iterdir())
    assert kept == sorted(names[1:])  # the oldest was removed
