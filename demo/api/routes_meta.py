"""Health, configuration and model information (GhSL guide's and HandTalk's read routes).

`/healthz` and `/health` are `async` and touch nothing slow, so they answer while every worker
thread is busy (uploads, big bodies); `/healthz`'s reference_count sees enrolments made by other
processes (the store's files are checked in a thread of its own, at most 0.5 s).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from .schemas import ConfigResponse, HandTalkHealth, HandTalkModelInfo, HealthzResponse
from .service import Service

router = APIRouter()


def _service(request: Request) -> Service:
    return request.app.state.service


@router.get("/healthz", response_model=HealthzResponse, tags=["meta"])
async def healthz(request: Request) -> HealthzResponse:
    """Liveness and what is loaded: model, encoder backend, references, and whether writes are open."""
    service = _service(request)
    count = await service.fresh_reference_count()
    access = service.access()
    return HealthzResponse(
        status="ok" if service.model_loaded else "degraded",
        model_loaded=service.model_loaded,
        backend=service.backend,
        reference_count=count,
        version=service.version,
        model_version=service.model_version,
        writes=access["writes"],
        warnings=service.warnings(),
    )


@router.get("/health", response_model=HandTalkHealth, tags=["handtalk"])
async def health(request: Request) -> HandTalkHealth:
    """HandTalk's health check, for its load balancers and clients."""
    service = _service(request)
    return HandTalkHealth(
        status="healthy" if service.model_loaded else "unhealthy",
        model_loaded=service.model_loaded,
        uptime_seconds=round(time.monotonic() - service.started, 3),
    )


@router.get("/model/info", response_model=HandTalkModelInfo, tags=["handtalk"])
def model_info(request: Request) -> HandTalkModelInfo:
    """HandTalk's model metadata, plus the bundle's name, version, labels and classifier heads."""
    return HandTalkModelInfo(**_service(request).model_info())


@router.get("/v1/config", response_model=ConfigResponse, tags=["meta"])
def config(request: Request) -> ConfigResponse:
    """The settings in force and where each came from (default, bundle, env, .env, argument); the
    guide's setting names found and what they did; variables that look like settings but are not;
    whether writes are open. Paths are relative to the project unless PUBLIC_PATHS is set."""
    service = _service(request)
    return ConfigResponse(
        settings=service.public_settings(),
        sources=service.sources,
        models_dir=service.public_path(service.settings.MODELS_DIR),
        model_version=service.model_version,
        access=service.access(),
        guide_names=service.names_report.get("aliases", []),
        unknown_settings=service.names_report.get("unknown", []),
        warnings=service.warnings(),
    )
