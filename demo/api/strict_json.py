"""JSON bodies: size-capped, parsed strictly, off the event loop, a bounded number at a time.

* The body is read only up to its cap (`limits.GuardMiddleware`: MAX_JSON_MB for the JSON
  routes, a declared Content-Length over it is refused before a byte is read).
* NaN, Infinity and -Infinity are refused: they are not JSON (RFC 8259), and a NaN in a
  landmark would poison every similarity. A 1e999 that overflows to inf is refused like them.
* Parsing and validation run in one pass (pydantic-core's Rust parser straight into the
  route's body model, `Model.model_validate_json`). A body of 1 MiB or more is parsed in a
  worker thread, at most JSON_PARSE_CONCURRENCY (default 1) at once with a short queue; more
  get 503 + Retry-After. Parsing holds the GIL for its whole length whatever thread it runs in
  (~0.3 s for 9 MB here), so the bound on concurrent parses and the size cap are what keep
  `/healthz` answering while big bodies arrive.

Routes of `StrictJSONRoute` get a request whose `.json()` returns the validated body model, which
FastAPI then accepts as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from anyio import to_thread
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from .errors import ApiError, BodyValidationError

SMALL_BODY = 1 << 20  # bodies under 1 MiB (a 60-frame clip of 1662 values is ~0.6 MB) parse inline
_NON_FINITE = re.compile(rb"(?<![\"\w])(-?Infinity|NaN)(?![\"\w])")


def _non_finite_token(raw: str | bytes) -> str | None:
    token = _NON_FINITE.search(raw.encode() if isinstance(raw, str) else raw)
    return token.group(1).decode() if token else None


def _non_finite_error(token: str) -> ApiError:
    return ApiError(400, "invalid_json", f"the body contains {token}, which is not valid JSON; send null for "
                    "a landmark that was not detected")


def loads_strict(data: str | bytes):
    """Parse JSON, refusing NaN / Infinity and anything malformed with ApiError(400, invalid_json)."""
    try:
        return from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        token = _non_finite_token(data)
        if token:
            raise _non_finite_error(token) from None
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({exc}); send a JSON object") from None


def validate_json(model: type[BaseModel], body: bytes) -> BaseModel:
    """``body`` -> a validated ``model`` in one pass; JSON and validation errors as the API answers them."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "finite_number" for e in errors):
            token = _non_finite_token(body)
            if token:
                raise _non_finite_error(token) from None
        if any(e["type"] == "json_invalid" for e in errors):
            if not body.strip():
                raise ApiError(400, "invalid_json", "the body is empty; send a JSON object") from None
            detail = errors[0].get("msg", "").removeprefix("Invalid JSON: ")
            raise ApiError(400, "invalid_json", f"the body is not valid JSON ({detail}); send a JSON object") from None
        raise BodyValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


class _ParsedJSONRequest(Request):
    def __init__(self, scope, receive, model: type[BaseModel]) -> None:
        super().__init__(scope, receive)
        self._model = model

    async def json(self):
        if not hasattr(self, "_json"):
            body = await self.body()
            if len(body) < SMALL_BODY:  # a few ms of parsing: no thread hop, no queue
                self._json = validate_json(self._model, body)
            else:
                queue = self.app.state.service.json_queue
                ticket = queue.admit()  # 503 + Retry-After when every parse slot and queue place is taken
                self._json = await to_thread.run_sync(ticket.run, validate_json, self._model, body,
                                                      limiter=queue.limiter)
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body (a pydantic model) is parsed as the module says."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        params = self.dependant.body_params
        model = params[0].field_info.annotation if len(params) == 1 else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return handler  # multipart routes: nothing to parse here

        async def strict_handler(request: Request) -> Response:
            return await handler(_ParsedJSONRequest(request.scope, request.receive, model))

        return strict_handler
