"""Read-only data routes: a random stored sample sequence, and the sample videos."""

from __future__ import annotations

import random
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from .errors import ApiError
from .schemas import ErrorResponse, SamplePayload
from .service import Service

router = APIRouter()
ERRORS = {c: {"model": ErrorResponse} for c in (400, 404, 503)}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v", ".y4m"}


def _service(request: Request) -> Service:
    return request.app.state.service


@router.get("/v1/samples/random", response_model=SamplePayload, responses=ERRORS, tags=["data"])
def random_sample(request: Request, label: str | None = Query(None, max_length=64, description="Only this label.")):
    """A random stored landmark sequence from the sample dataset, with its label.

    The body is a SequencePayload (frames, layout, fps), so it can be posted straight back to
    `/v1/inference`; `label` says what it should be recognised as.
    """
    samples = _service(request).samples()
    indices = samples.indices(label)
    if not indices:
        raise ApiError(404, "unknown_label", f"the sample dataset has no sequence labelled {label!r}; "
                       f"labels: {', '.join(samples.labels_sorted)}")
    return samples.payload(random.choice(indices))


def _safe_video_path(videos_dir: Path, filename: str) -> Path:
    """The file ``filename`` directly inside ``videos_dir``; anything else is refused (4xx)."""
    if (
        not filename
        or "/" in filename
        or "\\" in filename
        or "\x00" in filename
        or filename.startswith(".")
    ):
        raise ApiError(400, "bad_filename", f"{filename!r} is not a plain file name: name one file in the videos "
                       "folder, without '/', '\\' or a leading '.'")
    root = videos_dir.resolve()
    path = (root / filename).resolve()
    if path.parent != root:
        raise ApiError(400, "bad_filename", f"{filename!r} points outside the videos folder")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ApiError(404, "not_found", f"{filename!r} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    if not path.is_file():
        raise ApiError(404, "not_found", f"no video named {filename!r}; GET /videos lists them")
    return path


@router.get("/videos", tags=["data"], responses=ERRORS)
def list_videos(request: Request) -> dict:
    """The video files served under /videos/{filename}."""
    root = Path(_service(request).settings.VIDEOS_DIR)
    names = sorted(p.name for p in root.glob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) if root.is_dir() else []
    return {"videos": names}


@router.get("/videos/{filename:path}", tags=["data"], responses=ERRORS, response_class=FileResponse)
def get_video(filename: str, request: Request) -> FileResponse:
    """A file from VIDEOS_DIR (default sample_dataset/videos/). Path traversal is refused with 400."""
    return FileResponse(_safe_video_path(Path(_service(request).settings.VIDEOS_DIR), filename))
