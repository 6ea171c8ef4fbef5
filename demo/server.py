"""One ASGI app: the FastAPI service (REST, WebSocket, Socket.IO) with the Gradio UI mounted at `/`.

    from demo.server import create_server
    app = create_server()          # serve with uvicorn; `python app.py` does that

The API's routes are registered first, so `/healthz`, `/v1/...` and `/videos/...` reach FastAPI;
everything else (the page, `/gradio_api/...`) falls through to the Gradio mount. The API's edge
middleware still sees every request: a wrong method on an API route is a 405 with Allow, and an
error Gradio answers in its own shape is rewritten into the service's. The Gradio endpoints that
write (enrol_sign, delete_sign) call the Service, whose one rule needs the key when API_KEY is set.
UI and API
share one engine, one reference store and one settings object: a sign enrolled in the UI is
recognised by the API at once, and the other way round.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from demo.client import mount_client  # noqa: E402
from demo.render import render_dir  # noqa: E402
from demo.ui import DemoBackend, build_ui  # noqa: E402
from demo.ui.theme import CSS, JS, THEME  # noqa: E402


def _import_pyplot_now() -> None:
    """Import matplotlib.pyplot once, here in the main thread. Gradio wraps every request in
    matplotlib.get_backend()/use() (its MatplotlibBackendMananger, in the event loop), which imports
    pyplot on the first request; MediaPipe imports it too (mediapipe.python.solutions.drawing_utils,
    first imported lazily by the warm-up thread or an upload's handler). Two threads importing pyplot
    for the first time at once can leave one of them a partially initialised module: CI saw
    "partially initialized module 'matplotlib.pyplot' has no attribute 'switch_backend'" on /random_sample."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # a server draws nothing on screen
        import matplotlib.pyplot  # noqa: F401
    except ImportError:  # matplotlib comes with MediaPipe; without it there is nothing to race on
        pass


def create_server(api_app: FastAPI | None = None, backend: DemoBackend | None = None) -> FastAPI:
    """The API app from `demo.api.create_app()` with the Gradio Blocks mounted at `/`."""
    if api_app is None:
        from demo.api import create_app

        api_app = create_app()
    if backend is None:
        backend = DemoBackend.from_api_app(api_app)
    _import_pyplot_now()  # before build_ui starts the warm-up thread and before any request
    blocks = build_ui(backend)
    mount_client(api_app)  # GET /client: the browser client, landmarks on the device (before Gradio's `/`)
    allowed = [str(p) for p in (backend.videos_dir, render_dir()) if p is not None]
    return gr.mount_gradio_app(
        api_app,
        blocks,
        path="/",
        footer_links=["api", "settings"],
        allowed_paths=allowed,
        max_file_size=f"{int(backend.max_upload_mb)}mb",
        theme=THEME,
        css=CSS,
        js=JS,  # hides Gradio's "Video not playable" toast: the banner answers that (demo/ui/theme.py)
        show_error=True,
        ssr_mode=False,
    )
