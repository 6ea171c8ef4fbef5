"""Health, configuration and model information (GhSL guide's and HandTalk's read routes)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from .schemas import ConfigResponse, HandTalkHealth, HandTalkModelInfo, HealthzResponse
from .service import Service

router = APIRouter()


def _service(request: Request) -> Service:
    return request.app.state.service


@router.get("/healthz", response_model=HealthzResponse, tags=["meta"])
def healthz(request: Request) -> HealthzResponse:
    """Liveness and what is loaded: model, encoder backend (onnx or the torchscript fallback), references."""
    service = _service(request)
    return HealthzResponse(
        status="ok" if service.model_loaded else "degraded",
        model_loaded=service.model_loaded,
        backend=service.backend,
        reference_count=service.reference_count,
        version=service.version,
        model_version=service.model_version,
    )


@router.get("/health", response_model=HandTalkHealth, tags=["handtalk"])
def health(request: Request) -> HandTalkHealth:
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
    """The settings in force and where each came from (default, bundle, env, .env, argument)."""
    service = _service(request)
    return ConfigResponse(
        settings=service.settings.public_dict(),
        sources=service.sources,
        models_dir=str(service.settings.MODELS_DIR),
        model_version=service.model_version,
    )
