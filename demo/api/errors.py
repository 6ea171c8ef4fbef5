"""One JSON error shape for every failure: {"error": code, "message": what to fix, "status": n}.

HTTP status is chosen here, once. The core and the service raise `signseek.errors.SignSeekError`
(a machine ``code`` and a ``kind``); `STATUS_BY_KIND` turns the kind into a status and the code
and message go out unchanged. `ApiError` is for what only HTTP knows about (a body that is not
JSON, a bad path). Anything unexpected is a genuine bug: it is logged with its traceback and
answered with a JSON 500, never hidden. Unknown routes and wrong methods get the same shape
(404; 405 with ``Allow``), also where the Gradio UI is mounted at `/` (demo/server.py).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from signseek.errors import SignSeekError

log = logging.getLogger("signseek.api")

# SignSeekError.kind -> HTTP status (signseek/errors.py lists the kinds).
STATUS_BY_KIND = {
    "invalid": 422,
    "too_large": 413,
    "not_found": 404,
    "conflict": 409,
    "unauthorized": 401,
    "forbidden": 403,
    "rate_limited": 429,
    "busy": 503,
    "unavailable": 503,
}

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(StarletteHTTPException):
    """A request refused for an HTTP-level reason (not JSON, a bad path), with a code and a fix."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.message = message


