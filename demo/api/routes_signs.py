"""Enrolment: add a sign from a few recordings (no retraining), list, delete, export.

Write routes (POST, DELETE, export) go through the service's one write rule
(`Service.authorize_write`): X-API-Key when API_KEY is set, nothing when READ_ONLY.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile

from signseek.errors import SignSeekError
from signseek.store import CATEGORIES

from .auth import require_write_access
from .errors import Invalid
from .limits import EXTRACT_TICKET
from .payloads import frames_to_points
from .schemas import (
    NAME_SCHEMA,
    DeleteResponse,
    EnrolRequest,
    EnrolResponse,
    ErrorResponse,
    ExportResponse,
    SignsResponse,
)
from .service import Service, resample_to_fps
from .strict_json import StrictJSONRoute
from .uploads import saved_upload

router = APIRouter(route_class=StrictJSONRoute, tags=["enrolment"])
READ_ERRORS = {c: {"model": ErrorResponse} for c in (503,)}
WRITE_ERRORS = {c: {"model": ErrorResponse} for c in (400, 401, 403, 404, 409, 413, 422, 429, 503)}
KeyDep = Annotated[str | None, Depends(require_write_access)]


def _check_count(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise Invalid(f"{n} {what} sent; enrolling a sign needs at least {minimum} (MIN_ENROL_CLIPS)", code="too_few_clips")


def _prefixed(exc: SignSeekError, prefix: str) -> SignSeekError:
    """The same refusal (code, kind) with ``prefix`` before its message."""
    exc.args = (f"{prefix}: {exc.message}", *exc.args[1:])
    return exc


@router.post("/v1/signs", response_model=EnrolResponse, responses=WRITE_ERRORS)
def enrol_sequences(body: EnrolRequest, request: Request, key: KeyDep) -> dict:
    """Enrol a sign from landmark sequences (each one a SequencePayload)."""
    service: Service = request.app.state.service
    name = service.check_name(body.name)
    _check_count(len(body.sequences), service.settings.MIN_ENROL_CLIPS, "sequences")
    clips = []
    for i, seq in enumerate(body.sequences):
        try:
            points, _, _ = frames_to_points(seq.frames, seq.layout, service.settings.MAX_FRAMES)
        except SignSeekError as exc:
            raise _prefixed(exc, f"sequences[{i}]") from None
        # At MODEL_FPS, as /v1/inference reads a sequence with a stated fps: a take posted at 7.5 fps
        # and the same take recognised later must be the same clip to the engine.
        points, _ = resample_to_fps(points, seq.source_fps(), service.settings.MODEL_FPS, service.settings.MAX_FRAMES)
        clips.append(points)
    return service.enrol(name, clips, category=body.category, key=key)


@router.post("/v1/signs/video", response_model=EnrolResponse, responses=WRITE_ERRORS)
def enrol_videos(
    request: Request,
    key: KeyDep,
    name: Annotated[str, Form(description="The sign's label, 1-64 characters.", json_schema_extra=NAME_SCHEMA)],
    files: Annotated[list[UploadFile], File(description="At least MIN_ENROL_CLIPS clips of the sign.",
                                            json_schema_extra={"minItems": 3})],
    category: Annotated[str | None, Form(description="word (default), letter, phrase, number or other.",
                                         json_schema_extra={"anyOf": [{"enum": list(CATEGORIES)},
                                                                      {"type": "null"}]})] = None,
) -> dict:
    """Enrol a sign from video clips (multipart: `name` and repeated `files`)."""
    service: Service = request.app.state.service
    name = service.check_name(name)
    _check_count(len(files), service.settings.MIN_ENROL_CLIPS, "clips")
    start = time.perf_counter()
    clips, sources = [], []
    with ExitStack() as stack:
        for i, upload in enumerate(files):
            try:
                path = stack.enter_context(saved_upload(upload, service.settings.MAX_UPLOAD_MB, "files"))
                sequence, _ = service.extract(path, display_name=upload.filename,
                                              ticket=getattr(request.state, EXTRACT_TICKET, None))
            except SignSeekError as exc:
                raise _prefixed(exc, f"files[{i}] ({upload.filename})") from None
            clips.append(sequence.points)
            sources.append(path.name)
    request.state.timings = {"extract": round((time.perf_counter() - start) * 1000, 3)}
    return service.enrol(name, clips, category=category, sources=sources, key=key)


@router.get("/v1/signs", response_model=SignsResponse, responses=READ_ERRORS)
def list_signs(request: Request) -> dict:
    """Every sign the engine can recognise: the bundle's and the enrolled ones."""
    return request.app.state.service.list_signs()


@router.delete("/v1/signs/{name}", response_model=DeleteResponse, responses=WRITE_ERRORS)
def delete_sign(
    request: Request, key: KeyDep,
    name: Annotated[str, Path(description="An enrolled sign's name (GET /v1/signs lists them).",
                              json_schema_extra=NAME_SCHEMA)],
) -> dict:
    """Remove an enrolled sign's references (the bundle's own signs cannot be deleted: 403)."""
    return request.app.state.service.delete(name, key=key)


@router.post("/v1/references/export", response_model=ExportResponse, responses=WRITE_ERRORS)
def export_references(request: Request, key: KeyDep) -> dict:
    """Write a new bundle with the enrolled references added (a folder next to the store; the
    EXPORTS_KEEP newest are kept)."""
    return request.app.state.service.export(key=key)
