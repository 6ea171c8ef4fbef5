"""Upload to answer in the demo: a 2-second clip through the page's own route, today's UI vs this one.

Two servers run side by side (`python app.py`): one from a baseline commit (``--baseline``,
default the commit before the demo-UI rework, extracted with `git archive` into a temporary
folder, sharing this venv) and one from the working tree. Each run uploads a fresh copy of a
real clip (a different file each time: the new UI caches landmarks by file content) through
gradio_client's `/recognise_video` and waits for the whole answer, result files included,
alternating between the two servers so both see the same machine load. The server's own stage
timings split the wall time into landmarks (decode + MediaPipe: the speed issue's part) and the
rest (upload, overlay render, preview, engine, Gradio, transfer).

    python -m benchmarks.bench_demo --runs 5 --update-md
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks.report import update_section
from tests.servers import free_port, serve

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "e7470f8"  # main before the demo-UI rework (2026-11-30)
CLIPS = ("sample_dataset/videos/signer_selfie.mp4", "sample_dataset/videos/hoy_001.mp4")
MD_START, MD_END = "<!-- demo-upload:start -->", "<!-- demo-upload:end -->"
LANDMARK_STAGES = ("decode + landmarks",)


def extract_commit(commit: str, into: Path) -> Path:
    """The tree of ``commit`` in ``into`` (git archive: no checkout, the shared tree untouched)."""
    data = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def fresh_copy(clip: Path, folder: Path, n: int) -> Path:
    """``clip`` with a unique MP4 'free' box appended: the same video, a different file."""
    out = folder / f"{clip.stem}-{n:03d}{clip.suffix}"
    payload = f"signseek-bench-{n}-{time.time_ns()}".encode()
    out.write_bytes(clip.read_bytes() + (8 + len(payload)).to_bytes(4, "big") + b"free" + payload)
    return out


def one_upload(client, path: Path) -> tuple[float, dict]:
    from gradio_client import handle_file

    start = time.perf_counter()
    out = client.predict(handle_file(str(path)), api_name="/recognise_video")
    wall = time.perf_counter() - start
    timings = out[4] if isinstance(out[4], dict) and "headers" in out[4] else out[5]  # old / new output order
    stages = {row[0]: float(row[1]) for row in timings["data"]}
    return wall, stages


def run(runs: int, baseline: str, clips: list[Path], work: Path) -> dict:
    from gradio_client import Client

    env_common = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HOST": "127.0.0.1", "DEMO_WARM": "0",
                  "PYTHONPATH": ""}
    trees = {"today": extract_commit(baseline, work / "baseline"), "new": ROOT}
    results: dict[str, dict[str, list]] = {name: {c.name: [] for c in clips} for name in trees}
    with ExitStack() as stack:
        clients = {}
        for name, tree in trees.items():
            port = free_port()
            env = {**env_common, "PORT": str(port), "STORE_PATH": str(work / f"{name}.db"),
                   "FEEDBACK_DIR": str(work / f"{name}-feedback"), "PYTHONPATH": str(tree)}
            url, _ = stack.enter_context(serve([sys.executable, str(tree / "app.py")], port, env, work / f"{name}.log",
                                               timeout_s=300, ready_paths=("/healthz", "/config")))
            clients[name] = Client(url + "/", verbose=False)
        for clip in clips:  # one warm-up each (first MediaPipe graph, first plotly import)
            for client in clients.values():
                one_upload(client, fresh_copy(clip, work, 999))
        for i in range(runs):
            for clip in clips:
                order = list(clients) if i % 2 == 0 else list(clients)[::-1]
                for name in order:
                    wall, stages = one_upload(clients[name], fresh_copy(clip, work, i))
                    landmarks = sum(v for k, v in stages.items() if k in LANDMARK_STAGES) / 1000
                    results[name][clip.name].append({"wall": wall, "landmarks": landmarks, "stages": stages})
                    print(f"{name:5s} {clip.name:18s} wall {wall:5.2f} s  landmarks {landmarks:5.2f} s", flush=True)
    return results


def summarise(results: dict) -> list[dict]:
    rows = []
    for name, by_clip in results.items():
        for clip, runs in by_clip.items():
            walls = sorted(r["wall"] for r in runs)
            rest = sorted(r["wall"] - r["landmarks"] for r in runs)
            render = [r["stages"].get("render", 0.0) / 1000 for r in runs]
            rows.append({"path": name, "clip": clip, "n": len(runs), "wall_median": statistics.median(walls),
                         "wall_max": walls[-1], "landmarks_median": statistics.median(r["landmarks"] for r in runs),
                         "rest_median": statistics.median(rest), "render_median": statistics.median(render)})
    return rows


def markdown(rows: list[dict], command: str, baseline: str, load: tuple[float, float]) -> str:
    lines = [
        "## Demo: upload to answer (a 2-second clip through the page)",
        "",
        f"`{command}` — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPU cores shared with other work "
        f"(1-min load average {load[0]:.2f} at the start, {load[1]:.2f} at the end), the bundle in models/. "
        f"Today = `{baseline}` (the UI before the rework), "
        "new = this tree; both served by `python app.py` at the same time, requests alternating. Wall = "
        "gradio_client `predict(handle_file(clip), api_name='/recognise_video')` until the whole answer and its "
        "files are back; landmarks = the server's decode + MediaPipe stage; rest = wall - landmarks (upload, "
        "overlay, preview, engine, Gradio, transfer).",
        "",
        "| path | clip | runs | wall median s | wall max s | landmarks median s | rest median s | overlay render median s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['path']} | {r['clip']} | {r['n']} | {r['wall_median']:.2f} | {r['wall_max']:.2f} | "
                     f"{r['landmarks_median']:.2f} | {r['rest_median']:.2f} | {r['render_median']:.2f} |")
    lines += ["", "Target: a 2-second upload answers in <= 2 s wall on 2 cores."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", default=BASELINE, help="commit of today's UI")
    parser.add_argument("--clips", nargs="*", default=list(CLIPS))
    parser.add_argument("--update-md", action="store_true")
    args = parser.parse_args(argv)
    clips = [ROOT / c for c in args.clips]
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="signseek-bench-demo-") as tmp:
        results = run(args.runs, args.baseline, clips, Path(tmp))
    rows = summarise(results)
    for r in rows:
        print(r)
    if args.update_md:
        command = "python -m benchmarks.bench_demo " + " ".join(argv or [])
        update_section(MD_START, MD_END, markdown(rows, command.strip(), args.baseline, (load_start, os.getloadavg()[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
