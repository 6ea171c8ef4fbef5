"""Read-only data routes: a random stored sample sequence, and the sample videos."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from .errors import ApiError, NotFound
from .schemas import ErrorResponse, SamplePayload
from .service import SKELETON_PREFIX, Service

router = APIRouter()
ERRORS = {c: {"model": ErrorResponse} for c in (400, 404, 422, 503)}
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
        raise NotFound(f"the sample dataset has no sequence labelled {label!r}; labels: "
                       f"{', '.join(samples.labels_sorted)}", code="unknown_label")
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
        raise NotFound(f"{filename!r} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))})")
    if not path.is_file():
        raise NotFound(f"no video named {filename!r}; GET /videos lists them, and a result's video_file names "
                       "one to show")
    return path


_SKELETON = re.compile(rf"^{SKELETON_PREFIX}(\d{{1,10}})\.mp4$")


@router.get("/videos", tags=["data"], responses=ERRORS)
def list_videos(request: Request) -> dict:
    """The video files served under /videos/{filename}."""
    root = Path(_service(request).settings.VIDEOS_DIR)
    names = sorted(p.name for p in root.glob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) if root.is_dir() else []
    return {"videos": names}


@router.get("/videos/{filename:path}", tags=["data"], responses=ERRORS, response_class=FileResponse)
def get_video(request: Request, filename: Annotated[str, PathParam(
        description="A file name in VIDEOS_DIR (a result's video_file)",
        json_schema_extra={"pattern": r"^[^/\\.\x00][^/\\\x00]*$", "maxLength": 255})]) -> FileResponse:
    """A file from VIDEOS_DIR (default sample_dataset/videos/): a result's `video_file`. For a
    reference with no recorded clip, `video_file` is `skeleton_<sentence_id>.mp4`: a skeleton clip
    of one of its sequences, rendered on first request and cached. Path traversal is refused (400)."""
    service = _service(request)
    try:
        path = _safe_video_path(Path(service.settings.VIDEOS_DIR), filename)
    except NotFound:
        match = _SKELETON.match(filename)
        if match is None:
            raise
        path = service.skeleton_video(int(match.group(1)))
    media = "video/webm" if path.suffix == ".webm" else "video/mp4"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=3600"})
