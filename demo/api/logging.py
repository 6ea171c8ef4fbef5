"""Structured logs: one JSON line per request (time, method, route, status, latency, stages),
with secrets redacted from every line (ours and uvicorn's access log).

Routes put per-stage timings (the engine's, plus parsing and extraction) in
``request.state.timings``; the middleware adds them to the request's line. A pure ASGI
middleware rather than BaseHTTPMiddleware: it costs nothing on WebSocket traffic and little
on hot routes.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import datetime, timezone

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_LOGGER = "signseek.api.requests"


class JsonLineFormatter(logging.Formatter):
    """A log record -> one JSON object a line; `extra={"fields": {...}}` is merged in."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# Query parameters whose values are secrets wherever they appear in a logged URL.
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:[\w.-]*?(?:key|token|secret|password|passwd|auth)[\w.-]*)=)[^&;#\s\"']*")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with secret-looking query values and every known secret value replaced by ***."""
    text = _SECRET_PARAM.sub(r"\1***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and arguments (uvicorn's access line: the path with its query)
    so no secret reaches a log: keys in query strings, and the configured API_KEY anywhere."""

    def __init__(self) -> None:
        super().__init__("signseek-redaction")
        self.secrets: tuple[str, ...] = ()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, self.secrets)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a, self.secrets) if isinstance(a, str) else a for a in record.args)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {k: redact(v, self.secrets) if isinstance(v, str) else v for k, v in fields.items()}
        return True


_REDACTION = RedactingFilter()
REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error", "signseek", "gradio", "httpx", "socketio", "engineio")


def install_redaction(secrets: list[str] | tuple[str, ...] = ()) -> None:
    """Put the one redacting filter on the loggers that may print a URL or a secret (idempotent);
    ``secrets``: values to mask anywhere (the API key)."""
    _REDACTION.secrets = tuple(sorted({*(_REDACTION.secrets or ()), *(s for s in secrets if s)}, key=len,
                                      reverse=True))
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTION not in logger.filters:
            logger.addFilter(_REDACTION)
        for handler in logger.handlers:
            if _REDACTION not in handler.filters:
                handler.addFilter(_REDACTION)


def configure_logging(level: str | int = "INFO", stream=None) -> None:
    """Send the service's loggers (signseek.*) to ``stream`` (stderr) as JSON lines. Idempotent."""
    root = logging.getLogger("signseek")
    if not any(getattr(h, "_signseek_json", False) for h in root.handlers):
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonLineFormatter())
        handler._signseek_json = True  # type: ignore[attr-defined]
        handler.addFilter(_REDACTION)  # child loggers' records (signseek.api...) pass the handler's filters
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level)


class RequestLogMiddleware:
    """Logs every HTTP request as a JSON line once its response has been sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(REQUEST_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            state = scope.get("state") or {}
            fields = {
                "event": "request",
                "method": scope.get("method"),
                "path": scope.get("path"),
                "route": getattr(route, "path", None) or scope.get("path"),
                "status": status,
                "latency_ms": round((time.perf_counter() - start) * 1000, 3),
            }
            stages = state.get("timings") if isinstance(state, dict) else None
            if stages:
                fields["stages_ms"] = stages
            extra = state.get("log_fields") if isinstance(state, dict) else None
            if extra:
                fields.update(extra)
            level = logging.ERROR if status >= 500 else logging.INFO
            self.log.log(level, "%s %s %s", fields["method"], fields["path"], status, extra={"fields": fields})
