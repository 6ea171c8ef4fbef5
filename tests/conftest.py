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
