"""The GhSL deployment guide's contract, exactly: its request (`frames`, `top_k`, `metadata`) and
its response (`top_k` = how many, `results` with its field names and meanings), beside
SignSeek's own fields; the same in the OpenAPI schema; `metadata.fps` used and logged; each
result's `video_file` served by `/videos/{filename}`."""

from __future__ import annotations

import io
import json
import logging
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_api_support import first_index_of, make_settings, sample_frames

from demo.api import create_app
from demo.api.logging import JsonLineFormatter
from demo.api.service import resample_to_fps
from signseek.bundle import stable_sentence_id

# The guide's InferenceResponse example, field by field (section 3.3).
GUIDE_RESULT = {
    "sentence_id": int, "sentence": str, "category": (str, type(None)), "video_file": str,
    "similarity": float, "confidence": float, "raw_similarity": (float, type(None)),
    "proto_similarity": (float, type(None)), "motion_mean": float, "accepted": bool,
    "rejection_reason": (str, type(None)), "dtw_distance": (float, type(None)),
    "dtw_score": (float, type(None)),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    tmp = tmp_path_factory.mktemp("contract")
    (tmp / "videos").mkdir()
    with TestClient(create_app(make_settings(tmp)), raise_server_exceptions=False) as test_client:
        yield test_client


def _guide_payload(label: str = "hello") -> dict:
    """The guide's request shape (section 3.3 / 5.2). Its 540-value frames are its own
    preprocessing; the frames here are one of SignSeek's layouts (258 values: pose + hands)."""
    frames, _ = sample_frames(first_index_of(label))
    return {"frames": frames, "top_k": 5, "metadata": {"fps": 30, "source": "webcam"}}


def test_the_guides_payload_gets_the_guides_fields(client):
    response = client.post("/v1/inference", json=_guide_payload("hello"))
    assert response.status_code == 200, response.text
    data = response.json()
    # The guide's example client: data.results[0].accepted, updateUIWithPredictions(data.results).
    assert data["top_k"] == len(data["results"]) == 5
    top = data["results"][0]
    for name, kind in GUIDE_RESULT.items():
        assert isinstance(top[name], kind), (name, top[name])
    assert top["sentence"] == top["label"] == "hello"  # no sentence text recorded: the label
    assert top["sentence_id"] == stable_sentence_id("hello")
    assert top["proto_similarity"] == top["prototype_similarity"]
    assert top["motion_mean"] == data["motion"]
    # Only the top answer is gated; the guide's null means "accepted".
    assert top["accepted"] is data["accepted"]
    assert top["rejection_reason"] == (None if data["accepted"] else data["rejection_reason"])
    assert all(r["accepted"] is False and r["rejection_reason"] is None for r in data["results"][1:])
    sims = [r["similarity"] for r in data["results"]]
    assert sims == sorted(sims, reverse=True)
    # SignSeek's own fields ride beside the guide's.
    assert {"label", "confidence", "accepted", "rejection_reason", "model", "timings_ms", "model_version"} <= set(data)


def test_a_rejected_top_result_carries_the_reason(client, tmp_path):
    idle = client.post("/v1/inference", json={"frames": [[0.0] * 258] * 20, "top_k": 3}).json()
    assert idle["top_k"] == len(idle["results"]) == 0 and idle["rejection_reason"] == "no_hands"
    # A threshold no similarity reaches: every signed clip is ranked, then refused.
    with TestClient(create_app(make_settings(tmp_path, SIM_THRESHOLD=1.0)), raise_server_exceptions=False) as strict:
        data = strict.post("/v1/inference", json=_guide_payload("hello")).json()
    assert data["accepted"] is False and data["results"], data
    assert data["results"][0]["accepted"] is False
    assert data["results"][0]["rejection_reason"] == data["rejection_reason"] not in (None, "none")


def test_openapi_shows_the_guides_contract_and_ours(client):
    components = client.get("/openapi.json").json()["components"]["schemas"]
    payload = components["SequencePayload"]["properties"]
    assert {"frames", "top_k", "metadata", "layout", "fps"} <= set(payload)
    assert {"fps", "source"} <= set(components["PayloadMetadata"]["properties"])
    response = components["InferenceResponse"]["properties"]
    assert response["top_k"]["type"] == "integer"
    assert {"results", "label", "accepted", "model", "timings_ms"} <= set(response)
    result = components["SentenceResult"]["properties"]
    assert set(GUIDE_RESULT) | {"label", "prototype_similarity"} <= set(result)


def test_metadata_fps_resamples_and_is_logged(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    logger = logging.getLogger("signseek.api.requests")
    logger.addHandler(handler)
    try:
        payload = _guide_payload("tea")
        payload["metadata"] = {"fps": 60, "source": "webcam"}
        at_60 = client.post("/v1/inference", json=payload).json()
        payload["metadata"] = {"fps": 30, "source": "upload"}
        at_30 = client.post("/v1/inference", json=payload).json()
    finally:
        logger.removeHandler(handler)
    assert at_60["diagnostics"]["fps"] == 60 and at_60["diagnostics"]["resampled_to"] == pytest.approx(30, abs=2)
    assert at_30["diagnostics"]["resampled_to"] is None  # already at MODEL_FPS
    # 20 frames at 60 fps are a third of a second: resampled to 30 fps they are ~10 frames.
    assert at_60["diagnostics"]["n_frames"] < at_30["diagnostics"]["n_frames"]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["fps"], x["source"]) for x in lines[-2:]] == [(60, "webcam"), (30, "upload")]