class BodyValidationError(ApiError):
    """A JSON body that does not fit its model (raised while the body is read, so it must be an
    HTTPException to get past FastAPI's body reader); answered like RequestValidationError."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__(422, "invalid_input", describe_validation_errors(errors))
        self.errors = errors


# ---- the service's own refusals (domain errors: no HTTP in them) ------------------------------


class ServiceError(SignSeekError):
    """A refusal by the service layer (demo/api/service.py) rather than the core."""


class Invalid(ServiceError):
    code = "invalid_input"
    kind = "invalid"


class TooLarge(ServiceError):
    code = "payload_too_large"
    kind = "too_large"


class NotFound(ServiceError):
    code = "not_found"
    kind = "not_found"


class Unauthorized(ServiceError):
    code = "unauthorized"
    kind = "unauthorized"


class Forbidden(ServiceError):
    code = "forbidden"
    kind = "forbidden"


class Unavailable(ServiceError):
    code = "unavailable"
    kind = "unavailable"


class Busy(ServiceError):
    """The server is at capacity for this kind of work; retry after ``retry_after`` seconds."""

    code = "busy"
    kind = "busy"

    def __init__(self, message: str = "", *, retry_after: int = 10, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = int(retry_after)


class RateLimited(Busy):
    code = "rate_limited"
    kind = "rate_limited"


def status_of(exc: SignSeekError) -> int:
    return STATUS_BY_KIND.get(exc.kind, 422)


def error_body(status: int, code: str, message: str, **extra) -> dict:
    return {"error": code, "message": message, "status": status, **extra}


def error_response(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, **extra), status_code=status, headers=headers)


def describe(exc: Exception) -> tuple[int, str, str, dict | None]:
    """(status, code, message, headers) of any refusal: a SignSeekError or an ApiError."""
    if isinstance(exc, SignSeekError):
        retry = getattr(exc, "retry_after", None)
        return status_of(exc), exc.code, exc.message, ({"Retry-After": str(retry)} if retry else None)
    if isinstance(exc, ApiError):
        return exc.status_code, exc.code, exc.message, exc.headers
    raise TypeError(f"not a refusal: {exc!r}")


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


def validation_response(errors: list[dict]) -> JSONResponse:
    code = "invalid_json" if any(e.get("type") == "json_invalid" for e in errors) else "invalid_input"
    status = 400 if code == "invalid_json" else 422
    details = [{"field": _loc(tuple(e.get("loc", ()))), "problem": e.get("msg", "")} for e in errors[:20]]
    return error_response(status, code, describe_validation_errors(errors), details=details)


def not_found_message(method: str, path: str) -> str:
    return f"no route {method} {path}; see /docs for the routes"


def method_not_allowed_message(method: str, path: str, allowed: list[str]) -> str:
    return f"{path} does not take {method}; it takes {', '.join(allowed)}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignSeekError)
    async def _domain_error(request: Request, exc: SignSeekError) -> JSONResponse:
        status, code, message, headers = describe(exc)
        return error_response(status, code, message, headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if isinstance(exc, BodyValidationError):
            return validation_response(exc.errors)
        return error_response(exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = str(exc.detail)
        headers = dict(exc.headers or {})
        if status == 413:
            message = f"the request body is too large ({message}); send a smaller body"
        elif status == 404 and message == "Not Found":
            message = not_found_message(request.method, request.url.path)
        elif status == 405:
            allowed = [m.strip() for m in headers.get("Allow", headers.get("allow", "")).split(",") if m.strip()]
            message = method_not_allowed_message(request.method, request.url.path, allowed)
        return error_response(status, _CODES.get(status, "error"), message, headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(list(exc.errors()))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A genuine bug: keep the traceback in the log, answer JSON, and keep serving.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", f"unexpected server error ({type(exc).__name__}); it was logged"
        )


class EdgeMiddleware:
    """The error shape at the very edge, for what the routes' handlers never see: a wrong method
    on one of the API's routes is a 405 with ``Allow`` (even though the Gradio UI mounted at `/`
    would otherwise take the request and answer 404), and an error answered by anything mounted
    (Gradio, Socket.IO) in another shape ({"detail": ...}, plain text) is rewritten into
    {"error", "message", "status"}, its status and headers kept."""

    def __init__(self, app, router) -> None:
        self.app = app
        self.router = router

    def _allowed(self, scope) -> list[str] | None:
        """Methods the API's own routes take at this path; None when no route has the path."""
        from starlette.routing import Match, Mount

        # As OpenAPI reads paths, a concrete path (/v1/signs/video) is matched before a templated
        # one (/v1/signs/{name}): when one has this path, only concrete ones count.
        matches = []
        for route in _flat_routes(self.router.routes):
            if isinstance(route, Mount) or not hasattr(route, "methods"):
                continue
            match, _ = route.matches(scope)
            if match != Match.NONE:
                matches.append((match, route))
        concrete = [(m, r) for m, r in matches if not getattr(r, "param_convertors", None)]
        matches = concrete or matches
        if any(m == Match.FULL for m, _ in matches):
            return None  # served as it is
        allowed = {method for _, route in matches for method in (route.methods or ())}
        return sorted(allowed) if allowed else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", "GET"), scope.get("path", "")
        allowed = self._allowed(scope)
        if allowed is not None and method not in allowed:
            response = error_response(405, "method_not_allowed", method_not_allowed_message(method, path, allowed),
                                      {"Allow": ", ".join(allowed)})
            await response(scope, receive, send)
            return
        state: dict = {}

        async def shaped_send(message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    state["pass"] = True
                    await send(message)
                    return
                state["start"], state["body"] = message, b""
                return
            if state.get("pass") or message["type"] != "http.response.body":
                await send(message)
                return
            state["body"] += message.get("body", b"")
            if message.get("more_body"):
                return
            await _send_shaped(state["start"], state["body"], method, path, send)

        await self.app(scope, receive, shaped_send)


def _flat_routes(routes):
    """Every route, those of included routers too (FastAPI keeps them nested)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat_routes(inner.routes)
        else:
            yield route


async def _send_shaped(start: dict, body: bytes, method: str, path: str, send) -> None:
    import json

    status = start["status"]
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and {"error", "message", "status"} <= set(parsed):
        new = body  # already in the service's shape
    else:
        detail = parsed.get("detail") if isinstance(parsed, dict) else None
        text = detail if isinstance(detail, str) else body.decode("utf-8", "replace").strip()[:300]
        if status == 404 and (not text or text == "Not Found"):
            text = not_found_message(method, path)
        elif status == 405 and (not text or text == "Method Not Allowed"):
            text = f"{path} does not take {method}"
        message = text if len(text) > 10 else f"{text or 'error'} ({method} {path})"
        new = json.dumps(error_body(status, _CODES.get(status, "error"), message)).encode()
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(new)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": new})
