"""One JSON error shape for every failure: {"error": code, "message": what to fix, "status": n}.

Bad input raises `ApiError` (a 4xx with a message that says what to fix). Anything unexpected
is a genuine bug: it is logged with its traceback and answered with a JSON 500, never hidden.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("signseek.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    503: "unavailable",
}


class ApiError(StarletteHTTPException):
    """A request SignSeek refuses, with a machine-readable code and a message naming the fix."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(status_code=status_code, detail=message)
        self.code = code
        self.message = message


def error_body(status: int, code: str, message: str, **extra) -> dict:
    return {"error": code, "message": message, "status": status, **extra}


def error_response(status: int, code: str, message: str, **extra) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, **extra), status_code=status)


def _loc(loc: tuple) -> str:
    """('body', 'frames', 3, 7) -> 'frames[3][7]'."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header", "form"):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def describe_validation_errors(errors: list[dict], limit: int = 5) -> str:
    """Pydantic errors -> one readable line: 'frames[3][7]: Input should be a finite number; ...'."""
    parts = []
    for err in errors[:limit]:
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx", {}).get("error", "")
            msg = f"the body is not valid JSON ({ctx})" if ctx else "the body is not valid JSON"
        parts.append(f"{_loc(tuple(err.get('loc', ())))}: {msg}")
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = str(exc.detail)
        if status == 413:
            message = f"the request body is too large ({message}); send a smaller body"
        elif status == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /docs for the routes"
        return error_response(status, _CODES.get(status, "error"), message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        code = "invalid_json" if any(e.get("type") == "json_invalid" for e in errors) else "invalid_input"
        status = 400 if code == "invalid_json" else 422
        details = [
            {"field": _loc(tuple(e.get("loc", ()))), "problem": e.get("msg", "")} for e in errors[:20]
        ]
        return error_response(status, code, describe_validation_errors(errors), details=details)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A genuine bug: keep the traceback in the log, answer JSON, and keep serving.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", f"unexpected server error ({type(exc).__name__}); it was logged"
        )