def test_enrolment_reads_metadata_fps_as_inference_does(client):
    """A take enrolled at 10 fps and the same take recognised at 10 fps are one clip to the engine
    (both resampled to MODEL_FPS): its own enrolled sign answers, at cosine 1."""
    frames, _ = sample_frames(first_index_of("tea"))
    slow = frames[::3]  # the clip as a 10 fps capture
    takes = [{"frames": slow, "metadata": {"fps": 10, "source": "webcam"}},
             {"frames": frames[1::3], "metadata": {"fps": 10}}, {"frames": frames, "metadata": {"fps": 30}}]
    enrol = client.post("/v1/signs", json={"name": "tea-at-10fps", "sequences": takes})
    assert enrol.status_code == 200, enrol.text
    try:
        data = client.post("/v1/inference", json={"frames": slow, "top_k": 3, "metadata": {"fps": 10}}).json()
        top = data["results"][0]
        assert top["label"] == "tea-at-10fps" and top["raw_similarity"] == pytest.approx(1.0, abs=1e-4), data
    finally:
        assert client.delete("/v1/signs/tea-at-10fps").status_code == 200


def test_resampling_keeps_missing_points_missing():
    points = np.zeros((4, 543, 3), dtype=np.float32)
    points[:, :, 0] = np.arange(4)[:, None]
    points[2, 501:522] = np.nan  # the left hand not seen in frame 2
    out, rate = resample_to_fps(points, 10.0, 20.0, max_frames=100)
    assert rate == 20.0 and len(out) == 7
    np.testing.assert_allclose(out[:, 0, 0], [0, 0.5, 1, 1.5, 2, 2.5, 3])
    assert np.isnan(out[3:6, 501]).all() and np.isfinite(out[[0, 1, 2, 6], 501]).all()
    capped, _ = resample_to_fps(points, 1.0, 30.0, max_frames=50)
    assert len(capped) == 50  # never more than MAX_FRAMES


