"""Beyond one process: Ray vs the local pool for dataset import, the PostgreSQL reference store,
and `python app.py --workers N` under load. Each part runs its contenders side by side in one run.

    python -m benchmarks scaling                               # ray, store and api
    python -m benchmarks.bench_scaling ray --copies 2          # import throughput, local vs Ray
    python -m benchmarks.bench_scaling store --signs 20        # enrolment latency, cross-replica visibility
    python -m benchmarks.bench_scaling api --duration 60       # /v1/inference with API_WORKERS 1 and 2
    ... --update-md                                            # write the Scaling sections of BENCHMARKS.md

ray: the real sample clips (MSL-150 and the selfie clip, ``--copies`` links of each) through
`signseek.landmarks.parallel.open_pool` on the local engine (2 processes) and the Ray engine (a
Ray head with 2 CPUs on 127.0.0.1, tests/clusters.py), the same tasks the importer sends, in the
importer's default mode (LANDMARKS_MODE: fast unless set); the landmarks are compared clip by clip
between the engines and between the two runs of the same engine (run-to-run repeatability). Reports
start-up, wall, steady throughput, the per-clip cost on one worker in each mode (fast, holistic)
and a paper estimate for 20,000 clips on N workers.

store: a real PostgreSQL (initdb + postgres on a temp dir, tests/clusters.py) and SQLite, the
trained bundle: enrolment latency (3-clip signs), and how long a second app process (its own
store and engine, polling its engine every millisecond) takes to see a new and a deleted sign;
also `Engine.set_references` above ANN_THRESHOLD (a full index rebuild) beside what an
incremental HNSW add costs.

api: `python app.py --workers N` on 127.0.0.1 (UI + API; N > 1: POST /v1/inference forwarded to
N API processes), locust headless as benchmarks/bench_api.py does, for N = 1 and 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import MD_PATH, update_section
from signseek.paths import PROJECT_ROOT, SAMPLE_DATASET, SHARED_DATASETS

HERE = Path(__file__).resolve().parent


def _today() -> str:
    return dt.date.today().isoformat()


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# ============================================================================ ray vs local pool


def _clip_folder(out: Path, copies: int) -> list[Path]:
    sources = sorted((SAMPLE_DATASET / "videos").glob("*.mp4"))
    sources += [p for p in sorted((SHARED_DATASETS / "msl150-clips").glob("*.mp4"))
                if p.name not in {s.name for s in sources}]
    paths = []
    for src in sources:
        label = src.stem.rsplit("_", 1)[0]
        (out / label).mkdir(parents=True, exist_ok=True)
        for k in range(copies):
            dst = out / label / f"{src.stem}-{k}.mp4"
            try:
                os.link(src, dst)
            except OSError:  # another filesystem
                shutil.copyfile(src, dst)
            paths.append(dst)
    return paths


def _run_pool(engine: str, paths: list[Path], workers: int, mode: str, address: str | None = None) -> dict:
    from signseek.landmarks.parallel import ClipTask, open_pool

    tasks = [ClipTask(str(p), options={"mode": mode}) for p in paths]  # as the importer sends them
    start = time.perf_counter()
    cpu0 = time.process_time()
    results: list = [None] * len(tasks)
    done_at = []
    with open_pool(engine, workers, address=address, mode=mode) as pool:
        opened = time.perf_counter() - start
        for i, outcome in pool.imap_unordered(tasks):
            if isinstance(outcome, Exception):
                raise outcome
            results[i] = outcome
            done_at.append(time.perf_counter() - start)
        wall = time.perf_counter() - start
    frames = sum(r.n_frames for r in results)
    steady = (len(done_at) - workers) / (done_at[-1] - done_at[workers - 1]) if len(done_at) > workers else None
    return {"engine": engine, "mode": mode, "workers": workers, "clips": len(tasks), "frames": frames,
            "cpu_s_this_process": round(time.process_time() - cpu0, 1), "pool_open_s": round(opened, 2),
            "first_clip_s": round(done_at[0], 2), "wall_s": round(wall, 2), "clips_per_s": round(len(tasks) / wall, 3),
            "steady_clips_per_s": round(steady, 3) if steady else None, "frames_per_s": round(frames / wall, 1),
            "_results": results}


def _compare(a: list, b: list) -> dict:
    """Clip-by-clip agreement of two runs' landmarks: clips identical, frames that differ, and the
    largest coordinate difference where both have a point (image-normalised units)."""
    same = frames = differ = 0
    largest = 0.0
    for x, y in zip(a, b, strict=True):
        p, q = x.sequence.points, y.sequence.points
        same += np.array_equal(p, q, equal_nan=True)
        frames += len(p)
        if p.shape != q.shape:
            differ += max(len(p), len(q))
            continue
        diff = np.abs(p - q)
        differ += int((~np.all((diff == 0) | (np.isnan(p) & np.isnan(q)), axis=(1, 2))).sum())
        if np.isfinite(diff).any():
            largest = max(largest, float(np.nanmax(diff)))
    return {"clips_identical": f"{same} of {len(a)}", "frames_differing": f"{differ} of {frames}",
            "max_abs_diff": round(largest, 4)}


def bench_ray(copies: int = 2) -> dict:
    sys.path.insert(0, str(PROJECT_ROOT))
    from signseek.landmarks.extract import resolve_mode
    from tests.clusters import ray_cluster

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # the loopback cluster (tests/clusters.py)
    mode = resolve_mode(None)  # what `signseek-data import` runs by default
    load_start = _load()
    work = Path(tempfile.mkdtemp(prefix="signseek-bench-ray-"))
    try:
        paths = _clip_folder(work / "clips", copies)
        distinct = paths[::copies]
        size_mb = statistics.mean(p.stat().st_size for p in paths) / 2**20
        one = {}  # per-clip cost on one worker (this process), each distinct clip once, each mode
        for m in ("fast", "holistic"):  # warm-up, not counted: imports, model files, the page cache
            _run_pool("local", distinct[:1], workers=1, mode=m)
        for m in ("fast", "holistic"):
            one[m] = _run_pool("local", distinct, workers=1, mode=m)
            one[m].pop("_results")
        t0 = time.perf_counter()
        with ray_cluster(num_cpus=2) as address:
            cluster_s = time.perf_counter() - t0
            # ABBA: local, Ray, Ray, local, so a load that drifts during the run hits both alike.
            runs = [_run_pool(engine, paths, workers=2, mode=mode, address=address if engine == "ray" else None)
                    for engine in ("local", "ray", "ray", "local")]
        results = {engine: [r.pop("_results") for r in runs if r["engine"] == engine] for engine in ("local", "ray")}
        compared = {"local vs Ray": _compare(results["local"][0], results["ray"][0]),
                    "local vs local": _compare(results["local"][0], results["local"][1]),
                    "Ray vs Ray": _compare(results["ray"][0], results["ray"][1])}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    local = [r for r in runs if r["engine"] == "local"]
    ray = [r for r in runs if r["engine"] == "ray"]
    frames_per_clip = local[0]["frames"] / local[0]["clips"]
    # The fast graph runs a clip's pose and hands on two threads: count CPU time, not wall time, so the
    # estimate is per core (a worker = one core), whatever the graph's threads.
    per_clip_s = {m: round(x["wall_s"] / x["clips"], 2) for m, x in one.items()}
    per_clip_cpu_s = {m: round(x["cpu_s_this_process"] / x["clips"], 2) for m, x in one.items()}
    estimate = {m: {n: round(20000 * s / n / 3600, 2) for n in (2, 16, 64, 256)} for m, s in per_clip_cpu_s.items()}
    return {"date": _today(), "cpus": os.cpu_count(), "loadavg_1m_start": load_start, "loadavg_1m_end": _load(),
            "mode": mode, "clips": local[0]["clips"], "distinct_clips": len(distinct),
            "frames_per_clip": round(frames_per_clip, 1), "per_clip_s_one_worker": per_clip_s,
            "per_clip_cpu_s_one_worker": per_clip_cpu_s,
            "one_worker": one, "runs": runs, "ray_cluster_start_s": round(cluster_s, 1),
            "wall_s": {"local": [r["wall_s"] for r in local], "ray": [r["wall_s"] for r in ray]},
            "compared": compared, "estimate_hours_20k": estimate,
            "mean_clip_mb": round(size_mb, 2)}


def md_ray(r: dict, command: str) -> str:
    rows = "\n".join(
        f"| {x['engine']} | {x['mode']} | {x['workers']} | {x['pool_open_s']} | {x['first_clip_s']} | {x['wall_s']} | "
        f"{x['clips_per_s']} | {x['steady_clips_per_s']} | {x['frames_per_s']} |"
        for x in (r["one_worker"]["fast"], r["one_worker"]["holistic"], *r["runs"]))
    per, cpu = r["per_clip_s_one_worker"], r["per_clip_cpu_s_one_worker"]
    compared = "; ".join(f"{k}: **{v['clips_identical']} clips identical**, {v['frames_differing']} frames "
                         f"differ, largest difference {v['max_abs_diff']}" for k, v in r["compared"].items())
    mean = {k: statistics.mean(v) for k, v in r["wall_s"].items()}
    ratio = round(mean["ray"] / mean["local"], 2)
    walls = f"local {r['wall_s']['local']} s, Ray {r['wall_s']['ray']} s"
    est = "; ".join(f"{m} ({cpu[m]} CPU s a clip, {per[m]} s wall on one worker): "
                    + ", ".join(f"{n} cores {h} h" for n, h in hours.items())
                    for m, hours in r["estimate_hours_20k"].items())
    return f"""## Scaling: dataset import on Ray vs the local pool

