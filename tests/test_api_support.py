"""Helpers for the API tests (no tests here): the fixture bundle, settings, a real uvicorn server.

Servers run `uvicorn --factory demo.api:create_app` in a subprocess on 127.0.0.1 and a free
port, and are stopped by their own PID (SIGTERM, then SIGKILL) within a bounded time.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import httpx
import numpy as np
from servers import free_port, serve

from signseek.landmarks.layouts import canonical_to_flat
from signseek.paths import PROJECT_ROOT, SAMPLE_DATASET
from signseek.settings import Settings

ERROR_KEYS = {"error", "message", "status"}
SIGNS_SAMPLE = SAMPLE_DATASET / "signs_sample.npz"
FINGERSPELLING_SAMPLE = SAMPLE_DATASET / "fingerspelling_sample.npz"
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"


@lru_cache(maxsize=1)
def fixture_bundle_dir() -> Path:
    """The engine engineer's fixture bundle, built once per test process into a temp folder."""
    from fixtures.bundle_factory import build_fixture_bundle

    root = Path(tempfile.mkdtemp(prefix="signseek-api-bundle-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    out = root / "models"
    build_fixture_bundle(out)
    return out


def make_settings(tmp: Path, **overrides) -> Settings:
    """Settings for a test app: the fixture bundle, a private store, no .env file."""
    values = {
        "MODELS_DIR": fixture_bundle_dir(),
        "STORE_PATH": tmp / "enrolled.db",
        "VIDEOS_DIR": tmp / "videos",
        **overrides,
    }
    return Settings(_env_file=None, **values)


def sample_frames(index: int, path: Path = SIGNS_SAMPLE) -> tuple[list[list[float]], str]:
    """One stored sequence as flat frames (lists) and its label."""
    with np.load(path) as data:
        return data["landmarks"][index].tolist(), str(data["label"][index])


def first_index_of(label: str, path: Path = SIGNS_SAMPLE) -> int:
    """The first sequence of ``label``: a reference clip in the fixture bundle."""
    with np.load(path) as data:
        return int(np.flatnonzero(data["label"] == label)[0])


def hand_points(index: int) -> tuple[np.ndarray, str]:
    """A fingerspelling clip's one detected hand per frame, [T, 21, 3], and its label."""
    with np.load(FINGERSPELLING_SAMPLE) as data:
        flat, label = data["landmarks"][index], str(data["label"][index])
    left, right = flat[:, :63].reshape(-1, 21, 3), flat[:, 63:].reshape(-1, 21, 3)
    return (right if np.abs(right).sum() >= np.abs(left).sum() else left), label


def flat(points: np.ndarray, layout: str = "pose_hands") -> list[list[float]]:
    return canonical_to_flat(points, layout).tolist()


def real_video() -> Path | None:
    """A real signing clip: the project's sample videos first, then the shared datasets."""
    for candidate in (
        *sorted((SAMPLE_DATASET / "videos").glob("*.mp4")),
        SHARED_DATASETS / "webcam-clip" / "signer_selfie.mp4",
    ):
        if candidate.is_file():
            return candidate
    return None


@contextmanager
def uvicorn_server(env: dict[str, str], log_path: Path, timeout_s: float = 60.0) -> Iterator[tuple[str, int]]:
    """`uvicorn --factory demo.api:create_app` on 127.0.0.1:<free port>; yields (base URL, PID)."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "demo.api:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with serve(cmd, port, env, log_path, timeout_s) as (url, proc):
        yield url, proc.pid


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for a server subprocess on the fixture bundle (API_KEY cleared unless given)."""
    env = {"MODELS_DIR": str(fixture_bundle_dir()), "STORE_PATH": str(tmp / "enrolled.db"),
           "VIDEOS_DIR": str(tmp / "videos"), "API_KEY": ""}
    env.update(extra)
    return env


def assert_json_error(response: httpx.Response, status: int | tuple[int, ...]) -> dict:
    """A 4xx JSON error in the service's shape (never a 500)."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert ERROR_KEYS <= set(body), body
    assert body["status"] == response.status_code
    assert len(body["message"]) > 10
    return body
