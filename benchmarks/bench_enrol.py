"""Enrolment that wins: new signs added on top of a bundle's references, as the product does.

    python -m benchmarks enrol -- --bundle artifacts/fewshot_bundle_hs4 [--update-md]

On a few-shot study bundle the new signs are its held-out test labels (the encoder never saw
them): k = 1, 3, 5 clips each (seeds 0-2) enrolled on top of the bundle's references, their other
clips, the same clips mirrored (a left-handed signer) and the bundle's signs' held-out sittings
queried (`signseek.evaluation.Evaluation.enrol`). Side by side: the served rule, and the same
bundle with DENSITY_WEIGHT 0 (every sign scored by its best reference alone, as before).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.report import update_section
from signseek.datasets.clips import load_clips
from signseek.evaluation import Evaluation
from signseek.labels import IDLE_LABELS

MD_START, MD_END = "<!-- enrol:start -->", "<!-- enrol:end -->"
KEYS = ("new_top1", "new_accept", "mirrored_top1", "shipped_before_top1", "shipped_after_top1", "shipped_top1_change")


def run(bundle: str, shots=(1, 3, 5), seeds=(0, 1, 2)) -> dict:
    ev = Evaluation.from_bundle(bundle)
    labels = ev.bundle.config.get("heldout_labels") or []
    if not labels:
        raise SystemExit(f"{bundle} records no held-out labels: enrol needs signs its encoder never saw")
    data = (ev.bundle.config.get("training") or {}).get("data", "traduttore-asl/signs.npz")
    new = ev.load(data, labels)
    mirrored = load_clips(data, ev.feature_config, labels, mirror=True)  # the same clips, other hand
    everything = ev.load(data)
    known = set(ev.references.labels) - set(IDLE_LABELS)
    shipped = everything.subset([i for i in ev.split(everything)["test"] if everything.labels[i] in known])
    rows = []
    for weight in (ev.settings.DENSITY_WEIGHT, 0.0):
        ev.settings = ev.settings.model_copy(update={"DENSITY_WEIGHT": weight})
        for k in shots:
            runs = [ev.enrol(new, shipped, k, seed, mirrored) for seed in seeds]
            rows.append({"DENSITY_WEIGHT": weight, "shots": k,
                         **{key: float(np.mean([r[key] for r in runs])) for key in KEYS}})
    return {"bundle": bundle, "rows": rows, "n_new_labels": len(labels), "seeds": list(seeds),
            "n_shipped_queries": len(shipped)}


def markdown(result: dict, command: str) -> str:
    lines = [f"## Enrolment on top of the shipped signs ({time.strftime('%Y-%m-%d')})", "",
             f"`{command}`: {result['n_new_labels']} signs the encoder never saw enrolled on top of "
             f"`{result['bundle']}`'s references, mean of seeds {result['seeds']}; "
             f"{result['n_shipped_queries']} held-out clips of the bundle's own signs.", "",
             "| DENSITY_WEIGHT | k | new-sign top-1 | new accepted right | mirrored take top-1 | shipped top-1 before | after | change |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['DENSITY_WEIGHT']} | {r['shots']} | {r['new_top1']:.3f} | {r['new_accept']:.3f} | "
                     f"{r['mirrored_top1']:.3f} | {r['shipped_before_top1']:.3f} | {r['shipped_after_top1']:.3f} | "
                     f"{r['shipped_top1_change']:+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="artifacts/fewshot_bundle_hs4")
    parser.add_argument("--update-md", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.bundle)
    text = markdown(result, "python -m benchmarks enrol -- " + " ".join(argv or sys.argv[1:]))
    print(text)
    if args.update_md:
        update_section(MD_START, MD_END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
