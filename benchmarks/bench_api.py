"""Load test of POST /v1/inference: uvicorn on 127.0.0.1 + locust headless, bounded in time.

    python -m benchmarks api                              # 16 users, 60 s, check the targets
    python -m benchmarks api -- --update-md               # and write the API section of BENCHMARKS.md
    python -m benchmarks.bench_api --users 16 --duration 60 --workers 1 --models models

Starts `uvicorn --factory demo.api:create_app` (its own process, stopped by PID), waits for
/healthz, warms up, then runs `locust -f benchmarks/locustfile.py --headless` against it
(64-frame payloads of 258 values a frame) with a hard timeout of duration + 60 s. Targets:
>= 100 requests/s, p99 <= 250 ms, zero failures. Uses the trained bundle in models/ when
there is one, else the tests' fixture bundle (and says so).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import psutil

from benchmarks.report import MD_PATH, update_section
from signseek.paths import MODELS_DIR, PROJECT_ROOT, SAMPLE_DATASET
from tests.servers import free_port, serve


def pick_models(models: str | None) -> tuple[Path, str]:
    """(bundle dir, description): the given one, models/ when it holds a bundle, else the
    tests' fixture bundle (a random-projection encoder over real sample references)."""
    if models:
        return Path(models), f"bundle {models}"
    if (MODELS_DIR / "export_manifest.json").is_file():
        return MODELS_DIR, "the trained bundle in models/"
    sys.path.insert(0, str(PROJECT_ROOT / "tests"))
    from fixtures.bundle_factory import build_fixture_bundle

    out = Path(tempfile.mkdtemp(prefix="signseek-bench-")) / "models"
    build_fixture_bundle(out)
    return out, "the test fixture bundle (models/ has no trained bundle yet)"


@contextmanager
def api_server(models_dir: Path, log_path: Path, workers: int = 1, timeout_s: float = 90.0,
               extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    # One load generator is one client: its per-client rate limit is lifted for the load test.
    env = {"MODELS_DIR": str(models_dir), "API_KEY": "", "RATE_LIMIT_INFERENCE": "0",
           "STORE_PATH": str(log_path.parent / "bench-enrolled.db"), **(extra_env or {})}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "demo.api:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    with serve(cmd, port, env, log_path, timeout_s) as (url, proc):
        yield url, proc


# ---------------------------------------------------------------------------- payloads

SAMPLES = SAMPLE_DATASET / "signs_sample.npz"
N_FRAMES = 64
N_PAYLOADS = 16


def build_payloads(n: int = N_PAYLOADS, n_frames: int = N_FRAMES, seed: int = 0) -> list[bytes]:
    """``n`` JSON bodies of ``n_frames`` frames x 258 values, from real signing sequences."""
    with np.load(SAMPLES) as data:
        landmarks = data["landmarks"]
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(n):
        picks = rng.choice(len(landmarks), size=-(-n_frames // landmarks.shape[1]), replace=False)
        frames = np.concatenate([landmarks[i] for i in picks])[:n_frames]
        bodies.append(json.dumps({"frames": np.round(frames, 6).tolist(), "layout": "pose_hands"}).encode())
    return bodies


HEADERS = {"Content-Type": "application/json"}


# ---------------------------------------------------------------------------- the load test

HERE = Path(__file__).resolve().parent
MD_START, MD_END = "<!-- api-load:start -->", "<!-- api-load:end -->"
TARGETS = {"rps": 100.0, "p99_ms": 250.0, "failures": 0}


def _aggregated_row(csv_path: Path) -> dict:
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    row = next(r for r in rows if r["Name"] == "Aggregated")
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "rps": round(float(row["Requests/s"]), 1),
        "median_ms": float(row["Median Response Time"]),
        "mean_ms": round(float(row["Average Response Time"]), 1),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
        "max_ms": round(float(row["Max Response Time"]), 1),
    }


def run(users: int, duration_s: int, workers: int, models: str | None, rps_per_user: float = 0.0) -> dict:
    models_dir, models_note = pick_models(models)
    work = Path(tempfile.mkdtemp(prefix="signseek-bench-api-"))
    with api_server(models_dir, work / "server.log", workers=workers) as (url, proc):
        with httpx.Client(base_url=url, timeout=30) as http:  # warm-up: first calls pay lazy init
            for body in build_payloads()[:8]:  # the same payloads the users send
                http.post("/v1/inference", content=body, headers=HEADERS).raise_for_status()
        rss_before = _tree_rss(proc.pid)
        prefix = work / "locust"
        cmd = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
               "-u", str(users), "-r", str(users), "-t", f"{duration_s}s", "--host", url,
               "--csv", str(prefix), "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING"]
        env = {**os.environ, "LOCUST_RPS_PER_USER": str(rps_per_user)}
        started = time.monotonic()
        done = subprocess.run(cmd, cwd=HERE.parent, env=env, capture_output=True, text=True,
                              timeout=duration_s + 60)
        wall = time.monotonic() - started
        rss_after = _tree_rss(proc.pid)
        if not (prefix.parent / "locust_stats.csv").is_file():
            raise RuntimeError(f"locust wrote no stats (exit {done.returncode}):\n{done.stderr[-3000:]}")
    stats = _aggregated_row(prefix.parent / "locust_stats.csv")
    result = {
        **stats,
        "users": users, "duration_s": duration_s, "workers": workers, "wall_s": round(wall, 1),
        "rps_per_user": rps_per_user or None,
        "server_rss_mib": [round(rss_before / 2**20, 1), round(rss_after / 2**20, 1)],
        "payload_kb": round(float(np.mean([len(b) for b in build_payloads()])) / 1000),
        "models": models_note, "cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
        "date": dt.date.today().isoformat(),
    }
    result["pass"] = (stats["rps"] >= TARGETS["rps"] and stats["p99_ms"] <= TARGETS["p99_ms"]
                      and stats["failures"] == TARGETS["failures"])
    return result


def _tree_rss(pid: int) -> int:
    """RSS of the server process and its children (uvicorn --workers spawns workers)."""
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])


