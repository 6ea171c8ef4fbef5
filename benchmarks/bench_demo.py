"""Upload to answer in the demo: a 2-second clip through the page's own route, today's path vs this one.

Two servers run side by side (`python app.py`): one from a baseline commit (``--baseline``,
default the demo as it was before the answer-first change, extracted with `git archive` into a
temporary folder, sharing this venv) and one from the working tree. Each run uploads a fresh copy
of a real clip (a different file each time: the UI caches landmarks by file content) through
gradio_client's `/recognise_video`, alternating between the two servers so both see the same
machine load, and records three times from the moment the upload starts:

- first progress: the first progress message the page would show ("Finding hands and body ...");
- verdict: the first update that carries the answer (the page shows the verdict, the closest
  signs and the chart then; today's path sends one update, so verdict = everything);
- everything: the last update, the skeleton overlay included and downloaded.

The server's own stage timings split the wall time into landmarks (decode + MediaPipe: the speed
issue's part) and the rest.

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
BASELINE = "d00f67a"  # main before the answer-first change (2026-12-01): one update, overlay drawn first
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


def one_upload(client, path: Path) -> dict:
    """Upload ``path`` and time it: first progress message, first update (the verdict), last update."""
    from gradio_client import handle_file

    start = time.perf_counter()
    job = client.submit(handle_file(str(path)), api_name="/recognise_video")
    progress = verdict = None
    while not job.done():
        now = time.perf_counter() - start
        if progress is None and (job.status().progress_data or []):
            progress = now
        if verdict is None and job.outputs():
            verdict = now
        time.sleep(0.005)
    out = job.result()
    wall = time.perf_counter() - start
    timings = out[4] if isinstance(out[4], dict) and "headers" in out[4] else out[5]  # old / new output order
    stages = {row[0]: float(row[1]) for row in timings["data"]}
    verdict = wall if verdict is None else verdict
    return {"wall": wall, "verdict": verdict, "progress": progress, "stages": stages,
            "updates": len(job.outputs()), "label": _answer(out[6])}


def _answer(raw) -> str:
    """The answer in a word: the sign, or "rejected (reason)"."""
    if not isinstance(raw, dict):
        return "?"
    return str(raw["label"]) if raw.get("accepted") else f"rejected ({raw.get('rejection_reason') or raw.get('error')})"


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
            # Its own Gradio cache: an upload lands at a path made from its bytes, and a Gradio app deletes the
            # files it received when it stops, so servers sharing /tmp/gradio delete each other's uploads.
            env = {**env_common, "PORT": str(port), "STORE_PATH": str(work / f"{name}.db"),
                   "FEEDBACK_DIR": str(work / f"{name}-feedback"), "PYTHONPATH": str(tree),
                   "GRADIO_TEMP_DIR": str(work / f"{name}-gradio")}
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
                    timed = one_upload(clients[name], fresh_copy(clip, work, i))
                    timed["landmarks"] = sum(v for k, v in timed["stages"].items() if k in LANDMARK_STAGES) / 1000
                    results[name][clip.name].append(timed)
                    shown = "-" if timed["progress"] is None else f"{timed['progress']:.2f}"
                    print(f"{name:5s} {clip.name:18s} progress {shown:>5s} s  verdict {timed['verdict']:5.2f} s  "
                          f"everything {timed['wall']:5.2f} s  landmarks {timed['landmarks']:5.2f} s  "
                          f"updates {timed['updates']}  answer {timed['label']}", flush=True)
    return results


def summarise(results: dict) -> list[dict]:
    rows = []
    for name, by_clip in results.items():
        for clip, runs in by_clip.items():
            walls = sorted(r["wall"] for r in runs)
            verdicts = sorted(r["verdict"] for r in runs)
            progress = [r["progress"] for r in runs if r["progress"] is not None]
            rows.append({
                "path": name, "clip": clip, "n": len(runs),
                "progress_median": statistics.median(progress) if progress else None,
                "verdict_median": statistics.median(verdicts), "verdict_max": verdicts[-1],
                "wall_median": statistics.median(walls), "wall_max": walls[-1],
                "landmarks_median": statistics.median(r["landmarks"] for r in runs),
                "verdict_rest_median": statistics.median(r["verdict"] - r["landmarks"] for r in runs),
                "render_median": statistics.median(r["stages"].get("render", 0.0) / 1000 for r in runs),
                "answers": sorted({str(r["label"]) for r in runs}),
            })
    return rows


def markdown(rows: list[dict], command: str, baseline: str, load: tuple[tuple, tuple]) -> str:
    def fmt(load_avg: tuple) -> str:
        return "/".join(f"{x:.2f}" for x in load_avg)

    lines = [
        "## Demo: upload to answer (a 2-second clip through the page)",
        "",
        f"`{command}` — {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPU cores shared with other "
        f"engineers' work (load average 1/5/15 min {fmt(load[0])} at the start, {fmt(load[1])} at the end), "
        f"the bundle in models/. Today = `{baseline}` (one update: the overlay is drawn before anything is "
        "sent), new = this tree (the verdict is sent as soon as the engine answers, the overlay in a second "
        "update); both served by `python app.py` at the same time, requests alternating, a fresh copy of the "
        "clip each time (no cached landmarks). Times from the start of gradio_client's "
        "`submit(handle_file(clip), api_name='/recognise_video')`: progress = the first progress message; "
        "verdict = the first update (what the page shows the answer with); everything = the last update with "
        "its files downloaded (the overlay); landmarks = the server's decode + MediaPipe stage (the speed "
        "issue's part); rest = verdict - landmarks (upload, probing, engine, Gradio, transfer).",
        "",
        "| path | clip | runs | first progress s | verdict median s | verdict max s | everything median s | "
        "everything max s | landmarks median s | rest to verdict median s | overlay render median s | answer |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        progress = "-" if r["progress_median"] is None else f"{r['progress_median']:.2f}"
        lines.append(f"| {r['path']} | {r['clip']} | {r['n']} | {progress} | {r['verdict_median']:.2f} | "
                     f"{r['verdict_max']:.2f} | {r['wall_median']:.2f} | {r['wall_max']:.2f} | "
                     f"{r['landmarks_median']:.2f} | {r['verdict_rest_median']:.2f} | {r['render_median']:.2f} | "
                     f"{', '.join(r['answers'])} |")
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
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="signseek-bench-demo-") as tmp:
        results = run(args.runs, args.baseline, clips, Path(tmp))
    load_end = os.getloadavg()
    rows = summarise(results)
    for r in rows:
        print(r)
    print(f"load average at the start {load_start}, at the end {load_end}")
    if args.update_md:
        command = "python -m benchmarks.bench_demo " + " ".join(argv if argv is not None else sys.argv[1:])
        update_section(MD_START, MD_END, markdown(rows, command.strip(), args.baseline, (load_start, load_end)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
