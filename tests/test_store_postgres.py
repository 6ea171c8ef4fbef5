"""Several app processes on one reference store: PostgreSQL shared by two API servers, and
concurrent writer processes killed mid-write (PostgreSQL and SQLite).

PostgreSQL is a real server (Debian's `postgresql`, initdb + postgres on a temp directory, as
an unprivileged user, on 127.0.0.1; tests/clusters.py), one fresh database a test. The API
servers are `uvicorn --factory demo.api:create_app` subprocesses on loopback, stopped by PID.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from clusters import Unavailable, shared_postgres
from test_api_support import first_index_of, fixture_bundle_dir, sample_frames, server_env, uvicorn_server

from signseek.engine import Engine
from signseek.engine.gates import hand_frames
from signseek.landmarks.layouts import flat_to_canonical
from signseek.paths import PROJECT_ROOT
from signseek.store import ReferenceStore

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent


def fresh_database() -> str:
    try:
        server = shared_postgres()
    except Unavailable as exc:
        pytest.skip(f"SKIPPED LOUDLY: {exc}")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


def _held_out_sequences() -> list[dict]:
    """The 4th sample clip of three signs: clips the fixture bundle does not hold as references."""
    return [{"frames": sample_frames(first_index_of(label) + 3)[0]} for label in ("tea", "water", "coffee")]


def _until(condition, timeout_s: float = 20.0) -> float | None:
    """Seconds until ``condition()`` held, or None if it did not within ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if condition():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def test_two_api_processes_share_one_postgres_store(tmp_path):
    url = fresh_database()
    env = server_env(tmp_path, STORE_URL=url, RATE_LIMIT_WRITE="0", RATE_LIMIT_INFERENCE="0")
    with uvicorn_server(env, tmp_path / "a.log") as (a, _), uvicorn_server(env, tmp_path / "b.log") as (b, _), \
            httpx.Client(timeout=30) as http:
        sequences = _held_out_sequences()

        def names(base: str) -> set[str]:
            response = http.get(f"{base}/v1/signs")
            assert response.status_code == 200, response.text
            return {s["name"] for s in response.json()["signs"]}

        def top(base: str) -> dict:
            response = http.post(f"{base}/v1/inference", json=sequences[1])
            assert response.status_code == 200, response.text
            return response.json()["results"][0]

        # "Seen" = listed AND recognised: the listing reads the database, while the engine gets
        # the sign from the listener's refresh (embedding the clips) a moment later.
        enrolled = http.post(f"{a}/v1/signs", json={"name": "akwaaba", "sequences": sequences})
        assert enrolled.status_code == 200, enrolled.text
        seen_after = _until(lambda: "akwaaba" in names(b) and top(b)["label"] == "akwaaba")
        assert seen_after is not None, f"the second server never recognised the sign the first enrolled: {top(b)}"
        assert top(b)["raw_similarity"] == pytest.approx(1.0, abs=1e-4)

        deleted = http.delete(f"{b}/v1/signs/akwaaba")
        assert deleted.status_code == 200, deleted.text
        gone_after = _until(lambda: "akwaaba" not in names(a) and top(a)["label"] != "akwaaba")
        assert gone_after is not None, "the first server still lists or recognises the sign the second deleted"
        after = http.post(f"{a}/v1/inference", json=sequences[1]).json()
        assert "akwaaba" not in [r["label"] for r in after["results"]]
        print(f"seen by the other server after {seen_after:.3f} s (enrol), {gone_after:.3f} s (delete), polled")


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_writer_processes_killed_mid_write_lose_nothing(backend, tmp_path):
    """Three processes enrol signs of 12 clips side by side and are SIGKILLed while writing:
    every sign a writer reported is there whole, no sign is half there, and the store works on."""
    location = fresh_database() if backend == "postgresql" else str(tmp_path / "shared.db")
    engine = Engine.from_bundle(fixture_bundle_dir(), _env_file=None)
    ReferenceStore(engine, location, watch=False).close()  # create the schema once, before the race
    with np.load(PROJECT_ROOT / "sample_dataset" / "signs_sample.npz") as data:
        points = [flat_to_canonical(f, "pose_hands")[0] for f in data["landmarks"]]
    points = [p for p in points if hand_frames(p) > 0][:12]
    clips_path = tmp_path / "clips.npz"
    np.savez(clips_path, **{f"c{i:02d}": p for i, p in enumerate(points)})
    writers, logs = [], [tmp_path / f"writer{k}.log" for k in range(3)]
    for k, log_path in enumerate(logs):
        with open(log_path, "w") as log:
            writers.append(subprocess.Popen(
                [sys.executable, str(HERE / "store_writer.py"), str(fixture_bundle_dir()), location,
                 str(clips_path), f"w{k}", "1000"], cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT))

    def reported() -> list[set[str]]:
        return [{line.split()[1] for line in path.read_text().splitlines() if line.startswith("enrolled ")}
                for path in logs]

    try:
        ok = _until(lambda: all(len(r) >= 2 for r in reported()) or any(w.poll() is not None for w in writers),
                    timeout_s=240)
        assert ok is not None and all(w.poll() is None for w in writers), [x.read_text()[-2000:] for x in logs]
        for w in writers:
            w.send_signal(signal.SIGKILL)  # most likely inside a transaction: each writes all the time
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
            w.wait(timeout=30)

    store = ReferenceStore(Engine.from_bundle(fixture_bundle_dir(), _env_file=None), location, watch=False)
    try:
        counts = {s.label: s.n_clips for s in store.list_signs()}
        assert set(counts.values()) == {12}, counts  # no sign half enrolled
        assert len(store.list_clips()) == 12 * len(counts)
        for k, names in enumerate(reported()):
            assert names <= set(counts), f"writer {k} reported {sorted(names - set(counts))} but they are gone"
        assert len(store.enrol("after-the-crash", [store.clip_landmarks(next(iter(counts)))] * 3)) == 3
    finally:
        store.close()
