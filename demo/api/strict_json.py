"""JSON bodies parsed strictly (and fast): NaN, Infinity and -Infinity are refused.

Python's json module accepts those tokens by default, but they are not JSON (RFC 8259) and a
NaN in a landmark would poison every similarity. We parse with pydantic-core's Rust parser
(`from_json(..., allow_inf_nan=False)`), which refuses them and reads a 64-frame payload
several times faster than the json module. Routes of `StrictJSONRoute` get a request whose
`.json()` does this; bad JSON becomes a 400 saying what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic_core import from_json

from .errors import ApiError

_NON_FINITE = re.compile(rb"(?<![\"\w])(-?Infinity|NaN)(?![\"\w])")


def loads_strict(data: str | bytes):
    """Parse JSON, refusing NaN / Infinity and anything malformed with ApiError(400, invalid_json)."""
    try:
        return from_json(data, allow_inf_nan=False)
    except ValueError as exc:
        raw = data.encode() if isinstance(data, str) else data
        token = _NON_FINITE.search(raw)
        if token:
            raise ApiError(400, "invalid_json", f"the body contains {token.group(1).decode()}, which is not "
                           "valid JSON; send null for a landmark that was not detected") from None
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({exc}); send a JSON object") from None


class StrictJSONRequest(Request):
    async def json(self):
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
