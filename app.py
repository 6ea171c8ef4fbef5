"""SignSeek demo: the Gradio UI and the REST / WebSocket API in one process.

    python app.py                  # http://0.0.0.0:$PORT (PORT defaults to 7860)
    PORT=8080 python app.py
    python app.py --share          # also ask Gradio's share server for a public *.gradio.live link
    python app.py --host 127.0.0.1 --port 9000

The page is at `/`, the API at `/healthz`, `/v1/...` (OpenAPI docs at `/docs`). Settings come from
environment variables (MODELS_DIR, SIM_THRESHOLD, ...; see signseek/settings.py). Works unchanged
as a Hugging Face Space (sdk: gradio, app_file: app.py) and on Render/Heroku (Procfile). When a
`/data` folder is writable (a Space with persistent storage) and STORE_PATH / FEEDBACK_DIR are not
set, enrolled signs and feedback flags are kept there, so they survive a restart.
"""

from __future__ import annotations

import argparse
import os
import secrets
import threading
import time
from pathlib import Path

# Privacy and offline use by default: no Gradio telemetry, no Hub look-ups.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the SignSeek demo (Gradio UI + API).")
    parser.add_argument("--host", default=os.environ.get("HOST") or os.environ.get("GRADIO_SERVER_NAME")
                        or "0.0.0.0", help="interface to bind (default $HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or os.environ.get(
        "GRADIO_SERVER_PORT") or 7860), help="port (default $PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link too")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"))
    parser.add_argument("--workers", type=int, default=None, help="processes serving POST /v1/inference beside "
                        "this one, which serves the UI and the rest (default $API_WORKERS or 1; demo/workers.py)")
    return parser.parse_args(argv)


PERSISTENT_DIR = Path("/data")  # a Hugging Face Space's persistent storage, when it is attached


def use_persistent_storage(env: dict | None = None, data_dir: Path = PERSISTENT_DIR) -> dict[str, str]:
    """Point STORE_PATH and FEEDBACK_DIR under ``data_dir`` when it is a writable folder and they
    are not set already (explicit settings always win). Returns what was set."""
    env = os.environ if env is None else env
    if not (data_dir.is_dir() and os.access(data_dir, os.W_OK)):
        return {}
    wanted = {"STORE_PATH": str(data_dir / "signseek" / "enrolled.db"),
              "FEEDBACK_DIR": str(data_dir / "signseek" / "feedback")}
    chosen = {name: value for name, value in wanted.items() if not env.get(name)}
    env.update(chosen)
    return chosen


def _open_share_link(port: int) -> None:
    """Gradio's share tunnel to the local server; needs internet, so failure is only a message."""
    from gradio import networking

    try:
        url = networking.setup_tunnel("127.0.0.1", port, secrets.token_urlsafe(32), None, None)
        print(f"* Public link (expires in a week): {url}", flush=True)
    except Exception as exc:  # offline, firewall, share server down
        print(f"* Could not create a share link ({exc}); the local server keeps running.", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for name, value in use_persistent_storage().items():
        print(f"* {name}={value} (persistent storage)", flush=True)
    import uvicorn

    from demo.server import create_server
    from signseek.bundle import BundleError

    try:
        app = create_server()
    except BundleError as exc:  # no bundle yet, or one that fails its manifest: say what to do
        raise SystemExit(f"SignSeek cannot start: {exc}\nTrain and export a bundle into models/ "
                         "(python -m trainer ...) or point MODELS_DIR at one.") from None
    from demo.workers import with_api_workers, workers_from_env

    workers = args.workers or workers_from_env()
    if workers > 1:  # REST inference on worker processes; the UI, Socket.IO and the rest stay here
        app = with_api_workers(app, workers, log_level=args.log_level)
        print(f"* {workers} API worker processes serve POST /v1/inference", flush=True)
    # A short graceful shutdown: open Gradio event streams would otherwise hold a restart up.
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    if args.share:
        def share_when_up() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.2)
            if server.started:
                _open_share_link(args.port)

        threading.Thread(target=share_when_up, daemon=True).start()
    shown = "127.0.0.1" if args.host == "0.0.0.0" else args.host
    print(f"* SignSeek demo on http://{shown}:{args.port}/  (API docs: /docs)", flush=True)
    server.run()


if __name__ == "__main__":
    main()
