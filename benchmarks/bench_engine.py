"""Engine latency and ANN recall.

    .venv/bin/python benchmarks/bench_engine.py                  # shipped models/ (else the test fixture bundle)
    .venv/bin/python benchmarks/bench_engine.py --ann-size 0 --compare-bundle /tmp/old_models  # side by side
    .venv/bin/python benchmarks/bench_engine.py --queries 500 --ann-size 100000 --json
    .venv/bin/python -m benchmarks engine -- --ann-size 20000

Part 1: landmarks -> ranked result (prepare, gates, ONNX embed, exact cosine search, DTW re-rank of
the top DTW_TOP_N, decision) over real clips of sample_dataset/signs_sample.npz, single-threaded
requests one after another; the dtaidistance and fastdtw pipelines side by side.
Part 2: ``--ann-size`` clustered random unit references (10 clips per "sign") in the usearch
index: build time, search p50/p99 (one thread), recall@5 against exact search.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import onnxruntime  # noqa: E402,F401  (before usearch: see signseek/engine/search.py)

from signseek.engine import AnnIndex, Engine, ExactIndex  # noqa: E402
from signseek.engine.gates import hand_frames  # noqa: E402
from signseek.paths import MODELS_DIR, SAMPLE_DATASET  # noqa: E402
from signseek.settings import Settings  # noqa: E402


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
            "mean_ms": round(float(a.mean()), 3)}


def load_engine(backend: str, int8: bool = False, bundle: Path | None = None) -> tuple[Engine, str]:
    settings = Settings(_env_file=None, DTW_BACKEND=backend, ENCODER_INT8=int8)
    if bundle is not None:
        return Engine.from_bundle(bundle, settings), str(bundle)
    if (MODELS_DIR / "model_config.json").is_file():
        return Engine.from_bundle(MODELS_DIR, settings), "models/"
    from fixtures.bundle_factory import build_fixture_bundle

    directory = Path(tempfile.mkdtemp()) / "bundle"
    build_fixture_bundle(directory)
    return Engine.from_bundle(directory, settings), "test fixture bundle (models/ absent)"


def query_clips() -> list[np.ndarray]:
    from fixtures.bundle_factory import load_clips

    points, _ = load_clips(SAMPLE_DATASET / "signs_sample.npz")
    return [p for p in points if hand_frames(p) > 0]


def bench_pipeline(backend: str, n_queries: int, int8: bool = False, bundle: Path | None = None) -> dict:
    engine, source = load_engine(backend, int8, bundle)
    clips = query_clips()
    for clip in clips[:20]:
        engine.recognize(clip)  # warm-up
    total, stages, accepted = [], {}, 0
    for i in range(n_queries):
        t = time.perf_counter()
        result = engine.recognize(clips[i % len(clips)])
        total.append((time.perf_counter() - t) * 1e3)
        accepted += result.accepted
        for k, v in result.timings_ms.items():
            stages.setdefault(k, []).append(v)
    return {"backend": backend + (" + int8 encoder" if int8 else ""), "bundle": source, "n_references": len(engine.references),
            "queries": n_queries, **percentiles(total),
            "stage_p50_ms": {k: round(float(np.median(v)), 3) for k, v in stages.items()},
            "accepted": accepted, "encoder_backend": engine.encoder.backend}


def bench_ann(n: int, n_queries: int = 500, dim: int = 256) -> dict:
    rng = np.random.default_rng(0)

    def unit(x):
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    n_signs = max(1, n // 10)
    centres = unit(rng.standard_normal((n_signs, dim)))
    codes = np.arange(n) % n_signs
    data = unit(centres[codes] + 0.04 * rng.standard_normal((n, dim)))
    labels = [f"s{i}" for i in codes]
    queries = unit(centres[rng.integers(0, n_signs, n_queries)] + 0.04 * rng.standard_normal((n_queries, dim)))
    t = time.perf_counter()
    ann = AnnIndex(data, labels)
    build_s = time.perf_counter() - t
    exact = ExactIndex(data, labels)
    ann_ms, exact_ms, hits = [], [], 0
    for q in queries:
        t = time.perf_counter()
        found = ann.nearest(q[None], 5)[0]
        ann.search(q[None], 5)
        ann_ms.append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        truth = exact.nearest(q[None], 5)[0]
        exact_ms.append((time.perf_counter() - t) * 1e3)
        hits += len(set(found.tolist()) & set(truth.tolist()))
    return {"n_references": n, "build_s": round(build_s, 1), "ann": percentiles(ann_ms),
            "exact": percentiles(exact_ms), "recall_at_5": hits / (5 * n_queries)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--ann-size", type=int, default=100_000, help="0 skips the ANN part")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--compare-bundle", type=Path,
                        help="another bundle (e.g. an older encoder) timed in the same run, interleaved")
    args = parser.parse_args(argv)
    report = {"cpus": os.cpu_count(), "pipelines": [
        bench_pipeline("dtaidistance", args.queries),
        bench_pipeline("dtaidistance", args.queries, int8=True),
        bench_pipeline("fastdtw", args.queries),
    ]}
    if args.compare_bundle:
        report["pipelines"][2:2] = [bench_pipeline("dtaidistance", args.queries, bundle=args.compare_bundle),
                                    bench_pipeline("dtaidistance", args.queries)]
    if args.ann_size:
        report["ann"] = bench_ann(args.ann_size)
    if args.json:
        print(json.dumps(report))
        return 0
    for p in report["pipelines"]:
        print(f"{p['backend']:>12}: p50 {p['p50_ms']} ms  p99 {p['p99_ms']} ms  ({p['queries']} queries, "
              f"{p['n_references']} refs, {p['bundle']}) stages p50 {p['stage_p50_ms']}")
    if "ann" in report:
        a = report["ann"]
        print(f"ANN {a['n_references']} refs: build {a['build_s']} s, p50 {a['ann']['p50_ms']} ms, "
              f"p99 {a['ann']['p99_ms']} ms, recall@5 {a['recall_at_5']:.4f}; exact p50 {a['exact']['p50_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
