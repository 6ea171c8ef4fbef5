"""The write routes' door to the one authorisation rule (`Service.authorize_write`).

Write routes (enrol, delete, export) declare `require_write_access`, so a refused request is
answered before its body is parsed or a clip extracted; the service methods check the same rule
again, whichever door calls them (REST, the Gradio UI, a script). With API_KEY set they need the
header ``X-API-Key: <key>``; READ_ONLY refuses them all; read routes stay open.
"""

from __future__ import annotations

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

API_KEY_HEADER = "X-API-Key"
# auto_error=False: a missing key is answered by the service's rule, in the service's error shape.
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="Needed on write routes when API_KEY is set.")


async def require_write_access(request: Request, given: str | None = Security(api_key_header)) -> str | None:
    """FastAPI dependency: refuse (401 / 403) unless this request may change the reference store;
    returns the key for the service call."""
    request.app.state.service.authorize_write(given)
    return given
