"""The demo as scripts use it: `python app.py` in a subprocess, every UI action through gradio_client.

One server for the module (MediaPipe and the Gradio start-up cost seconds): the shipped bundle
in models/ when it is there, else the engine's fixture bundle; a fresh reference store.
"""

from __future__ import annotations

import html
import json
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


import pytest  # noqa: E402
from demo_support import PROJECT_ROOT, blank_clip, clip_variants, demo_env, running_app  # noqa: E402

from demo.render import probe_codec  # noqa: E402

pytestmark = pytest.mark.slow

ENDPOINTS = {"/recognise_video", "/random_sample", "/live_stream", "/live_frame", "/live_reset", "/enrol_sign",
             "/list_signs", "/delete_sign", "/model_info"}
# Recognise outputs: banner, ranked, chart, skeleton, timings, raw.
BANNER, RANKED, CHART, SKELETON, TIMINGS, RAW = range(6)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo-server")
    with running_app(demo_env(tmp), tmp / "app.log") as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server + "/", verbose=False)


def _signs(table: dict) -> list[str]:
    return [row[table["headers"].index("sign")] for row in table["data"]]


def test_every_ui_action_has_a_named_endpoint(client):
    named = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert ENDPOINTS <= named


def test_api_and_ui_are_served_by_one_process(server):
    import httpx

    health = httpx.get(server + "/healthz", timeout=10).json()
    assert health["model_loaded"] is True
    page = httpx.get(server + "/", timeout=10)
    assert page.status_code == 200 and "gradio" in page.text.lower()


def test_random_sample_is_replayed_and_recognised(client):
    out = client.predict(api_name="/random_sample")
    raw = out[RAW]
    assert raw["expected"] in raw["source"] or raw["expected"] == "-"
    assert "signs_sample.npz" in out[BANNER]
    assert probe_codec(out[SKELETON]) == "h264"
    if raw["results"]:  # an idle sample may have no hands, hence no candidates
        assert _signs(out[RANKED])[0] == raw["results"][0]["label"]
        if raw["accepted"]:
            assert raw["label"] == raw["results"][0]["label"] and "Recognised" in out[BANNER]


def test_real_clip_gives_a_ranked_explained_result(client, selfie_clip):
    from gradio_client import handle_file

    out = client.predict(handle_file(str(selfie_clip)), api_name="/recognise_video")
    raw = out[RAW]
    assert "signer_selfie.mp4" in out[BANNER]
    assert ("Recognised" in out[BANNER]) == raw["accepted"]
    assert len(out[RANKED]["data"]) == len(raw["results"]) > 0
    assert out[RANKED]["headers"][:4] == ["rank", "sign", "category", "similarity"]
    stages = [row[0] for row in out[TIMINGS]["data"]]
    assert stages[0] == "decode + landmarks" and "render" in stages and stages[-1] == "total"
    assert probe_codec(out[SKELETON]) == "h264"
    assert out[CHART] is not None


@pytest.mark.parametrize("case", ["no_file", "not_a_video", "too_long", "no_person"])
def test_bad_input_is_a_readable_message(client, case, tmp_path):
    from gradio_client import handle_file

    if case == "no_file":
        arg, expected = None, "No clip yet"
    elif case == "not_a_video":
        arg, expected = str(PROJECT_ROOT / "pyproject.toml"), "is not a video"
    elif case == "too_long":
        arg, expected = str(blank_clip(tmp_path, seconds=25)), "longer than the 20 s allowed"
    else:
        arg, expected = str(blank_clip(tmp_path, seconds=1.5)), "No person was found"
    out = client.predict(handle_file(arg) if arg else None, api_name="/recognise_video")
    assert "Problem" in out[BANNER] and expected in out[BANNER], out[BANNER]
    assert "Traceback" not in out[BANNER]
    assert out[RANKED]["data"] == [] and out[RAW] == {"error": out[RAW]["error"]}


def test_enrol_from_three_clips_is_recognised_at_once_then_deleted(client, selfie_clip, tmp_path):
    from gradio_client import handle_file

    takes = clip_variants(selfie_clip, tmp_path / "takes")
    too_few = client.predict("wave-demo", [handle_file(str(takes[0]))], None, None, None, api_name="/enrol_sign")
    assert "at least 3 clips" in too_few[0]

    status, signs, _ = client.predict("wave-demo", [handle_file(str(p)) for p in takes], None, None, None,
                                          api_name="/enrol_sign")
    status = html.unescape(status)
    assert "Added 'wave-demo' from 3 clips" in status, status
    assert "wave-demo" in _signs(signs)

    out = client.predict(handle_file(str(selfie_clip)), api_name="/recognise_video")
    assert out[RAW]["results"][0]["label"] == "wave-demo"  # the new sign is the nearest at once

    status, signs, _ = client.predict("wave-demo", api_name="/delete_sign")
    status = html.unescape(status)
    assert "Deleted 'wave-demo'" in status
    assert "wave-demo" not in _signs(signs)
    signs, _ = client.predict(api_name="/list_signs")
    assert "wave-demo" not in _signs(signs)


def test_model_tab_shows_card_vocabulary_and_thresholds(client):
    card, vocabulary, thresholds, manifest = client.predict(api_name="/model_info")
    assert card.startswith("## Model") and "References" in card
    assert len(vocabulary["data"]) > 1
    settings = {row[0]: row for row in thresholds["data"]}
    assert {"SIM_THRESHOLD", "SIM_MARGIN", "MOTION_FLOOR"} <= set(settings)
    assert "sign_encoder.onnx" in json.loads(manifest)["files"]


def test_live_frames_are_drawn_and_captioned_per_session(client, selfie_clip, tmp_path):
    import cv2
    from demo_support import decode
    from gradio_client import handle_file

    frames, _ = decode(selfie_clip)
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), cv2.cvtColor(frames[len(frames) // 2], cv2.COLOR_RGB2BGR))
    overlay, captions = client.predict(handle_file(str(path)), api_name="/live_frame")
    drawn = cv2.imread(overlay)
    assert drawn is not None and drawn.shape[:2] == frames[0].shape[:2]
    assert "now:" in captions and "latency" in captions
    assert "no sign" in client.predict(api_name="/live_reset")