def markdown(r: dict, command: str) -> str:
    verdict = "meets" if r["pass"] else "MISSES"
    return f"""## API load (POST /v1/inference)

`{command}` — {r['date']}, {r['cpus']} CPU cores shared with other work (1-min load average
{r['loadavg_1m']} at the end), {r['models']}. uvicorn with {r['workers']} worker(s) on 127.0.0.1;
locust headless, {r['users']} users posting back to back for {r['duration_s']} s; each request
a 64-frame sequence of 258 values a frame (real sample signs), about {r["payload_kb"]} kB of JSON.

| requests | failures | requests/s | median ms | mean ms | p95 ms | p99 ms | max ms | server RSS MiB (before, after) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| {r['requests']} | {r['failures']} | {r['rps']} | {r['median_ms']:g} | {r['mean_ms']:g} | {r['p95_ms']:g} | {r['p99_ms']:g} | {r['max_ms']:g} | {r['server_rss_mib'][0]}, {r['server_rss_mib'][1]} |

Targets: >= {TARGETS['rps']:g} requests/s, p99 <= {TARGETS['p99_ms']:g} ms, zero failures — this run {verdict} them.
The load generator runs on the same cores as the server; closed-loop users queue, so the mean
latency is about users / throughput.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--models", default=None, help="bundle directory (default: models/ or the fixture)")
    parser.add_argument("--rps-per-user", type=float, default=0.0, help="0 = back to back")
    parser.add_argument("--update-md", action="store_true", help="write the result into BENCHMARKS.md")
    args = parser.parse_args(argv)
    result = run(args.users, args.duration, args.workers, args.models, args.rps_per_user)
    print(json.dumps(result, indent=2))
    if args.update_md:
        command = "python -m benchmarks.bench_api " + " ".join(argv if argv is not None else sys.argv[1:])
        update_section(MD_START, MD_END, markdown(result, command.strip()))
        print(f"wrote {MD_PATH}")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
