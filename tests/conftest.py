"""Shared pytest fixtures. Each group is owned by the part of the project it serves."""

from __future__ import annotations

import pytest

from signseek.paths import SAMPLE_DATASET

# ---- video / landmark extraction (signseek/landmarks/video.py, extract.py) ------------------
# Real clips copied into sample_dataset/videos/ (licenses next to them). Extraction results are
# session-scoped: MediaPipe costs a few seconds a clip, so every test reuses one run per clip.

SAMPLE_VIDEOS = SAMPLE_DATASET / "videos"
SELFIE_CLIP = SAMPLE_VIDEOS / "signer_selfie.mp4"  # 540x720, 30 fps, 58 frames, phone selfie
MSL_CLIPS = {name: SAMPLE_VIDEOS / f"{name}_001.mp4" for name in ("hoy", "yo")}  # 1280x720 MSL-150


def _require(path):
    if not path.is_file():
        pytest.fail(f"sample video {path} is missing; it ships with the repository (sample_dataset/videos/)")
    return path


@pytest.fixture(scope="session")
def selfie_clip():
    return _require(SELFIE_CLIP)


@pytest.fixture(scope="session", params=sorted(MSL_CLIPS))
def msl_clip(request):
    return _require(MSL_CLIPS[request.param])


@pytest.fixture(scope="session")
def selfie_extraction(selfie_clip):
    """ExtractionResult of signer_selfie.mp4, one process (the reference run)."""
    from signseek.landmarks.extract import extract_video

    return extract_video(selfie_clip)


@pytest.fixture(scope="session")
def msl_extraction(msl_clip):
    from signseek.landmarks.extract import extract_video

    return extract_video(msl_clip)


# ---- end of video / landmark extraction fixtures ---------------------------------------------


# ---- demo UI (demo/ui, app.py): one running app for the gradio_client and the browser tests ----
# One `python app.py` for both modules: the server start, the example warm-up and MediaPipe on the
# shared clips are paid once (landmarks are cached by file content on the server). It runs
# locked, as a shared deployment should: writes need DEMO_KEY.
DEMO_KEY = "demo-test-key-5c1d"


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    """(base URL, its folder: store, feedback, log) of the shared demo server."""
    import os

    from demo_support import demo_env, running_app

    if os.environ.get("SIGNSEEK_DEMO_URL"):  # a server already running (its API_KEY must be DEMO_KEY)
        yield os.environ["SIGNSEEK_DEMO_URL"].rstrip("/"), None
        return
    tmp = tmp_path_factory.mktemp("demo-server")
    # Both modules upload from 127.0.0.1 faster than one visitor may (RATE_LIMIT_VIDEO: 20 a minute):
    # no per-client limit here (the API's tests check the limits themselves).
    env = {**demo_env(tmp), "API_KEY": DEMO_KEY, "FEEDBACK_DIR": str(tmp / "feedback"), "RATE_LIMIT_VIDEO": "0"}
    with running_app(env, tmp / "app.log") as url:
        yield url, tmp


@pytest.fixture(scope="session")
def demo_takes(selfie_clip, tmp_path_factory):
    """Three cuts of the selfie clip, as a signer repeating one sign (made once for both modules)."""
    from demo_support import clip_variants

    return clip_variants(selfie_clip, tmp_path_factory.mktemp("takes"))


# ---- end of demo UI fixtures ------------------------------------------------------------------
