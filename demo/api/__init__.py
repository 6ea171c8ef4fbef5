"""SignSeek's HTTP service: `create_app(settings=None) -> FastAPI`.

    uvicorn --factory demo.api:create_app --host 127.0.0.1 --port 8000
"""

from .app import create_app

__all__ = ["create_app"]
