"""`python app.py` with API_WORKERS=2: one front process (UI, Socket.IO, every route) forwards
POST /v1/inference to two API worker processes; a sign enrolled through the front is
recognised by the workers; when the workers die the front answers itself; when the front dies
the workers stop."""

from __future__ import annotations

import signal
import time

import httpx
import psutil
import pytest
from demo_support import running_app
from test_api_support import first_index_of, sample_frames, server_env

pytestmark = pytest.mark.slow


def _until(condition, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return None


def _app_process(port: int) -> psutil.Process:
    """The app.py child of this process that listens on ``port``: other app.py children may run (the
    session's shared demo server, tests/conftest.py `demo_server`, once a demo test has run first)."""
    for child in psutil.Process().children():
        try:
            if not any(part.endswith("app.py") for part in child.cmdline()):
                continue
            listening = {c.laddr.port for c in child.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:  # a child that ended meanwhile
            continue
        if port in listening:
            return child
    raise AssertionError(f"no app.py child process listening on port {port}")


def test_workers_serve_inference_and_the_front_keeps_the_rest(tmp_path):
    held_out = [{"frames": sample_frames(first_index_of(label) + 3)[0]} for label in ("tea", "water", "coffee")]
    env = {**server_env(tmp_path), "API_WORKERS": "2", "RATE_LIMIT_WRITE": "0"}
    with running_app(env, tmp_path / "app.log") as url, httpx.Client(base_url=url, timeout=60) as http:
        front = _app_process(int(url.rsplit(":", 1)[1]))

        def via_worker():
            response = http.post("/v1/inference", json=held_out[0])
            assert response.status_code == 200, response.text
            return response.headers.get("x-signseek-served-by") == "api-worker"

        assert _until(via_worker, 180), (tmp_path / "app.log").read_text()[-3000:]
        pool = [p for p in front.children() if "demo.api:create_app" in " ".join(p.cmdline())]
        assert len(pool) == 1 and len(pool[0].children()) >= 2  # uvicorn's supervisor and its 2 workers

        # The UI and everything but /v1/inference are the front's.
        assert http.get("/config").status_code == 200
        health = http.get("/healthz")
        assert health.status_code == 200 and "x-signseek-served-by" not in health.headers

        # Enrolled through the front, recognised by a worker (the shared SQLite store).
        enrolled = http.post("/v1/signs", json={"name": "akwaaba", "sequences": held_out})
        assert enrolled.status_code == 200, enrolled.text
        answer = http.post("/v1/inference", json=held_out[1])
        assert answer.headers.get("x-signseek-served-by") == "api-worker"
        assert answer.json()["results"][0]["label"] == "akwaaba", answer.json()

        # Workers killed: the front answers /v1/inference itself (uvicorn's supervisor restarts them).
        workers = pool[0].children()
        for p in workers:
            p.send_signal(signal.SIGKILL)
        psutil.wait_procs(workers, timeout=10)
        alone = http.post("/v1/inference", json=held_out[1])
        assert alone.status_code == 200 and alone.json()["results"][0]["label"] == "akwaaba"

        # The front dies without a clean shutdown: the pool notices and stops (no orphans).
        family = [pool[0], *pool[0].children(recursive=True)]
        front.send_signal(signal.SIGKILL)
        _, alive = psutil.wait_procs(family, timeout=30)
        assert alive == [], [p.cmdline()[:4] for p in alive]
