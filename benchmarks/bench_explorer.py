"""Explorer: the Overview page cold on the full traduttore-asl signs.npz (3,958 clips), and UMAP.

    python -m benchmarks explorer
    python -m benchmarks explorer -- --baseline 34dd6d8 --umap --update-md

Each measurement runs in a fresh Python process (cold: no cache, nothing imported), under
Streamlit's AppTest, which runs the page script exactly as `streamlit run` does: the time is
from the process start to the Overview page fully computed, and the peak RSS is the process's
(ru_maxrss). ``--baseline REF`` measures the explorer of another commit (git archive of its
explorer/ over this checkout's signseek/ and models/) in the same run, for a side-by-side figure.
``--umap`` times Embeddings with UMAP on every clip (the first UMAP call compiles numba code).
Targets (issue 12): Overview <= 20 s cold on 2 cores, peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.report import update_section

ROOT = Path(__file__).resolve().parent.parent
MD_START, MD_END = "<!-- explorer:start -->", "<!-- explorer:end -->"
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "traduttore-asl" / "signs.npz"
TARGET_S, TARGET_RSS_MB = 20.0, 1536.0

CHILD = r"""
import json, os, resource, sys, time
start = time.perf_counter()
root, page, method = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, root)
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(os.path.join(root, "explorer", "app.py"), default_timeout=1800)
at.run()
first = time.perf_counter() - start
if page != "overview":
    at.switch_page(f"views/{page}.py").run()
    if method:
        at.radio(key="emb_method").set_value(method).run()
problems = [str(e.value)[:300] for e in at.exception] + [str(e.value)[:300] for e in at.error]
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - start, "overview_seconds": first,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
                  "problems": problems}))
"""


def run_child(root: Path, data: Path, bundle: Path, page: str = "overview", method: str = "") -> dict:
    env = {**os.environ, "SIGNSEEK_EXPLORER_DATA": str(data), "SIGNSEEK_EXPLORER_BUNDLE": str(bundle),
           "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), page, method], cwd=root, env=env,
                          capture_output=True, text=True, timeout=3600, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the measurement failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def baseline_tree(ref: str, into: Path) -> Path:
    """A tree with ``ref``'s explorer/ beside this checkout's signseek/, models/ and sample_dataset/."""
    archive = subprocess.run(["git", "archive", ref, "explorer"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    for name in ("signseek", "models", "sample_dataset", "trainer"):
        (into / name).symlink_to(ROOT / name)
    return into


def markdown(rows: list[dict], command: str, load: float) -> str:
    lines = [
        "## Explorer: Overview cold on the full signs.npz",
        "",
        f"Measured {dt.date.today().isoformat()} with `{command}` on this machine ({os.cpu_count()} cores; "
        f"load average at the start {load:.1f}: wall times on a busy machine overstate, the CPU "
        "time is what the work costs). Fresh process each, Streamlit's AppTest "
        "running the page as `streamlit run` does; time from process start to the page computed; peak RSS "
        f"of the process. Targets: <= {TARGET_S:.0f} s, <= {TARGET_RSS_MB / 1024:.1f} GB, progress shown for "
        "anything over 2 s.",
        "",
        "| explorer | page | wall time | of which Overview | CPU time (user + sys) | peak RSS | problems |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['explorer']} | {r['page']} | {r['seconds']:.1f} s | {r['overview_seconds']:.1f} s | "
                     f"{r['cpu_seconds']:.1f} s | {r['peak_rss_mb']:.0f} MB | {len(r['problems']) or 'none'} |")
    lines += [
        "",
        "What changed: clips are recognised 256 at a time (`Engine.recognize_many`) with a progress bar, "
        "instead of building every clip's canonical [T, 543, 3] array at once (515 MB for this file); "
        "embeddings for the projection are computed only by the pages that draw them (they were computed on "
        "every page load, a second full encoder pass); the Overview no longer runs the trainer's evaluation "
        "(a third pass, and torch); ONNX Runtime uses both cores for the explorer's batches. UMAP runs 200 "
        "epochs with a progress bar; its first call in a process compiles numba code.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--bundle", type=Path, default=ROOT / "models")
    parser.add_argument("--baseline", default="", help="a git ref whose explorer/ to measure beside this one")
    parser.add_argument("--umap", action="store_true", help="also time Embeddings with UMAP on every clip")
    parser.add_argument("--update-md", action="store_true")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"no dataset at {args.data}: give --data", file=sys.stderr)
        return 2
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="signseek-bench-explorer-") as tmp:
        trees = [("this checkout", ROOT)]
        if args.baseline:
            trees.append((f"`{args.baseline}` (before)", baseline_tree(args.baseline, Path(tmp))))
        for name, root in trees:
            result = run_child(root, args.data, args.bundle)
            rows.append({"explorer": name, "page": "Overview", **result})
            print(json.dumps(rows[-1]), flush=True)
        if args.umap:
            for name, root in trees:
                result = run_child(root, args.data, args.bundle, "embeddings", "UMAP")
                rows.append({"explorer": name, "page": "Embeddings, UMAP of every clip", **result})
                print(json.dumps(rows[-1]), flush=True)
    if args.update_md:
        command = "python -m benchmarks explorer -- " + " ".join(argv or sys.argv[1:])
        update_section(MD_START, MD_END, markdown(rows, command.strip(), load))
    ours = rows[0]
    return 0 if ours["seconds"] <= TARGET_S and ours["peak_rss_mb"] <= TARGET_RSS_MB and not ours["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