`{command}` — {r['date']}, {r['cpus']} CPU cores shared with other work (1-min load average
{r['loadavg_1m_start']} at the start, {r['loadavg_1m_end']} at the end). The same {r['clips']} real clips
({r['distinct_clips']} distinct, {r['frames_per_clip']} frames each on average, 1280x720 MSL-150 and the 540x720
selfie clip) through `open_pool(...).imap_unordered`, the tasks `signseek-data import` sends, in its
default mode ({r['mode']}: LANDMARKS_MODE). Ray: a head node with 2 CPUs on 127.0.0.1, started in
{r['ray_cluster_start_s']} s (not counted below); its actors start inside "pool open / first clip".
Landmarks compared clip by clip (first run of each engine, and each engine's two runs): {compared}.
The first two rows are
one worker in this process, each distinct clip once, in each mode: the per-clip cost. Then local, Ray,
Ray, local (in that order, so a load that drifts during the run weighs on both engines alike), 2 workers each.

| engine | mode | workers | pool open s | first clip s | wall s | clips/s | steady clips/s | frames/s |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

Same clips, same run: Ray took {ratio}x the local pool's wall time (mean of two runs each: {walls}). On one
machine Ray adds its actors' start (a fresh Python with MediaPipe each) and the video bytes through its
object store, and gains nothing: use it when the clips need more cores than one machine has.

Paper estimate for 20,000 such clips (wall = 20,000 x the CPU seconds a clip (decoding included) / N
cores, one worker a core, perfect scaling, start-up and video transfer ignored): {est}.
WLASL clips are shorter or longer than these ({r['frames_per_clip']} frames): scale by frames. Ray ships
each video's bytes with its task ({r['mean_clip_mb']} MB a clip here, about
{round(20000 * r['mean_clip_mb'] / 1024, 1)} GB for 20,000), so worker machines need no shared disk.
"""


# ============================================================================ the reference store


WATCHER = r"""
import json, sys, time
from signseek.engine import Engine
from signseek.store import ReferenceStore
from signseek.settings import Settings
bundle, location, ann = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = Settings(_env_file=None, MODELS_DIR=bundle, ANN_THRESHOLD=ann)
store = ReferenceStore(Engine.from_bundle(bundle, settings), location)
print(json.dumps({"ready": True}), flush=True)
seen = set(store.engine.labels)
poll_sqlite = store.backend.kind == "sqlite"
while True:
    if poll_sqlite:  # what each request does on SQLite
        store.refresh_if_changed()
    labels = set(store.engine.labels)
    now = time.time()
    for name in labels - seen:
        print(json.dumps({"seen": name, "t": now}), flush=True)
    for name in seen - labels:
        print(json.dumps({"gone": name, "t": now}), flush=True)
    seen = labels
    time.sleep(0.001)
