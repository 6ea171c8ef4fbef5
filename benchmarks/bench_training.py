"""Training and evaluation: closed-set and class-disjoint few-shot accuracy, baselines, int8, speed.

    python -m benchmarks training                                   # print the JSON summary
    python -m benchmarks training -- --fewshot-bundle artifacts/fewshot_bundle_hs2 --seeds 0 1 2 --update-md
    python -m benchmarks.bench_training --skip-closed --shots 1 3

Measures (all through `trainer.evaluate.run_evaluation`, i.e. the engine that serves):
  closed   the shipped bundle (models/) on the held-out test sessions of signs.npz
           (`--split test`): served pipeline, encoder only, DTW-1NN, Euclidean-1NN
  fewshot  a bundle whose encoder never saw a third of the labels (configs/encoder_fewshot_handshape.yaml),
           k enrolment clips per held-out label, the rest queried; mean over seeds
  speed    seconds per training step (batch 128, two views, seq 32) on this CPU, and the
           per-epoch times recorded in the runs' history.json
  int8     the accuracy change the export measured (export_manifest.json)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path

from benchmarks.report import update_section
from signseek.paths import PROJECT_ROOT

MD_START, MD_END = "<!-- training:start -->", "<!-- training:end -->"
SIGNS = "traduttore-asl/signs.npz"
KEYS = ("top1", "encoder_top1", "dtw_1nn_top1", "euclid_1nn_top1", "top5", "mrr")


def closed_set(bundle: Path) -> dict:
    from trainer.evaluate import run_evaluation

    return run_evaluation(bundle, SIGNS, protocol="closed", split="test")


def fewshot(bundle: Path, shots: list[int], seeds: list[int]) -> dict:
    from trainer.evaluate import run_evaluation

    out = {}
    for k in shots:
        runs = [run_evaluation(bundle, SIGNS, protocol="fewshot", shots=k, seed=s, labels="heldout")
                for s in seeds]
        out[f"k{k}"] = {key: statistics.mean(r[key] for r in runs) for key in KEYS}
        out[f"k{k}"]["per_seed_top1"] = [r["top1"] for r in runs]
        out[f"k{k}"]["per_seed_dtw_1nn_top1"] = [r["dtw_1nn_top1"] for r in runs]
        out[f"k{k}"]["n_queries"] = runs[0]["n_queries"]
        out[f"k{k}"]["n_labels"] = runs[0]["n_labels"]
    return out


def step_time(steps: int = 5) -> dict:
    import torch

    from signseek.features import FeatureConfig
    from trainer.losses import nt_xent
    from trainer.models import HandShapeDescriptor, SignEncoder

    fcfg = FeatureConfig()  # the shipped encoder's shape: features + hand-shape descriptor
    model = SignEncoder(fcfg.feature_dim, fcfg.motion_column, descriptor=HandShapeDescriptor(fcfg))
    opt = torch.optim.AdamW(model.parameters())
    x, mask = torch.randn(256, fcfg.seq_len, fcfg.feature_dim), torch.ones(256, fcfg.seq_len)
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        z1, z2 = model(x, mask).chunk(2)
        loss = nt_xent(z1, z2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return {"seconds_per_step": statistics.median(times[1:]), "threads": torch.get_num_threads()}


def history(run_dir: Path) -> dict:
    path = run_dir / "history.json"
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())
    return {"epochs": len(rows), "median_epoch_s": statistics.median(r["seconds"] for r in rows),
            "best_val": max(r.get("val", 0) for r in rows)}


def to_markdown(result: dict) -> str:
    lines = ["## Training and evaluation (trainer/)", "",
             f"Measured {result['date']} on {result['machine']} with `{result['command']}`.", ""]
    if "closed" in result:
        c = result["closed"]
        lines += ["Closed set, `signs.npz`, last session of each label held out (test), shipped bundle:", "",
                  "| pipeline | top-1 | top-5 | MRR |", "| --- | --- | --- | --- |",
                  f"| served (cosine + DTW re-rank) | {c['top1']:.4f} | {c['top5']:.4f} | {c['mrr']:.4f} |",
                  f"| encoder only (cosine) | {c['encoder_top1']:.4f} | {c['encoder_top5']:.4f} | {c['encoder_mrr']:.4f} |",
                  f"| DTW-1NN | {c['dtw_1nn_top1']:.4f} | {c['dtw_1nn_top5']:.4f} | {c['dtw_1nn_mrr']:.4f} |",
                  f"| Euclidean-1NN | {c['euclid_1nn_top1']:.4f} | {c['euclid_1nn_top5']:.4f} | {c['euclid_1nn_mrr']:.4f} |",
                  "", f"{c['n_queries']} queries, {c['n_references']} references, {c['n_labels']} labels.", ""]
    if "fewshot" in result:
        lines += ["Class-disjoint few-shot (labels never seen in training), mean over seeds "
                  f"{result['seeds']}:", "", "| k | served top-1 | encoder top-1 | DTW-1NN top-1 | Euclid-1NN top-1 | served - DTW |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for name, r in result["fewshot"].items():
            lines.append(f"| {name[1:]} | {r['top1']:.4f} | {r['encoder_top1']:.4f} | {r['dtw_1nn_top1']:.4f} | "
                         f"{r['euclid_1nn_top1']:.4f} | {r['top1'] - r['dtw_1nn_top1']:+.4f} |")
        lines.append("")
    if "speed" in result:
        s = result["speed"]
        lines += [f"Training speed: {s['seconds_per_step']:.2f} s per step (batch 128 clips x 2 views, "
                  f"{s['threads']} threads, machine shared); runs: {json.dumps(result.get('runs', {}))}", ""]
    if "int8" in result:
        lines += [f"int8 (dynamic quantisation) vs fp32, encoder-only top-1 on the test sessions: "
                  f"{json.dumps(result['int8'])}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default=str(PROJECT_ROOT / "models"))
    parser.add_argument("--fewshot-bundle", default=str(PROJECT_ROOT / "artifacts" / "fewshot_bundle_hs2"))
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", nargs="*", default=["artifacts/encoder_signs", "artifacts/encoder_fewshot_hs2",
                                                       "artifacts/fingerspelling_mlp"])
    parser.add_argument("--skip-closed", action="store_true")
    parser.add_argument("--skip-fewshot", action="store_true")
    parser.add_argument("--update-md", action="store_true")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    result: dict = {"date": dt.date.today().isoformat(),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
                    "command": "python -m benchmarks.bench_training " + " ".join(argv or []),
                    "seeds": args.seeds}
    bundle = Path(args.bundle)
    if not args.skip_closed and (bundle / "export_manifest.json").exists():
        result["closed"] = closed_set(bundle)
        metrics = json.loads((bundle / "export_manifest.json").read_text()).get("metrics", {})
        result["int8"] = {k: metrics[k] for k in metrics if "int8" in k or "fp32" in k}
    if not args.skip_fewshot and (Path(args.fewshot_bundle) / "export_manifest.json").exists():
        result["fewshot"] = fewshot(Path(args.fewshot_bundle), args.shots, args.seeds)
    result["speed"] = step_time()
    result["runs"] = {name: history(PROJECT_ROOT / name) for name in args.runs}
    print(json.dumps(result, indent=1, default=float))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    if args.update_md:
        update_section(MD_START, MD_END, to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
