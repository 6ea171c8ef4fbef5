"""WebSocket memory: 10,000 landmark frames through one /ws/stream connection; server RSS growth.

    python -m benchmarks ws_memory
    python -m benchmarks ws_memory -- --frames 10000 --update-md
    python -m benchmarks.bench_ws_memory --frames 10000 --models models

Starts uvicorn (its own process, stopped by PID), streams real signing frames (258 values,
from sample_dataset/signs_sample.npz) alternating with idle frames in blocks of 500, as fast
as the server takes them, and reads the server's RSS after a warm-up of 500 frames and after
the last reply. Target: growth < 10%. Every stride (8) frames must get exactly one reply.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import websockets

from benchmarks.bench_api import api_server, pick_models
from benchmarks.report import MD_PATH, update_section
from signseek.paths import SAMPLE_DATASET

HERE = Path(__file__).resolve().parent
MD_START, MD_END = "<!-- ws-memory:start -->", "<!-- ws-memory:end -->"
TARGET_GROWTH = 0.10
WINDOW, STRIDE, WARMUP, BLOCK = 60, 8, 500, 500


async def stream(url: str, pid: int, n_frames: int) -> dict:
    process = psutil.Process(pid)
    with np.load(SAMPLE_DATASET / "signs_sample.npz") as data:
        signing = [json.dumps(f.tolist()) for f in np.concatenate(list(data["landmarks"][40:48]))]
    idle = json.dumps([0.0] * 258)
    expected = n_frames // STRIDE
    replies, kinds = 0, {}
    samples = []
    async with websockets.connect(f"{url}/ws/stream?window={WINDOW}&stride={STRIDE}", max_queue=None) as ws:
        json.loads(await ws.recv())  # ready

        async def drain():
            nonlocal replies
            async for message in ws:
                replies += 1
                kind = json.loads(message)["type"]
                kinds[kind] = kinds.get(kind, 0) + 1

        reader = asyncio.create_task(drain())
        start = time.perf_counter()
        baseline = None
        for i in range(n_frames):
            await ws.send(signing[i % len(signing)] if (i // BLOCK) % 2 == 0 else idle)
            if i == WARMUP:
                await asyncio.sleep(0.5)
                baseline = process.memory_info().rss
            if i % 1000 == 0:
                samples.append(process.memory_info().rss)
        deadline = time.monotonic() + 300
        while replies < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - start
        final = process.memory_info().rss
        reader.cancel()
    peak = max([*samples, final])
    return {
        "frames": n_frames, "replies": replies, "expected_replies": expected, "reply_types": kinds,
        "rss_baseline_mib": round(baseline / 2**20, 1), "rss_final_mib": round(final / 2**20, 1),
        "rss_peak_mib": round(peak / 2**20, 1), "growth_pct": round(100 * (final - baseline) / baseline, 2),
        "seconds": round(elapsed, 1), "frames_per_s": round(n_frames / elapsed, 1),
    }


def markdown(r: dict, command: str) -> str:
    verdict = "meets" if r["pass"] else "MISSES"
    return f"""## WebSocket memory (/ws/stream)

`{command}` — {r['date']}, {r['models']}. One connection, window {WINDOW} frames, stride {STRIDE};
{r['frames']} frames of 258 values (real signing in blocks of {BLOCK}, idle in between) sent as fast
as the server takes them ({r['frames_per_s']} frames/s, {r['seconds']} s).

| frames | replies (expected) | RSS after warm-up MiB | RSS at end MiB | peak MiB | growth |
| --- | --- | --- | --- | --- | --- |
| {r['frames']} | {r['replies']} ({r['expected_replies']}) | {r['rss_baseline_mib']} | {r['rss_final_mib']} | {r['rss_peak_mib']} | {r['growth_pct']}% |

Target: RSS growth < {TARGET_GROWTH:.0%} — this run {verdict} it.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--models", default=None, help="bundle directory (default: models/ or the fixture)")
    parser.add_argument("--update-md", action="store_true")
    args = parser.parse_args(argv)
    models_dir, note = pick_models(args.models)
    work = Path(tempfile.mkdtemp(prefix="signseek-bench-ws-"))
    with api_server(models_dir, work / "server.log") as (url, proc):
        result = asyncio.run(stream(url.replace("http://", "ws://"), proc.pid, args.frames))
    result.update(models=note, date=dt.date.today().isoformat(), cpus=os.cpu_count())
    result["pass"] = result["growth_pct"] < 100 * TARGET_GROWTH and result["replies"] == result["expected_replies"]
    print(json.dumps(result, indent=2))
    if args.update_md:
        command = "python -m benchmarks.bench_ws_memory " + " ".join(argv if argv is not None else sys.argv[1:])
        update_section(MD_START, MD_END, markdown(result, command.strip()))
        print(f"wrote {MD_PATH}")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
