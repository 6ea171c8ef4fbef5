"""Hostile inputs against a real API server: what one small file or one big body costs.

    python -m benchmarks hostile                                   # this tree
    python -m benchmarks hostile -- --baseline /tmp/base --update-md   # and a baseline tree, side by side

Inputs, made here with ffmpeg and numpy (nothing downloaded):
  bomb     a 1080p, 240 fps, 20 s black H.264 clip (4,800 frames, ~0.2 MB), posted to
           /v1/inference/video; a normal clip (signer_selfie.mp4) follows 5 s later
  json46   a 46 MB JSON body posted to /v1/inference, alone and 4 at once
  uploads  44 concurrent uploads of the normal clip to /v1/inference/video
For each: the answers (status, seconds), the server's peak RSS (sampled every 50 ms) and the
slowest /healthz (polled every 100 ms from a separate process) while it ran. Each server is `uvicorn --factory
demo.api:create_app` started from its source tree (``--baseline``: e.g. a `git worktree` of an
older commit) on the shipped bundle, stopped by PID. The test suite runs the same scenarios
(tests/test_api_hostile.py) with assertions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from benchmarks.report import MD_PATH, update_section
from signseek.paths import PROJECT_ROOT, SAMPLE_DATASET
from tests.servers import free_port, serve

NORMAL_CLIP = SAMPLE_DATASET / "videos" / "signer_selfie.mp4"
MD_START, MD_END = "<!-- api-hostile:start -->", "<!-- api-hostile:end -->"


# ---------------------------------------------------------------------------- inputs


def make_bomb_clip(out: Path, width: int = 1920, height: int = 1080, fps: int = 240, seconds: int = 20) -> Path:
    """A black ``width``x``height`` clip at ``fps`` for ``seconds``: one second encoded, then
    looped by stream copy (encoding 4,800 1080p frames would cost ~25 s of CPU; this ~2 s)."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (make system-deps installs it)")
    one = out.with_name(out.stem + "-1s.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=black:s={width}x{height}:r={fps}:d=1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "51", "-pix_fmt", "yuv420p", "-g", str(fps),
                    str(one)], check=True, timeout=120)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(seconds - 1), "-i", str(one), "-c", "copy",
                    str(out)], check=True, timeout=120)
    one.unlink()
    return out


def big_json_body(megabytes: float = 46.0) -> bytes:
    """A syntactically valid inference body of about ``megabytes`` MB (frames of 1662 numbers)."""
    frame = "[" + ",".join(["0.123456789012345"] * 1662) + "]"
    n = max(1, int(megabytes * 1e6 / (len(frame) + 1)))
    return ('{"frames": [' + ",".join([frame] * n) + "]}").encode()


# ---------------------------------------------------------------------------- the server and probes


@contextmanager
def api_server(tree: Path, work: Path, extra_env: dict[str, str] | None = None,
               timeout_s: float = 120.0) -> Iterator[tuple[str, int]]:
    """`uvicorn --factory demo.api:create_app` from ``tree`` (its demo/ and signseek/) on 127.0.0.1."""
    port = free_port()
    env = {"PYTHONPATH": str(tree), "MODELS_DIR": str(tree / "models"), "API_KEY": "",
           "STORE_PATH": str(work / f"store-{port}.db"), "VIDEOS_DIR": str(tree / "sample_dataset" / "videos"),
           **(extra_env or {})}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "demo.api:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with _serve_in(tree, cmd, port, env, work / f"server-{port}.log", timeout_s) as (url, proc):
        yield url, proc.pid


@contextmanager
def _serve_in(tree: Path, cmd, port, env, log_path, timeout_s):
    if tree.resolve() == PROJECT_ROOT.resolve():
        with serve(cmd, port, env, log_path, timeout_s) as served:
            yield served
        return
    import tests.servers as servers

    saved = servers.PROJECT_ROOT
    servers.PROJECT_ROOT = tree  # serve() starts the process in PROJECT_ROOT
    try:
        with serve(cmd, port, env, log_path, timeout_s) as served:
            yield served
    finally:
        servers.PROJECT_ROOT = saved


