"""Recognition routes: a landmark sequence (JSON) or a clip (multipart) -> InferenceResponse."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile

from .errors import TooLarge
from .limits import EXTRACT_TICKET
from .payloads import frames_to_points
from .schemas import ErrorResponse, InferenceResponse, SequencePayload
from .service import Service
from .strict_json import StrictJSONRoute
from .uploads import saved_upload

router = APIRouter(route_class=StrictJSONRoute, tags=["inference"])
ERRORS = {c: {"model": ErrorResponse} for c in (400, 413, 422, 429, 503)}


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


@router.post("/v1/inference", response_model=InferenceResponse, responses=ERRORS)
def inference(payload: SequencePayload, request: Request) -> dict:
    """Recognise one landmark sequence.

    `frames`: one list of numbers per frame (1629, 1662, 258, 170 or 126 values; `null` where
    not detected). At most MAX_FRAMES frames. NaN / Infinity are refused (not JSON).
    """
    service: Service = request.app.state.service
    start = time.perf_counter()
    points, visibility, _ = frames_to_points(payload.frames, payload.layout, service.settings.MAX_FRAMES)
    parse_ms = _ms(start)
    fps = payload.source_fps()
    result = service.predict(points, visibility=visibility, fps=fps, top_k=payload.top_k)
    result["timings_ms"] = {"parse": parse_ms, **result.get("timings_ms", {}), "total": _ms(start)}
    request.state.timings = result["timings_ms"]
    request.state.log_fields = {"fps": fps, "source": payload.metadata.source if payload.metadata else None,
                                "frames": len(payload.frames)}
    return result


@router.post("/v1/inference/video", response_model=InferenceResponse, responses=ERRORS)
def inference_video(
    request: Request,
    file: Annotated[UploadFile, File(description="A clip: mp4, webm, mov or avi, at most MAX_UPLOAD_MB.")],
    top_k: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> dict:
    """Recognise a clip: MediaPipe Holistic landmarks are extracted server side, then as /v1/inference."""
    service: Service = request.app.state.service
    start = time.perf_counter()
    with saved_upload(file, service.settings.MAX_UPLOAD_MB) as path:
        sequence, extract_ms = service.extract(path, display_name=file.filename,
                                               ticket=getattr(request.state, EXTRACT_TICKET, None))
    if len(sequence.points) > service.settings.MAX_FRAMES:
        raise TooLarge(f"{path.name} has {len(sequence.points)} frames, more than MAX_FRAMES="
                       f"{service.settings.MAX_FRAMES}: send a shorter clip", code="too_many_frames")
    result = service.predict(sequence.points, visibility=sequence.visibility, fps=sequence.fps, top_k=top_k)
    result["timings_ms"] = {"extract": extract_ms, **result.get("timings_ms", {}), "total": _ms(start)}
    request.state.timings = result["timings_ms"]
    return result
