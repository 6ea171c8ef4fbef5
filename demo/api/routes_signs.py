"""Enrolment: add a sign from a few recordings (no retraining), list, delete, export.

Write routes (POST, DELETE, export) need the X-API-Key header when API_KEY is set.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from .auth import require_api_key
from .errors import ApiError
from .payloads import frames_to_points
from .schemas import DeleteResponse, EnrolRequest, EnrolResponse, ErrorResponse, ExportResponse, SignsResponse
from .service import Service
from .strict_json import StrictJSONRoute
from .uploads import saved_upload

router = APIRouter(route_class=StrictJSONRoute, tags=["enrolment"])
ERRORS = {c: {"model": ErrorResponse} for c in (400, 401, 404, 413, 422, 503)}


def _check_count(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise ApiError(422, "too_few_clips", f"{n} {what} sent; enrolling a sign needs at least {minimum} (MIN_ENROL_CLIPS)")


@router.post("/v1/signs", response_model=EnrolResponse, responses=ERRORS, dependencies=[Depends(require_api_key)])
def enrol_sequences(body: EnrolRequest, request: Request) -> dict:
    """Enrol a sign from landmark sequences (each one a SequencePayload)."""
    service: Service = request.app.state.service
    name = service.check_name(body.name)
    _check_count(len(body.sequences), service.settings.MIN_ENROL_CLIPS, "sequences")
    clips = []
    for i, seq in enumerate(body.sequences):
        try:
            points, _, _ = frames_to_points(seq.frames, seq.layout, service.settings.MAX_FRAMES)
        except ApiError as exc:
            raise ApiError(exc.status_code, exc.code, f"sequences[{i}]: {exc.message}") from None
        clips.append(points)
    return service.enrol(name, clips, category=body.category)


@router.post("/v1/signs/video", response_model=EnrolResponse, responses=ERRORS,
             dependencies=[Depends(require_api_key)])
def enrol_videos(
    request: Request,
    name: Annotated[str, Form(description="The sign's label, 1-64 characters.")],
    files: Annotated[list[UploadFile], File(description="At least MIN_ENROL_CLIPS clips of the sign.")],
    category: Annotated[str | None, Form(max_length=32)] = None,
) -> dict:
    """Enrol a sign from video clips (multipart: `name` and repeated `files`)."""
    service: Service = request.app.state.service
    name = service.check_name(name)
    _check_count(len(files), service.settings.MIN_ENROL_CLIPS, "clips")
    start = time.perf_counter()
    clips, sources = [], []
    with ExitStack() as stack:
        for i, upload in enumerate(files):
            path = stack.enter_context(saved_upload(upload, service.settings.MAX_UPLOAD_MB, "files"))
            try:
                sequence, _ = service.extract(path)
            except ApiError as exc:
                raise ApiError(exc.status_code, exc.code, f"files[{i}] ({upload.filename}): {exc.message}") from None
            clips.append(sequence.points)
            sources.append(Path(upload.filename or f"clip{i}").name)
    request.state.timings = {"extract": round((time.perf_counter() - start) * 1000, 3)}
    return service.enrol(name, clips, category=category, sources=sources)


@router.get("/v1/signs", response_model=SignsResponse, responses=ERRORS)
def list_signs(request: Request) -> dict:
    """Every sign the engine can recognise: the bundle's and the enrolled ones."""
    return request.app.state.service.list_signs()


@router.delete("/v1/signs/{name}", response_model=DeleteResponse, responses=ERRORS,
               dependencies=[Depends(require_api_key)])
def delete_sign(name: str, request: Request) -> dict:
    """Remove an enrolled sign's references (the bundle's own signs cannot be deleted)."""
    service: Service = request.app.state.service
    return service.delete(service.check_name(name))


@router.post("/v1/references/export", response_model=ExportResponse, responses=ERRORS,
             dependencies=[Depends(require_api_key)])
def export_references(request: Request) -> dict:
    """Write a new bundle with the enrolled references added (a directory next to the store)."""
    return request.app.state.service.export()
