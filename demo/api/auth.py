"""Optional API key for the write routes (enrol, delete, export).

When API_KEY is set (environment or settings), those routes need the header
``X-API-Key: <key>``; read routes stay open. When it is unset, every route is open.
"""

from __future__ import annotations

import secrets

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from .errors import ApiError

API_KEY_HEADER = "X-API-Key"
# auto_error=False: we answer a missing key ourselves, in the service's error shape.
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Needed on write routes when API_KEY is set.")


async def require_api_key(request: Request, given: str | None = Security(api_key_header)) -> None:
    """FastAPI dependency: refuse the request (401) unless it carries the configured key."""
    expected: str | None = request.app.state.api_key
    if not expected:
        return
    if not given:
        raise ApiError(401, "unauthorized", f"this route changes the reference store: send the {API_KEY_HEADER} header")
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", f"the {API_KEY_HEADER} header does not match the server's API_KEY")