"""


def _prefill(bundle: Path, location: str, n: int) -> None:
    """``n`` clips of 2,000 filler signs written straight into the store (random unit embeddings
    made by this bundle's model id, real feature rows), so a store holds as many references as
    a big deployment without enrolling them one by one."""
    import datetime

    from signseek.bundle import stable_sentence_id
    from signseek.engine import Engine
    from signseek.store import SignInfo, open_backend
    from signseek.store.records import ClipRecord, pack

    engine = Engine.from_bundle(bundle, _env_file=None)
    model_id = engine.bundle.model_id
    feats = pack(np.asarray(engine.references.features[0][:8], np.float32))
    points = pack(np.zeros((8, 543, 3), np.float32))
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(n, engine.references.embeddings.shape[1])).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    labels = [f"filler-{i % 2000}" for i in range(n)]
    signs = [SignInfo(label, "word", 0, created, True, stable_sentence_id(label), label) for label in sorted(set(labels))]
    records = [ClipRecord(None, label, "word", created, 8, "", "", model_id, points, feats, pack(e))
               for label, e in zip(labels, emb, strict=True)]
    backend = open_backend(location)
    try:
        backend.copy_in(signs, records)
    finally:
        backend.close()


def _visibility(bundle: Path, location: str, clips: list, n_signs: int, ann_threshold: int,
                pause_s: float = 0.3) -> dict:
    from signseek.engine import Engine
    from signseek.settings import Settings
    from signseek.store import ReferenceStore

    settings = Settings(_env_file=None, MODELS_DIR=bundle, ANN_THRESHOLD=ann_threshold)
    store = ReferenceStore(Engine.from_bundle(bundle, settings), location)
    references = len(store.engine.references)
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, str(bundle), location, str(ann_threshold)],
                               cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events: dict[tuple[str, str], float] = {}
    try:
        assert json.loads(watcher.stdout.readline()).get("ready")
        import threading

        def read() -> None:
            for line in watcher.stdout:
                item = json.loads(line)
                key = ("seen", item["seen"]) if "seen" in item else ("gone", item["gone"])
                events[key] = item["t"]

        threading.Thread(target=read, daemon=True).start()
        enrol_ms, insert_ms, refresh_ms, marks = [], [], [], []
        committed: list[float] = []  # when each write's transaction returned (committed)
        insert, delete = store.backend.insert, store.backend.delete_sign

        def timed_insert(*args, **kwargs):
            t = time.perf_counter()
            try:
                return insert(*args, **kwargs)
            finally:
                insert_ms.append((time.perf_counter() - t) * 1e3)
                committed.append(time.time())

        def timed_delete(*args, **kwargs):
            try:
                return delete(*args, **kwargs)
            finally:
                committed.append(time.time())

        store.backend.insert, store.backend.delete_sign = timed_insert, timed_delete
        for i in range(n_signs):
            name = f"bench-{i}"
            t = time.perf_counter()
            store.enrol(name, clips)
            enrol_ms.append((time.perf_counter() - t) * 1e3)
            refresh_ms.append(store.last_refresh["ms"])
            marks.append(("seen", name, committed[-1]))
            time.sleep(pause_s)
        for i in range(n_signs):
            name = f"bench-{i}"
            store.delete_sign(name)
            marks.append(("gone", name, committed[-1]))
            time.sleep(pause_s)
        deadline = time.time() + 120
        while len(events) < len(marks) and time.time() < deadline:
            time.sleep(0.05)
    finally:
        watcher.kill()
        watcher.wait(timeout=10)
        store.close()
    seen = [events[(k, n)] - t for k, n, t in marks if k == "seen" and (k, n) in events]
    gone = [events[(k, n)] - t for k, n, t in marks if k == "gone" and (k, n) in events]

    def pct(values, q):
        return round(float(np.percentile(values, q)), 1) if values else None

    return {"signs": n_signs, "references": references, "index": store.engine.index_kind, "pause_s": pause_s,
            "enrol_ms_p50": pct(enrol_ms, 50), "enrol_ms_p95": pct(enrol_ms, 95),
            "insert_ms_p50": pct(insert_ms, 50), "insert_ms_p95": pct(insert_ms, 95),
            "refresh_ms_p50": pct(refresh_ms, 50),
            "seen_ms_p50": pct([1e3 * s for s in seen], 50), "seen_ms_max": pct([1e3 * s for s in seen], 100),
            "gone_ms_p50": pct([1e3 * s for s in gone], 50), "gone_ms_max": pct([1e3 * s for s in gone], 100),
            "missed": len(marks) - len(seen) - len(gone)}


def _set_references_ms(bundle: Path, sizes=(20_000, 100_000)) -> dict:
    from signseek.engine import Engine
    from signseek.engine.search import ReferenceSet

    engine = Engine.from_bundle(bundle, _env_file=None)
    dim = engine.references.embeddings.shape[1]
    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        emb = rng.normal(size=(n, dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        refs = ReferenceSet(emb, [f"s{i % 2000}" for i in range(n)])
        t = time.perf_counter()
        engine.set_references(refs)
        out[n] = {"ms": round((time.perf_counter() - t) * 1e3), "index": engine.index_kind}
    return out


def _ann_add_ms(n: int, added: int = 3) -> dict:
    """What an incremental add would cost: usearch `Index.copy()` + `add` of ``added`` clips to an
    index of ``n``, next to building the index (AnnIndex, as the engine does), same vectors."""
    import onnxruntime  # noqa: F401  (before usearch, as the engine does)

    from signseek.engine.search import AnnIndex

    rng = np.random.default_rng(1)
    emb = rng.normal(size=(n + added, 256)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = [f"s{i % 2000}" for i in range(n + added)]
    t = time.perf_counter()
    index = AnnIndex(emb[:n], labels[:n])
    build = time.perf_counter() - t
    t = time.perf_counter()
    copy = index.index.copy()
    copy.add(np.arange(n, n + added, dtype=np.uint64), emb[n:], threads=1)
    add = time.perf_counter() - t
    return {"n": n, "build_ms": round(build * 1e3), "copy_add_ms": round(add * 1e3, 1)}


def bench_store(n_signs: int = 20, index_sizes=(20_000,), ann_signs: int = 3, ann_references: int = 19_500) -> dict:
    sys.path.insert(0, str(PROJECT_ROOT))
    from benchmarks.bench_api import pick_models
    from signseek.landmarks.layouts import flat_to_canonical
    from tests.clusters import postgres_server

    bundle, note = pick_models(None)
    with np.load(SAMPLE_DATASET / "signs_sample.npz") as data:
        clips = [flat_to_canonical(data["landmarks"][i], "pose_hands")[0] for i in (4, 5, 6)]
    work = Path(tempfile.mkdtemp(prefix="signseek-bench-store-"))
    out = {"date": _today(), "cpus": os.cpu_count(), "loadavg_1m_start": _load(), "models": note}
    try:
        with postgres_server() as server:
            out["postgresql"] = _visibility(bundle, server.create_database("bench1"), clips, n_signs, 20_000)
            big = server.create_database("bench2")  # above ANN_THRESHOLD (20,000): the index is rebuilt
            _prefill(bundle, big, ann_references)
            out["postgresql_ann"] = _visibility(bundle, big, clips, ann_signs, 20_000, pause_s=1.0)
        out["sqlite"] = _visibility(bundle, str(work / "bench.db"), clips, n_signs, 20_000)
        out["set_references"] = _set_references_ms(bundle, index_sizes)
        out["ann_add_ms"] = _ann_add_ms(index_sizes[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["loadavg_1m_end"] = _load()
    return out


def md_store(r: dict, command: str) -> str:
    def row(name, x):
        return (f"| {name} | {x['references']:,} | {x['index']} | {x['signs']} | "
                f"{x['enrol_ms_p50']:,} / {x['enrol_ms_p95']:,} | {x['insert_ms_p50']} / "
                f"{x['insert_ms_p95']} | {x['refresh_ms_p50']:,} | {x['seen_ms_p50']:,} / {x['seen_ms_max']:,} | "
                f"{x['gone_ms_p50']:,} / {x['gone_ms_max']:,} | {x['missed']} |")

    sr = r["set_references"]
    add = r["ann_add_ms"]
    big = r["postgresql_ann"]
    sizes = "; ".join(f"{n:,} references: {v['ms']:,} ms ({v['index']})" for n, v in sr.items())
    return f"""## Scaling: the reference store (SQLite, PostgreSQL)

`{command}` — {r['date']}, {r['cpus']} CPU cores shared with other work (1-min load average
{r['loadavg_1m_start']} at the start, {r['loadavg_1m_end']} at the end), {r['models']}. PostgreSQL 15 on
127.0.0.1 (initdb on a temp dir, tests/clusters.py). Writer: this process enrols signs of 3 real clips
one after another ({r['postgresql']['pause_s']} s apart; {big['pause_s']} s above ANN_THRESHOLD), then deletes
them. Reader: a second process with its own store and engine, standing for another replica
(PostgreSQL: its LISTEN thread refreshes; SQLite: `refresh_if_changed()`, what each request does),
checking its engine's labels every millisecond. "seen" = from the writer's transaction committing to
the reader's engine recognising the sign (or no longer). Above ANN_THRESHOLD: the database holds
{big['references'] - 1020:,} more clips (2,000 filler signs, written straight in), so both engines have
{big['references']:,} references and an HNSW index.

| store | references | index | signs | enrol ms p50 / p95 | transaction ms p50 / p95 | writer refresh ms | seen ms p50 / max | deletion seen ms p50 / max | missed |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{row("PostgreSQL", r["postgresql"])}
{row("PostgreSQL, above ANN_THRESHOLD", big)}
{row("SQLite (same machine)", r["sqlite"])}

Enrolment = validate + prepare + embed 3 clips + one transaction + this process's refresh. Below
ANN_THRESHOLD (20,000 references by default) a replica sees a new or deleted sign within
milliseconds. Above it, every refresh rebuilds the engine's whole HNSW index (the store reads only
the new clips, but `Engine.set_references` builds a new index): seconds on each replica, which is the
"seen" time above. `Engine.set_references` alone, random 256-d vectors, 2,000 labels: {sizes}. An
incremental add would cost instead, same machine: building the HNSW index of {add['n']:,} took
{add['build_ms']:,} ms; copying it and adding 3 clips {add['copy_add_ms']} ms (usearch `Index.copy` +
`add`). The engine (signseek/engine/, signseek/ranker.py) has no such path yet.
"""


# ============================================================================ app.py --workers N


def _app_server(models_dir: Path, work: Path, workers: int, timeout_s: float = 300.0):
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.servers import free_port, serve

    port = free_port()
    env = {"MODELS_DIR": str(models_dir), "API_KEY": "", "STORE_PATH": str(work / f"w{workers}.db"),
           "API_WORKERS": str(workers), "HOST": "127.0.0.1", "PORT": str(port), "RATE_LIMIT_INFERENCE": "0",
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    return serve([sys.executable, str(PROJECT_ROOT / "app.py"), "--log-level", "warning"], port, env,
                 work / f"app-w{workers}.log", timeout_s)


def _wait_forwarded(url: str, body: bytes, timeout_s: float = 300.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = httpx.post(url + "/v1/inference", content=body, headers={"Content-Type": "application/json"}, timeout=60)
        if r.headers.get("x-signseek-served-by") == "api-worker":
            return
        time.sleep(1)
    raise RuntimeError("the API workers never answered")


def bench_api(users: int = 16, duration_s: int = 60, workers_list=(1, 2)) -> dict:
    import httpx
    import psutil

    from benchmarks.bench_api import HEADERS, _aggregated_row, build_payloads, pick_models

    models_dir, note = pick_models(None)
    work = Path(tempfile.mkdtemp(prefix="signseek-bench-workers-"))
    runs = []
    for workers in workers_list:
        with _app_server(models_dir, work, workers) as (url, proc):
            bodies = build_payloads()
            if workers > 1:
                _wait_forwarded(url, bodies[0])
            with httpx.Client(base_url=url, timeout=60) as http:
                for body in bodies[:8]:
                    http.post("/v1/inference", content=body, headers=HEADERS).raise_for_status()
            prefix = work / f"locust-w{workers}"
            cmd = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "-u", str(users),
                   "-r", str(users), "-t", f"{duration_s}s", "--host", url, "--csv", str(prefix), "--only-summary",
                   "--stop-timeout", "5", "--loglevel", "WARNING"]
            done = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=duration_s + 90)
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            rss = {p.pid: p.memory_info().rss for p in tree if p.is_running()}
            front_rss = rss.get(proc.pid, 0)
            stats_path = Path(f"{prefix}_stats.csv")
            if not stats_path.is_file():
                raise RuntimeError(f"locust wrote no stats (exit {done.returncode}): {done.stderr[-2000:]}")
            stats = _aggregated_row(stats_path)
            worker_rss = sorted(v for pid, v in rss.items() if pid != proc.pid and v > 50 * 2**20)
            runs.append({"workers": workers, **stats, "front_rss_mib": round(front_rss / 2**20),
                         "worker_rss_mib": [round(v / 2**20) for v in worker_rss],
                         "total_rss_mib": round(sum(rss.values()) / 2**20), "loadavg_1m": _load()})
    shutil.rmtree(work, ignore_errors=True)
    return {"date": _today(), "cpus": os.cpu_count(), "users": users, "duration_s": duration_s, "models": note,
            "runs": runs}


def md_api(r: dict, command: str) -> str:
    rows = "\n".join(
        f"| {x['workers']} | {x['requests']} | {x['failures']} | {x['rps']} | {x['median_ms']:g} | {x['p95_ms']:g} | "
        f"{x['p99_ms']:g} | {x['front_rss_mib']} | {', '.join(map(str, x['worker_rss_mib'])) or '-'} | "
        f"{x['total_rss_mib']} | {x['loadavg_1m']} |" for x in r["runs"])
    return f"""## Scaling: `python app.py --workers N` under load (POST /v1/inference)

