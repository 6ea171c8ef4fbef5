"""Run a real server process on 127.0.0.1 for a test or a benchmark, and stop it by its PID.

Not a test module: imported by tests/test_api_support.py, tests/demo_support.py and
benchmarks/bench_api.py (as `tests.servers`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM this one process (uvicorn shuts down cleanly), SIGKILL it if it does not stop."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


@contextmanager
def serve(
    cmd: Sequence[str],
    port: int,
    env: dict[str, str],
    log_path: Path,
    timeout_s: float = 60.0,
    ready_paths: Sequence[str] = ("/healthz",),
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start ``cmd`` (which listens on ``port``), wait until every ``ready_paths`` answers 200,
    yield (base URL, process); stop it by its PID afterwards, within bounded time."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(list(cmd), cwd=PROJECT_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers(url, ready_paths):
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[-1]!s} exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer within {timeout_s:.0f} s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.25)
        yield url, proc
    finally:
        stop_process(proc)


def _answers(url: str, paths: Sequence[str]) -> bool:
    try:
        return all(httpx.get(url + path, timeout=5).status_code == 200 for path in paths)
    except httpx.HTTPError:
        return False
