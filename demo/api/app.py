"""The FastAPI app: REST routes, the WebSocket stream and Socket.IO, on one engine.

    from demo.api import create_app
    app = create_app()                 # settings from the environment (and the bundle)
    # uvicorn --factory demo.api:create_app --host 127.0.0.1 --port 8000

`create_app` loads and verifies the bundle in MODELS_DIR at once: a bundle whose files do not
match their manifest stops start-up with `BundleError` naming the file, rather than serving a
model nobody exported. The engine, reference store and settings hang off ``app.state`` (the
Gradio UI mounted on this app uses the same ones):

    app.state.service     demo.api.service.Service (engine, store, samples, extraction)
    app.state.settings    signseek.settings.Settings in force
    app.state.engine      the engine;  app.state.store  the reference store
    app.state.sio         the python-socketio AsyncServer mounted at /socket.io
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

import signseek

from . import routes_inference, routes_meta, routes_samples, routes_signs, socketio_app, streaming
from .errors import EdgeMiddleware, install_error_handlers
from .limits import GuardMiddleware
from .logging import RequestLogMiddleware, configure_logging, install_redaction
from .service import Service

log = logging.getLogger("signseek.api")

DESCRIPTION = """
Sign recognition from landmark sequences, as retrieval over reference clips.

* `POST /v1/inference`: a `SequencePayload` (per-frame landmark vectors) -> an `InferenceResponse`.
* `POST /v1/inference/video`: a clip (multipart), landmarks extracted server side.
* `WS /ws/stream`: one landmark frame a message, predictions every few frames.
* Socket.IO at `/socket.io`: HandTalk's `landmark_stream` -> `prediction` / `error`.
* Enrolment (`/v1/signs`): add a sign from a few clips, no retraining.

Errors are JSON `{"error", "message", "status"}`; 4xx messages say what to fix. NaN and
Infinity are not JSON and are refused: send `null` for a landmark that was not detected.
"""


def create_app(settings=None, *, samples_path=None, log_level: str | None = None) -> FastAPI:
    """Build the service. ``settings``: a `signseek.settings.Settings` (default: from the
    environment, with the bundle's calibrated thresholds). Raises `signseek.bundle.BundleError`
    (naming the file) when the bundle in MODELS_DIR is missing or does not match its manifest."""
    configure_logging(log_level or "INFO")
    service = Service.create(settings, samples_path=samples_path)
    settings = service.settings
    app = FastAPI(
        title="SignSeek API",
        version=signseek.__version__,
        description=DESCRIPTION,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.engine = service.engine
    app.state.store = service.store
    install_error_handlers(app)
    _schema_says_who_may_write(app, service)
    for module in (routes_meta, routes_samples, routes_inference, routes_signs, streaming):
        app.include_router(module.router)
    # Body caps (MAX_JSON_MB / MAX_UPLOAD_MB), per-client rate limits, early 503 for clip uploads.
    app.add_middleware(GuardMiddleware, service=service)
    # 405 with Allow on the API's routes, one error shape for whatever is mounted (Gradio at `/`).
    app.add_middleware(EdgeMiddleware, router=app.router)
    app.add_middleware(RequestLogMiddleware)
    app.state.sio = socketio_app.mount(app, service)
    install_redaction([settings.API_KEY] if settings.API_KEY else [])
    log.info(
        "SignSeek API ready",
        extra={"fields": {"event": "startup", "models_dir": service.public_path(settings.MODELS_DIR),
                          "backend": service.backend, "references": service.reference_count,
                          "model_version": service.model_version, **service.access()}},
    )
    for note in service.names_report.get("aliases", []):
        log.info("setting name: %s", note["message"], extra={"fields": {"event": "setting_alias", **note}})
    for warning in service.warnings():
        log.warning("%s", warning.upper() if warning.startswith("writes are open") else warning,
                    extra={"fields": {"event": "startup_warning"}})
    return app


def _schema_says_who_may_write(app: FastAPI, service: Service) -> None:
    """The OpenAPI schema as this server runs: the X-API-Key requirement on the write routes only
    when API_KEY is set (with writes open, or refused by READ_ONLY, no key is asked for)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            if service.writes_open or service.settings.READ_ONLY:
                for methods in schema.get("paths", {}).values():
                    for operation in methods.values():
                        if isinstance(operation, dict):
                            operation.pop("security", None)
                schema.get("components", {}).pop("securitySchemes", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
