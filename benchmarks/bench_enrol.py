"""Enrolment that wins: new signs added on top of a bundle's references, as the product does.

    python -m benchmarks enrol -- --bundle artifacts/fewshot_bundle_cf [--update-md]
    python -m benchmarks enrol -- --bundle models --new-data artifacts/external/mpdata_external.npz [--update-md]

On a few-shot study bundle the new signs are its held-out test labels (the encoder never saw
them): k = 1, 3, 5 clips each (seeds 0-2) enrolled on top of the bundle's references, their other
clips, the same clips mirrored (a left-handed signer) and the bundle's signs' held-out sittings
queried (`signseek.evaluation.Evaluation.enrol`). Side by side: the served rule, and the same
bundle with the opt-in few-references bonus (FEW_REFS_WEIGHT 0.04, the value enrolling the
validation labels chose): new signs win more often, and take shipped signs' answers when they are
near twins of them.

With ``--new-data`` (any bundle, e.g. the shipped `models/`): the new signs are that file's labels
the bundle does not know (idle-like clips left out), enrolled signer by signer as a team would: for
each signer, k clips of each of their signs on top of the bundle's references, their other clips
(at most 20 a sign) and the same clips mirrored queried. The shipped signs' held-out sittings are
queried before and after enrolling every signer's signs at once (each named sign@signer).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.report import update_section
from signseek.datasets.clips import load_clips
from signseek.datasets.errors import DatasetError
from signseek.datasets.splits import few_shot_episode
from signseek.evaluation import Evaluation, score
from signseek.labels import IDLE_LABELS
from signseek.metrics import ranking_metrics

MD_START, MD_END = "<!-- enrol:start -->", "<!-- enrol:end -->"
BY_SIGNER_MARKERS = ("<!-- enrol-by-signer:start -->", "<!-- enrol-by-signer:end -->")
OPT_IN_FEW_REFS = 0.04  # what enrolling the study's validation labels chose (fit_density_weight, 2026-12-01)
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
    served = ev.settings
    for rule, update in ((f"served (FEW_REFS_WEIGHT {served.FEW_REFS_WEIGHT})", {}),
                         (f"opt-in FEW_REFS_WEIGHT {OPT_IN_FEW_REFS}", {"FEW_REFS_WEIGHT": OPT_IN_FEW_REFS})):
        ev.settings = served.model_copy(update=update)
        for k in shots:
            runs = [ev.enrol(new, shipped, k, seed, mirrored) for seed in seeds]
            rows.append({"rule": rule, "shots": k, **{key: float(np.mean([r[key] for r in runs])) for key in KEYS}})
    return {"bundle": bundle, "rows": rows, "n_new_labels": len(labels), "seeds": list(seeds),
            "n_shipped_queries": len(shipped)}


def run_by_signer(bundle: str, new_data: str, shots=(1, 3, 5), seeds=(0,), max_queries: int = 20) -> dict:
    ev = Evaluation.from_bundle(bundle)
    known = set(ev.references.labels)
    clips = ev.load(new_data)
    idle_like = _column(new_data, "idle_like", clips.ids)
    new = clips.subset(np.flatnonzero(~np.isin(clips.labels, sorted(known)) & ~idle_like))
    mirrored = load_clips(new_data, ev.feature_config, mirror=True)
    mirrored = mirrored.subset(np.flatnonzero(np.isin(mirrored.ids, new.ids)))  # same file order as new
    if not np.array_equal(mirrored.ids, new.ids):
        raise SystemExit(f"{new_data}: the mirrored clips do not line up with the clips (repeated ids?)")
    e_new, n_new = ev.embed(new)
    e_mir, n_mir = ev.embed(mirrored)
    data = (ev.bundle.config.get("training") or {}).get("data", "traduttore-asl/signs.npz")
    everything = ev.load(data)
    shipped = everything.subset([i for i in ev.split(everything)["test"]
                                 if everything.labels[i] in known - set(IDLE_LABELS)])
    e_ship, n_ship = ev.embed(shipped)
    def shipped_top1(ranker) -> float:
        return ranking_metrics(score(ranker, e_ship, n_ship, shipped.labels).ranked_labels(), shipped.labels)["top1"]

    before = shipped_top1(ev.ranker())
    rows = []
    for k in shots:
        for seed in seeds:
            counts = {"new": 0, "right": 0, "accepted_right": 0, "accepted_wrong": 0, "mirrored_right": 0}
            signers, enrolled = 0, []
            for signer in np.unique(new.sessions):
                mine = np.flatnonzero(new.sessions == signer)
                try:
                    episode = few_shot_episode(new.labels[mine], k, seed, max_queries_per_label=max_queries)
                except DatasetError:  # no sign of this signer has more than k clips
                    continue
                signers += 1
                refs_idx, q = mine[episode.references], mine[episode.queries]
                part = ev.references_from(new, refs_idx, e_new)
                enrolled.append((part, signer))
                ranker = ev.ranker(ev.references.concat(part))
                got = score(ranker, e_new[q], [n_new[i] for i in q], new.labels[q])
                mir = score(ranker, e_mir[q], [n_mir[i] for i in q], new.labels[q])
                right = got.top == new.labels[q]
                counts["new"] += len(q)
                counts["right"] += int(right.sum())
                counts["accepted_right"] += int((got.accepted & right).sum())
                counts["accepted_wrong"] += int((got.accepted & ~right).sum())
                counts["mirrored_right"] += int((mir.top == new.labels[q]).sum())
            union = ev.references
            for part, signer in enrolled:
                part.labels = [f"{x}@{signer}" for x in part.labels]
                union = union.concat(part)
            after = shipped_top1(ev.ranker(union))
            n = max(counts["new"], 1)
            rows.append({"shots": k, "seed": seed, "signers": signers, "new_queries": counts["new"],
                         "new_signs": len({(lab, s) for lab, s in zip(new.labels, new.sessions, strict=True)}),
                         "new_top1": counts["right"] / n, "new_accept": counts["accepted_right"] / n,
                         "new_accept_wrong": counts["accepted_wrong"] / n, "mirrored_top1": counts["mirrored_right"] / n,
                         "shipped_before_top1": before, "shipped_after_top1": after,
                         "shipped_top1_change": after - before, "enrolled_at_once": sum(len(set(p.labels)) for p, _ in enrolled)})
    return {"bundle": bundle, "new_data": new_data, "rows": rows, "n_shipped_queries": len(shipped),
            "max_queries": max_queries}


def _column(path: str, name: str, ids: np.ndarray) -> np.ndarray:
    """A boolean extra column of a dataset file, aligned with ``ids`` (False where absent)."""
    from signseek.datasets.container import SignDataset

    ds = SignDataset.load(path)
    values = dict(zip(np.asarray(ds.ids).astype(str), np.asarray(ds.extra.get(name, np.zeros(len(ds.ids), bool)),
                                                                 bool), strict=True))
    return np.array([values.get(str(i), False) for i in ids], dtype=bool)


def markdown_by_signer(result: dict, command: str) -> str:
    lines = [f"## Enrolment on top of the shipped bundle, signer by signer ({time.strftime('%Y-%m-%d')})", "",
             f"`{command}`: the signs of `{result['new_data']}` that `{result['bundle']}` does not know, enrolled "
             f"signer by signer on top of its references (k clips a sign; at most {result['max_queries']} other clips "
             f"a sign queried, and the same clips mirrored); {result['n_shipped_queries']} held-out clips of the "
             "bundle's own signs queried before and after enrolling every signer's signs at once.", "",
             "| k | seed | signers | signs | queries | new-sign top-1 | accepted right | accepted wrong | mirrored top-1 "
             "| signs enrolled at once | shipped top-1 before | after | change |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['shots']} | {r['seed']} | {r['signers']} | {r['new_signs']} | {r['new_queries']} | "
                     f"{r['new_top1']:.3f} | {r['new_accept']:.3f} | {r['new_accept_wrong']:.3f} | "
                     f"{r['mirrored_top1']:.3f} | {r['enrolled_at_once']} | {r['shipped_before_top1']:.3f} | "
                     f"{r['shipped_after_top1']:.3f} | {r['shipped_top1_change']:+.3f} |")
    return "\n".join(lines)


def markdown(result: dict, command: str) -> str:
    lines = [f"## Enrolment on top of the shipped signs ({time.strftime('%Y-%m-%d')})", "",
             f"`{command}`: {result['n_new_labels']} signs the encoder never saw enrolled on top of "
             f"`{result['bundle']}`'s references, mean of seeds {result['seeds']}; "
             f"{result['n_shipped_queries']} held-out clips of the bundle's own signs.", "",
             "| rule | k | new-sign top-1 | new accepted right | mirrored take top-1 | shipped top-1 before | after | change |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['rule']} | {r['shots']} | {r['new_top1']:.3f} | {r['new_accept']:.3f} | "
                     f"{r['mirrored_top1']:.3f} | {r['shipped_before_top1']:.3f} | {r['shipped_after_top1']:.3f} | "
                     f"{r['shipped_top1_change']:+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="artifacts/fewshot_bundle_cf")
    parser.add_argument("--new-data", help="a dataset whose signs the bundle does not know, enrolled signer by signer")
    parser.add_argument("--update-md", action="store_true")
    args = parser.parse_args(argv)
    command = "python -m benchmarks enrol -- " + " ".join(argv or sys.argv[1:])
    if args.new_data:
        text, markers = markdown_by_signer(run_by_signer(args.bundle, args.new_data), command), BY_SIGNER_MARKERS
    else:
        text, markers = markdown(run(args.bundle), command), (MD_START, MD_END)
    print(text)
    if args.update_md:
        update_section(*markers, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