def test_every_result_video_file_is_served(client):
    data = client.post("/v1/inference", json=_guide_payload("thank-you")).json()
    for result in data["results"][:2]:
        assert re.fullmatch(r"skeleton_\d+\.mp4", result["video_file"]), result["video_file"]
        response = client.get(f"/videos/{result['video_file']}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "video/mp4"
        assert response.content[4:8] == b"ftyp"  # an mp4 a browser plays
    again = client.get(f"/videos/{data['results'][0]['video_file']}")
    assert again.content == client.get(f"/videos/{data['results'][0]['video_file']}").content
    assert client.get("/videos/skeleton_12345.mp4").status_code == 404


# ---------------------------------------------------------------------------- the guide's settings names


def test_the_guides_setting_names_set_ours_and_say_what_they_did(tmp_path, monkeypatch):
    for name, value in {"DTW_RADIUS": "6", "DTW_ALPHA": "0.65", "DTW_TOPK": "4", "DTW_LAMBDA": "0.002",
                        "GLOBAL_STATS_PATH": "/opt/render/models/global_stats.npz", "SIM_TRESHOLD": "0.3"}.items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(make_settings(tmp_path)), raise_server_exceptions=False) as c:
        config = c.get("/v1/config").json()
    settings, sources = config["settings"], config["sources"]
    assert (settings["DTW_WINDOW"], settings["DTW_TOP_N"]) == (6, 4) and sources["DTW_WINDOW"] == "env"
    assert settings["DTW_WEIGHT"] == pytest.approx(0.35)  # the guide weights the cosine, we the DTW score
    status = {note["name"]: note["status"] for note in config["guide_names"]}
    assert status == {"DTW_RADIUS": "applied", "DTW_ALPHA": "applied", "DTW_TOPK": "applied",
                      "DTW_LAMBDA": "not_mapped", "GLOBAL_STATS_PATH": "ignored"}
    assert config["unknown_settings"] == [{"name": "SIM_TRESHOLD", "suggestion": "SIM_THRESHOLD"}]
    assert any("SIM_TRESHOLD" in w for w in config["warnings"]) and any("DTW_LAMBDA" in w for w in config["warnings"])


def test_ours_win_over_the_guides_name(tmp_path, monkeypatch):
    monkeypatch.setenv("DTW_RADIUS", "6")
    monkeypatch.setenv("DTW_WINDOW", "3")
    with TestClient(create_app(make_settings(tmp_path)), raise_server_exceptions=False) as c:
        config = c.get("/v1/config").json()
    assert config["settings"]["DTW_WINDOW"] == 3
    assert [n["status"] for n in config["guide_names"]] == ["overridden"]


# ---------------------------------------------------------------------------- embeddings_map.csv


def test_embeddings_map_columns_old_and_new(tmp_path):
    import csv
    import shutil

    from test_api_support import fixture_bundle_dir

    from signseek.bundle import EMBEDDINGS_MAP, MAP_COLUMNS, fill_sentence_fields, load_bundle, write_manifest

    old = tmp_path / "old"
    shutil.copytree(fixture_bundle_dir(), old)
    with open(old / EMBEDDINGS_MAP, newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(old / EMBEDDINGS_MAP, "w", newline="") as fh:  # a bundle written before the columns existed
        writer = csv.DictWriter(fh, fieldnames=["index", "label", "category", "source", "session", "sample_id"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    write_manifest(old, files=[n for n in load_bundle(fixture_bundle_dir()).manifest["files"]])
    bundle = load_bundle(old)
    hello = [r for r in bundle.rows if r["label"] == "hello"]
    assert {r["sentence_id"] for r in hello} == {stable_sentence_id("hello")}
    assert {(r["sentence"], r["video_file"]) for r in hello} == {("hello", "")}
    assert set(MAP_COLUMNS) >= {"sentence_id", "sentence", "video_file"}
    # Given values are kept, and a label's other rows take its id.
    filled = fill_sentence_fields([{"label": "thanks", "sentence_id": "42", "sentence": "THANK YOU",
                                    "video_file": "thank_you.mp4"}, {"label": "thanks"}])
    assert [r["sentence_id"] for r in filled] == [42, 42] and filled[0]["sentence"] == "THANK YOU"
    assert filled[1]["sentence"] == "thanks" and filled[1]["video_file"] == ""