`{command}` — {r['date']}, {r['cpus']} CPU cores shared with other work, {r['models']}. One command,
`python app.py --workers N` (API_WORKERS=N): the UI, Socket.IO and every other route in one front
process; N > 1 forwards POST /v1/inference to N API processes. locust headless on the same cores,
{r['users']} users back to back for {r['duration_s']} s, 64-frame payloads (benchmarks/locustfile.py),
per-client rate limit off (one locust host is every user). RSS measured right after the load.

| N | requests | failures | requests/s | median ms | p95 ms | p99 ms | front RSS MiB | worker RSS MiB | total RSS MiB | load 1m |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

Target: >= 100 requests/s and p99 <= 250 ms with the workers setting, on 2 cores.
"""


# ============================================================================ main

PARTS = {"ray": (bench_ray, md_ray), "store": (bench_store, md_store), "api": (bench_api, md_api)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", help=f"some of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--copies", type=int, default=2, help="ray: copies of each real clip")
    parser.add_argument("--signs", type=int, default=20, help="store: signs enrolled and deleted")
    parser.add_argument("--index-sizes", type=int, nargs="+", default=[20_000],
                        help="store: reference counts for the index rebuild timing (100000 takes minutes)")
    parser.add_argument("--users", type=int, default=16, help="api: locust users")
    parser.add_argument("--duration", type=int, default=60, help="api: seconds of load per configuration")
    parser.add_argument("--update-md", action="store_true", help="write the results into BENCHMARKS.md")
    args = parser.parse_args(argv)
    parts = args.parts or list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    kwargs = {"ray": {"copies": args.copies}, "store": {"n_signs": args.signs, "index_sizes": tuple(args.index_sizes)},
              "api": {"users": args.users, "duration_s": args.duration}}
    for part in parts:
        run, md = PARTS[part]
        result = run(**kwargs[part])
        print(json.dumps({part: result}, indent=1, default=str), flush=True)
        if args.update_md:
            command = f"python -m benchmarks.bench_scaling {part} " + " ".join(
                a for a in (argv if argv is not None else sys.argv[1:]) if a not in PARTS and a != "--update-md")
            update_section(f"<!-- scaling-{part}:start -->", f"<!-- scaling-{part}:end -->", md(result, command.strip()))
            print(f"wrote {MD_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
