"""The browser client: a page that extracts landmarks on the device and posts them to the API.

    from demo.client import mount_client
    mount_client(app)          # GET /client (the page), /client/config.json, /client/static/...

The page (demo/static/client/) is plain HTML and JavaScript with no build step. It runs
MediaPipe Holistic in the browser (the `@mediapipe/holistic` npm package, vendored in
demo/static/vendor/mediapipe-holistic/ with its license, so it works offline), keeps a sliding
window of landmark frames from the webcam (or from a clip file, frame by frame), posts the
GhSL guide's payload `{frames, top_k, layout, metadata: {fps, source}}` to `POST /v1/inference`
every ~1.5 s and shows the ranked `results` with accepted / rejected and the reason. The video
never leaves the device; only landmarks do.

`/client/config.json` tells the page what the server expects, from the same code the server
runs, so the page cannot drift from it: the flat layouts and their sizes
(`signseek.landmarks.layouts`), which layout carries everything the bundle's features read
(face points or not), the frame shape clip landmarks are expressed in (the 16:9 letterbox of
`signseek.landmarks.extract`), and the plain words for each rejection reason
(`signseek.ranker.Reason`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from signseek.landmarks import extract as _extract
from signseek.landmarks.layouts import LAYOUTS
from signseek.ranker import Reason

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE = STATIC_DIR / "client" / "index.html"
HOLISTIC_DIR = STATIC_DIR / "vendor" / "mediapipe-holistic"
# The frame shape the server's own clip extraction expresses landmarks in (16:9, see
# signseek.landmarks.extract.letterbox_points); None where the extraction keeps each clip's shape.
CANONICAL_ASPECT = getattr(_extract, "CANONICAL_ASPECT", None)
# What the page fetches from HOLISTIC_DIR (holistic.js asks for the rest by name). The non-SIMD
# wasm build is not shipped: every current browser runs WebAssembly SIMD, and the page says so
# plainly when one does not.
HOLISTIC_FILES = (
    "holistic.js",
    "holistic.binarypb",
    "holistic_solution_packed_assets_loader.js",
    "holistic_solution_packed_assets.data",
    "holistic_solution_simd_wasm_bin.js",
    "holistic_solution_simd_wasm_bin.wasm",
    "pose_landmark_full.tflite",
)


def client_config(request: Request) -> dict:
    """What the page needs to send exactly what the server's own extraction would give."""
    settings = request.app.state.settings
    service = request.app.state.service
    feature_config = service.engine.feature_config
    reads_face = bool(getattr(feature_config, "face_points", ()))
    return {
        "inference_url": "/v1/inference",
        # The smallest layout that carries everything the model reads: the shipped bundle reads
        # pose and hands only, so the 258-value layout loses nothing and is 6x smaller than 1662.
        "layout": "holistic" if reads_face else "pose_hands",
        "layouts": {name: layout.size for name, layout in LAYOUTS.items() if name in ("canonical", "holistic", "pose_hands")},
        # Clip landmarks are expressed on a frame of this aspect (padded, in coordinates), so a
        # portrait phone and a landscape webcam give the same skeleton (extract.letterbox_points).
        "canonical_aspect": CANONICAL_ASPECT,
        "top_k": int(settings.DEFAULT_TOP_K),
        "max_frames": int(settings.MAX_FRAMES),
        "model_fps": float(getattr(settings, "MODEL_FPS", 0.0) or 0.0),
        "seq_len": int(feature_config.seq_len),
        "reasons": {reason.value: reason.explain for reason in Reason},
        "no_sign_reasons": [reason.value for reason in Reason if reason.no_sign],
        "model_version": service.model_version,
        "holistic": {"base": "/client/static/vendor/mediapipe-holistic/", "model_complexity": 1,
                     "refine_face_landmarks": False, "smooth_landmarks": True},
    }


def mount_client(app: FastAPI) -> None:
    """Serve the browser client on ``app``: GET /client, /client/config.json, /client/static/*."""
    missing = [name for name in HOLISTIC_FILES if not (HOLISTIC_DIR / name).is_file()]
    if missing or not PAGE.is_file():
        raise FileNotFoundError(
            f"the browser client's files are missing from {STATIC_DIR}: {', '.join(missing) or PAGE.name}; "
            "they are committed to the repository (a clone without them is incomplete)"
        )

    @app.get("/client", include_in_schema=False)
    def client_page() -> FileResponse:
        # no-cache: the page is small and must match this server's config.json after an update.
        return FileResponse(PAGE, media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/client/", include_in_schema=False)
    def client_page_slash(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse("/client" + (f"?{query}" if query else ""))

    @app.get("/client/config.json", tags=["client"], summary="What the browser client needs to know")
    def client_config_route(request: Request) -> JSONResponse:
        return JSONResponse(client_config(request))

    app.mount("/client/static", StaticFiles(directory=STATIC_DIR), name="client-static")


__all__ = ["HOLISTIC_FILES", "STATIC_DIR", "client_config", "mount_client"]
