"""`python app.py --workers N`: N processes serve POST /v1/inference beside the one UI process.

The Gradio UI keeps its queue and sessions in memory, and Socket.IO and the WebSocket stream
keep theirs per connection, so all of them live in ONE process: the front, on $PORT, which
serves every route as before. With ``--workers N`` (or API_WORKERS=N) the front also starts
N API worker processes (``uvicorn --factory demo.api:create_app --workers N`` on a loopback
port, the same settings and the same reference store) and forwards the stateless hot path,
``POST /v1/inference``, to them, streaming the body both ways. Everything else, enrolment
included, stays in the front; the workers see a sign the front enrolled on their next request
(SQLite: the database files changed) or at once (PostgreSQL: NOTIFY).

    front = with_api_workers(app, workers=2)       # an ASGI app; run it with uvicorn
    ...
    front.stop()                                   # also at exit, and when the front dies

The workers get the client's address in X-Forwarded-For (uvicorn trusts it from 127.0.0.1), so
their per-client rate limits count real clients; each worker process counts on its own, as
with ``uvicorn --workers``. Until the workers answer /healthz, and whenever they cannot be
reached, the front answers /v1/inference itself: a worker pool that is starting, crashed or
killed costs throughput, never an error.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

log = logging.getLogger("signseek.workers")

FORWARDED = frozenset({("POST", "/v1/inference")})
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
                        b"proxy-authorization", b"proxy-authenticate", b"host"})


def workers_from_env() -> int:
    """The API_WORKERS setting (environment or .env). Not WEB_CONCURRENCY: Heroku's buildpack sets
    that by dyno size, and each worker holds its own engine, so the count is chosen against memory."""
    from signseek.settings import Settings

    return Settings().API_WORKERS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child before exec (Linux): SIGTERM when the front dies
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ApiWorkers:
    """``uvicorn --factory demo.api:create_app --workers N`` on 127.0.0.1:<port>, stopped by PID."""

    def __init__(self, workers: int, log_level: str = "warning", port: int | None = None) -> None:
        self.workers = workers
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "demo.api:create_app", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(workers), "--log-level", log_level, "--no-access-log",
               "--timeout-graceful-shutdown", "5"]
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.process = subprocess.Popen(cmd, env=os.environ.copy(), preexec_fn=preexec)
        atexit.register(self.stop)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # uvicorn's supervisor stops its workers, then itself
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


class ForwardToWorkers:
    """ASGI middleware of the front: forwards FORWARDED routes to the workers once they are up."""

    def __init__(self, app, workers: ApiWorkers, ready_timeout_s: float = 300.0) -> None:
        self.app = app
        self.workers = workers
        self.ready = threading.Event()
        self._client = None
        self._loop = None
        threading.Thread(target=self._wait_ready, args=(ready_timeout_s,), name="api-workers-ready",
                         daemon=True).start()

    def stop(self) -> None:
        self.ready.clear()
        self.workers.stop()

    def _wait_ready(self, timeout_s: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.workers.alive():
            try:
                if httpx.get(self.workers.url + "/healthz", timeout=2).status_code == 200:
                    self.ready.set()
                    log.info("%d API worker processes serve POST /v1/inference (%s)", self.workers.workers,
                             self.workers.url)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        log.warning("the API worker processes did not come up; this process serves /v1/inference alone")

    def _http(self):
        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            self._client = httpx.AsyncClient(base_url=self.workers.url, timeout=httpx.Timeout(60.0, connect=2.0),
                                             limits=limits)
            self._loop = loop
        return self._client

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or (scope["method"], scope["path"]) not in FORWARDED
                or not self.ready.is_set()):
            return await self.app(scope, receive, send)
        import httpx

        client = self._http()
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        peer = scope.get("client")
        if peer:
            headers.append((b"x-forwarded-for", str(peer[0]).encode()))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        started = False

        async def body():
            nonlocal started
            more = True
            while more:
                message = await receive()
                started = True
                if message["type"] == "http.disconnect":
                    return
                more = message.get("more_body", False)
                yield message.get("body", b"")

        path = scope["path"] + (f"?{scope['query_string'].decode()}" if scope.get("query_string") else "")
        request = client.build_request("POST", path, headers=headers, content=body())
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            if not started:  # nothing read yet: answer here, the body is still ours to read
                log.warning("API workers unreachable (%s); answering here", type(exc).__name__)
                if not self.workers.alive():
                    self.ready.clear()
                return await self.app(scope, receive, send)
            await _send_json(send, 502, {"error": "unavailable", "status": 502,
                                         "message": "the inference worker failed while reading the request; try again"})
            return
        try:
            headers = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [*headers, (b"x-signseek-served-by", b"api-worker")]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _send_json(send, status: int, body: dict) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def with_api_workers(app, workers: int, log_level: str = "warning") -> ForwardToWorkers:
    """``app`` (the front: UI, Socket.IO, every route) with POST /v1/inference forwarded to
    ``workers`` API processes started now."""
    return ForwardToWorkers(app, ApiWorkers(workers, log_level=log_level))