def _poll_health(url: str, ready, stop, conn) -> None:
    """In a process of its own (so the load generator's threads cannot delay it): GET /healthz
    every 100 ms until ``stop`` is set; sends back [(ms, ok), ...]. The first request (connection
    set-up in a fresh process) is not counted; ``ready`` is set after it."""
    samples = []
    with httpx.Client(timeout=30) as http:
        http.get(url + "/healthz")
        ready.set()
        while not stop.is_set():
            start = time.perf_counter()
            try:
                ok = http.get(url + "/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            samples.append(((time.perf_counter() - start) * 1000, ok))
            stop.wait(0.1)
    conn.send(samples)


class Watch:
    """While a scenario runs: /healthz every 100 ms from another process (latency, failures) and
    the server's RSS every 50 ms."""

    def __init__(self, url: str, pid: int) -> None:
        import multiprocessing

        self.url, self.proc = url, psutil.Process(pid)
        self.health_ms: list[float] = []
        self.health_failures = 0
        self.rss_peak = self.rss_start = self._rss()
        self._stop = threading.Event()
        self._rss_thread = threading.Thread(target=self._poll_rss, daemon=True)
        ctx = multiprocessing.get_context("spawn")
        self._proc_stop, self._ready = ctx.Event(), ctx.Event()
        self._recv, send = ctx.Pipe(duplex=False)
        self._poller = ctx.Process(target=_poll_health, args=(url, self._ready, self._proc_stop, send), daemon=True)

    def _rss(self) -> int:
        try:
            return sum(p.memory_info().rss for p in [self.proc, *self.proc.children(recursive=True)])
        except psutil.Error:
            return 0

    def _poll_rss(self) -> None:
        while not self._stop.is_set():
            self.rss_peak = max(self.rss_peak, self._rss())
            self._stop.wait(0.05)

    def __enter__(self) -> Watch:
        self._poller.start()
        self._rss_thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the /healthz poller did not start within 60 s")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._proc_stop.set()
        samples = self._recv.recv() if self._recv.poll(60) else []
        self._poller.join(timeout=10)
        if self._poller.is_alive():
            self._poller.kill()
        self._rss_thread.join(timeout=5)
        self.health_ms = [ms for ms, _ in samples]
        self.health_failures = sum(1 for _, ok in samples if not ok)

    def summary(self) -> dict:
        return {"healthz_max_ms": round(max(self.health_ms, default=0.0), 1), "healthz_polls": len(self.health_ms),
                "healthz_failures": self.health_failures, "rss_start_mib": round(self.rss_start / 2**20),
                "rss_peak_mib": round(self.rss_peak / 2**20)}


def _post(url: str, path: str, timeout_s: float, **kwargs) -> dict:
    start = time.perf_counter()
    try:
        response = httpx.post(url + path, timeout=timeout_s, **kwargs)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        out = {"status": response.status_code, "error": body.get("error") if isinstance(body, dict) else None}
        if response.headers.get("retry-after"):
            out["retry_after"] = response.headers["retry-after"]
    except httpx.HTTPError as exc:
        out = {"status": None, "error": type(exc).__name__}
    out["s"] = round(time.perf_counter() - start, 2)
    return out


def _video(path: Path) -> dict:
    return {"files": {"file": (path.name, path.read_bytes(), "video/mp4")}}


# ---------------------------------------------------------------------------- scenarios


def scenario_bomb(url: str, pid: int, bomb: Path, normal: Path = NORMAL_CLIP, timeout_s: float = 300.0) -> dict:
    with Watch(url, pid) as watch, ThreadPoolExecutor(2) as pool:
        first = pool.submit(_post, url, "/v1/inference/video", timeout_s, **_video(bomb))
        time.sleep(5.0)
        second = pool.submit(_post, url, "/v1/inference/video", timeout_s, **_video(normal))
        result = {"bomb": first.result(), "normal_after_5s": second.result()}
    return {**result, **watch.summary()}


def scenario_json(url: str, pid: int, body: bytes, copies: int, timeout_s: float = 120.0) -> dict:
    headers = {"content-type": "application/json"}
    with Watch(url, pid) as watch, ThreadPoolExecutor(copies) as pool:
        answers = list(pool.map(lambda _: _post(url, "/v1/inference", timeout_s, content=body, headers=headers),
                                range(copies)))
    return {"answers": answers, "mb": round(len(body) / 1e6, 1), **watch.summary()}


def scenario_uploads(url: str, pid: int, clip: Path = NORMAL_CLIP, n: int = 44, timeout_s: float = 300.0) -> dict:
    data = _video(clip)
    with Watch(url, pid) as watch, ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda _: _post(url, "/v1/inference/video", timeout_s, **data), range(n)))
        during = _post(url, "/v1/inference", 30, content=json.dumps({"frames": [[0.0] * 258] * 20}).encode(),
                       headers={"content-type": "application/json"})
    statuses: dict[str, int] = {}
    for a in answers:
        statuses[str(a["status"])] = statuses.get(str(a["status"]), 0) + 1
    refused = [a for a in answers if a["status"] in (429, 503)]
    return {"statuses": statuses, "slowest_s": max(a["s"] for a in answers), "json_inference_during": during,
            "refusals_with_retry_after": sum(1 for a in refused if a.get("retry_after")), "refusals": len(refused),
            **watch.summary()}



def run_tree(tree: Path, work: Path, bomb: Path, body: bytes, which: list[str]) -> dict:
    out: dict = {}
    with api_server(tree, work) as (url, pid):
        warm = _post(url, "/v1/inference/video", 600, **_video(NORMAL_CLIP))  # build the graph first
        print(f"warm-up clip: {warm}", flush=True)
        if "bomb" in which:
            out["bomb"] = scenario_bomb(url, pid, bomb)
        if "json46" in which:
            out["json46_x1"] = scenario_json(url, pid, body, 1)
            out["json46_x4"] = scenario_json(url, pid, body, 4)
        if "uploads" in which:
            out["uploads44"] = scenario_uploads(url, pid)
    return out


def _commit(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--", "demo/api", "signseek"],
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + (" + uncommitted" if dirty else "")


def _answer(a: dict) -> str:
    if a["status"] is None:
        return f"no answer in {a['s']:g} s ({a['error']})"
    code = f" `{a['error']}`" if a.get("error") else ""
    return f"{a['status']}{code} in {a['s']:g} s"


def markdown(results: dict, command: str) -> str:
    rows = []
    for name, res in results["trees"].items():
        bomb = res.get("bomb", {})
        if bomb:
            rows.append(f"| {name} | bomb clip (1080p, 240 fps, 20 s, 0.2 MB) | {_answer(bomb['bomb'])}; normal clip "
                        f"5 s later: {_answer(bomb['normal_after_5s'])} | {bomb['rss_start_mib']} -> "
                        f"{bomb['rss_peak_mib']} | {bomb['healthz_max_ms']} ({bomb['healthz_failures']} failed) |")
        for key, label in (("json46_x1", "46 MB JSON body"), ("json46_x4", "46 MB JSON body, 4 at once")):
            r = res.get(key)
            if r:
                answers = ", ".join(_answer(a) for a in r["answers"])
                rows.append(f"| {name} | {label} | {answers} | {r['rss_start_mib']} -> {r['rss_peak_mib']} | "
                            f"{r['healthz_max_ms']} ({r['healthz_failures']} failed) |")
        r = res.get("uploads44")
        if r:
            statuses = ", ".join(f"{n} x {'no answer' if s == 'None' else s}" for s, n in sorted(r["statuses"].items()))
            rows.append(f"| {name} | 44 concurrent clip uploads | {statuses}; slowest {r['slowest_s']} s; a JSON "
                        f"inference meanwhile: {_answer(r['json_inference_during'])} | {r['rss_start_mib']} -> "
                        f"{r['rss_peak_mib']} | {r['healthz_max_ms']} ({r['healthz_failures']} failed) |")
    trees = "; ".join(f"{name}: {info}" for name, info in results["commits"].items())
    return f"""## Hostile inputs (API)

`{command}` — {results['date']}, {results['cpus']} CPU cores shared with other work (1-min load
average {results['loadavg_1m']}), the shipped bundle, `uvicorn --factory demo.api:create_app`, one
worker, default settings. Trees: {trees}. Each row ran with /healthz polled every 100 ms and the
server's RSS sampled every 50 ms.

| tree | input | answers | server RSS MiB (start -> peak) | slowest /healthz ms |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Client timeouts: 300 s for clips, 120 s for JSON, 30 s for /healthz and the JSON inference sent
during the uploads. Before: the bomb clip was decoded frame by frame (20 s passed the duration
check) and held the one Holistic graph past the client's timeout, with the normal clip behind
it; 46 MB bodies were read and parsed whole (then refused for their frame count); the uploads were
all read and queued on one lock. After: the bomb is refused from its header (`MAX_DECODE_MPIX`:
9,953 megapixels of decoding), a 46 MB body from its Content-Length, and uploads beyond the one
at work and `EXTRACT_QUEUE` waiting get 503 + Retry-After before their body is read (or 429 past
`RATE_LIMIT_VIDEO`); the /healthz maxima after (about 1.3 s) are this box's load (about 10
runnable threads a core): `tests/test_api_hostile.py` holds them to 1 s on a machine with a core
to spare.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=None, help="a second source tree to run first (e.g. a git worktree)")
    parser.add_argument("--only", default="bomb,json46,uploads", help="scenarios, comma-separated")
    parser.add_argument("--update-md", action="store_true", help="write the result into BENCHMARKS.md")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="signseek-hostile-"))
    bomb = make_bomb_clip(work / "bomb.mp4")
    body = big_json_body(46.0)
    which = args.only.split(",")
    trees = {}
    if args.baseline:
        trees["before"] = Path(args.baseline)
    trees["after" if args.baseline else "this tree"] = PROJECT_ROOT
    results = {"date": dt.date.today().isoformat(), "cpus": os.cpu_count(), "trees": {}, "commits": {}}
    for name, tree in trees.items():
        print(f"--- {name}: {tree}", flush=True)
        results["trees"][name] = run_tree(tree, work, bomb, body, which)
        results["commits"][name] = _commit(tree)
        print(json.dumps(results["trees"][name], indent=1), flush=True)
    results["loadavg_1m"] = round(os.getloadavg()[0], 2)
    if args.update_md:
        command = "python -m benchmarks hostile -- " + " ".join(argv if argv is not None else sys.argv[1:])
        update_section(MD_START, MD_END, markdown(results, command.strip()))
        print(f"wrote {MD_PATH}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
