"""Score a bundle on a labelled data file, through the code that serves it (signseek.ranker).

    python -m trainer evaluate --bundle models --data traduttore-asl/signs.npz --split test --json
    python -m trainer evaluate --bundle artifacts/fewshot_bundle --data traduttore-asl/signs.npz \
        --protocol fewshot --shots 3 --seed 0 --labels heldout --json
    python -m trainer evaluate --bundle artifacts/fewshot_bundle --data traduttore-asl/signs.npz \
        --protocol openset --split test --negatives negatives.npz --json
    python -m trainer evaluate --bundle models --data new_signs.npz --protocol enrol --shots 3 --json

The protocols are `signseek.evaluation`'s (numpy + ONNX Runtime; the explorer and the benchmarks
call the same functions); this module is their command line, the reports and the export-time
calibration grid.
  closed   queries = FILE's clips (optionally only the `--split` sessions of the training config's
           session split); references = the bundle's. Queries whose label has no reference are
           left out (counted in n_skipped).
  fewshot  enrol `--shots` clips per label from FILE (seeded), query the rest, ignore the bundle's
           references. `--labels heldout` keeps only labels the encoder never trained on
           (class-disjoint). DTW-1NN and Euclidean-1NN run on the same split for comparison.
  openset  known = FILE's clips of the bundle's signs in the `--split` sessions (default test);
           unknown = FILE's clips of labels the references lack, plus `--negatives FILE` (e.g.
           other-language clips); a 1:1 known:unknown mix, idle clips left out. AUROC and
           FPR@95%TPR of the unknown-score, and what the served rule does: known accept, precision,
           unknown accept per group with a 95% interval, ECE and the reliability bins.
  enrol    FILE's labels the bundle lacks (or `--labels`) enrolled with `--shots` clips each on
           top of the bundle's references, as the product does; their other clips, the same clips
           mirrored (a left-handed signer) and the bundle's signs' `--split` clips queried, before
           and after.

Metrics (JSON, last stdout line with --json):
  top1, top5, mrr      the served ranking (cosine + DTW re-rank)
  encoder_top1/5, encoder_mrr   cosine only
  ret_at_1             query -> nearest reference instance by cosine has the right label
  inst_at_1            query -> nearest *other query* by cosine has the right label
  proto_top1           nearest label prototype (mean reference embedding)
  pos_sim / neg_sim    mean cosine of a query to same-label / other-label references
  dtw_1nn_top1, euclid_1nn_top1 (+ top5)   the baselines on the same split (normalised features)
With --out DIR: confusion.csv/.png, per_class.csv/.json and metrics.json of the served pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signseek.datasets.clips import ClipSet, load_clips
from signseek.engine import ReferenceSet
from signseek.engine import dtw as dtw_mod
from signseek.evaluation import Evaluation, Scored, score
from signseek.metrics import ranking_metrics
from signseek.ranker import Ranker

from .data import DataError


def write_reports(out_dir: Path, truth: Sequence[str], predicted: Sequence[str], metrics: dict) -> None:
    import csv

    out_dir.mkdir(parents=True, exist_ok=True)
    labels = sorted(set(truth) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    with open(out_dir / "confusion.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["true\\predicted", *labels])
        for label, row in zip(labels, matrix, strict=True):
            writer.writerow([label, *row.tolist()])
    report = []
    for label in labels:
        i = index[label]
        tp, support, predicted_n = matrix[i, i], matrix[i].sum(), matrix[:, i].sum()
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report.append({"label": label, "support": int(support), "precision": float(precision),
                       "recall": float(recall), "f1": float(f1)})
    with open(out_dir / "per_class.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(report[0]))
        writer.writeheader()
        writer.writerows(report)
    (out_dir / "per_class.json").write_text(json.dumps(report, indent=1))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(5.0, 0.3 * len(labels))
    fig, ax = plt.subplots(figsize=(size, size))
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"top-1 {metrics.get('top1', float('nan')):.3f}")
    fig.tight_layout()
    fig.savefig(out_dir / "confusion.png", dpi=120)
    plt.close(fig)


def _select_labels(ev: Evaluation, labels: str) -> list[str] | None:
    if labels == "heldout":
        held = ev.bundle.config.get("heldout_labels") or []
        if not held:
            raise DataError(f"{ev.bundle.directory} records no held-out labels (train with holdout_label_fraction > 0)")
        return list(held)
    if labels != "all":
        return [x.strip() for x in labels.split(",") if x.strip()]
    return None


def load_negatives(ev: Evaluation, path: str | Path) -> ClipSet:
    """Clips that are none of the bundle's signs, whatever their own labels say (e.g. 'yo', or a
    'hello' of another sign language): labelled `negative:<label>` so no label can match."""
    clips = ev.load(path)
    clips.labels = np.array([f"negative:{x}" for x in clips.labels])
    return clips


def run_evaluation(
    bundle_dir: str | Path = "models",
    data: str | Path = "",
    protocol: str = "closed",
    shots: int = 1,
    seed: int = 0,
    split: str = "all",
    labels: str = "all",
    out_dir: str | Path | None = None,
    with_dtw: bool = True,
    quiet: bool = False,
    negatives: str | Path | None = None,
) -> dict:
    ev = Evaluation.from_bundle(bundle_dir)
    keep_labels = _select_labels(ev, labels)
    clips = ev.load(data, keep_labels)
    ref_labels = set(ev.references.labels)
    result: dict = {"protocol": protocol, "bundle": str(bundle_dir), "data": str(data), "split": split,
                    "labels": labels}
    if protocol == "openset":
        split = "test" if split == "all" else split
        result["split"] = split
        in_refs = np.isin(clips.labels, sorted(ref_labels))
        known = clips.subset(np.intersect1d(ev.split(clips)[split], np.flatnonzero(in_refs)))
        unknown = clips.subset(np.flatnonzero(~in_refs))
        neg = load_negatives(ev, negatives) if negatives else None
        if len(known) == 0 or (len(unknown) == 0 and (neg is None or len(neg) == 0)):
            raise DataError("openset needs known clips (the bundle's signs in --split) and unknown ones "
                            "(labels the bundle lacks in --data, or --negatives FILE)")
        metrics, _ = ev.openset(known, unknown if len(unknown) else None, neg)
        result.update(metrics)
        result["rule"] = {k: getattr(ev.settings, k) for k in RULE_SETTINGS}
        return result
    if split != "all":
        clips = clips.subset(ev.split(clips)[split])
    if len(clips) == 0:
        raise DataError(f"no clips left in {data} after --split {split} --labels {labels}")
    if protocol == "closed":
        out = ev.closed_set(clips, with_dtw)
    elif protocol == "fewshot":
        out = ev.fewshot(clips, shots, seed, with_dtw)
    elif protocol == "enrol":
        all_clips = ev.load(data)
        new_mask = ~np.isin(clips.labels, sorted(ref_labels))
        new = clips.subset(np.flatnonzero(new_mask))
        if len(new) == 0:
            raise DataError("enrol needs labels the bundle does not have (pick them with --labels)")
        ship_split = ev.split(all_clips)["test"]
        shipped = all_clips.subset([i for i in ship_split if all_clips.labels[i] in ref_labels
                                    and all_clips.labels[i] not in ev.idle_labels])
        mirrored = load_clips(data, ev.feature_config, sorted(set(new.labels)), mirror=True)
        mirrored = mirrored.subset(np.flatnonzero(np.isin(mirrored.ids, new.ids)))
        result.update(ev.enrol(new, shipped, shots, seed, mirrored))
        return result
    else:
        raise DataError(f"unknown protocol {protocol!r}")
    served: Scored = out.pop("served")
    result.update(out)
    if out_dir:
        write_reports(Path(out_dir), served.truth.tolist(), [r.labels[0] for r in served.rankings], result)
    return result


RULE_SETTINGS = ("SIM_THRESHOLD", "CATEGORY_SIM_OFFSET", "UNKNOWN_SCALE", "MARGIN_WEIGHT", "MIN_CONFIDENCE", "CONFIDENCE_TEMPERATURE",
                 "SIM_MARGIN", "PROTOTYPE_CHECK", "DTW_WEIGHT", "DTW_SCALE")


# ---------------------------------------------------------------------------- calibration

DTW_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DTW_SCALES = (0.25, 0.5, 1.0, 2.0)
MIXES = (0.0, 0.5, 1.0, 1.5, 2.0)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def calibrate_blend(
    stats, fcfg, episodes: list[tuple[tuple, tuple]], mixes=MIXES, settings=None,
) -> dict:
    """Grid-search the fixed-view mix (HybridEncoder) and the engine's DTW blend (DTW_WEIGHT,
    DTW_SCALE) for served top-1, averaged over enrolment episodes, ranking through the
    `signseek.ranker.Ranker` that serves.

    Each episode is (enrol, query), each of them (prepared features, labels, learned embeddings,
    fixed embeddings). The trainer never passes the held-out test labels: it calibrates on the
    few-shot validation labels, or on seen labels (train-session enrolment, validation sessions queried).
    """
    from signseek.settings import Settings

    settings = settings or Settings(_env_file=None)
    scores: dict[tuple, list[float]] = {}
    for (enrol_feats, enrol_labels, enrol_learned, enrol_fixed), query in episodes:
        query_feats, query_labels, query_learned, query_fixed = query
        normalised = [stats.apply(f) for f in query_feats]
        # DTW does not depend on the grid: one query x reference matrix serves every grid point.
        ref_norm = [stats.apply(f) for f in enrol_feats]
        dtw_matrix = np.stack([dtw_mod.distances(q, ref_norm, settings.DTW_BACKEND, settings.DTW_WINDOW)
                               for q in normalised])
        for mix in mixes:
            refs = ReferenceSet(_unit(enrol_learned + mix * enrol_fixed), list(enrol_labels), None,
                                [np.asarray(f, np.float32) for f in enrol_feats])
            query_emb = _unit(query_learned + mix * query_fixed)
            for weight in DTW_WEIGHTS:
                for scale in DTW_SCALES if weight > 0 else (settings.DTW_SCALE,):
                    tuned = settings.model_copy(update={"DTW_WEIGHT": weight, "DTW_SCALE": scale})
                    ranked = score(Ranker(refs, tuned, stats), query_emb, None,
                                   query_labels, dtw_distances=dtw_matrix if weight > 0 else None)
                    top1 = ranking_metrics(ranked.ranked_labels(), list(query_labels))["top1"]
                    scores.setdefault((mix, weight, scale), []).append(top1)
    grid = [{"mix": m, "DTW_WEIGHT": w, "DTW_SCALE": sc, "top1": float(np.mean(v))} for (m, w, sc), v in scores.items()]
    best = max(grid, key=lambda g: (round(g["top1"], 6), -g["DTW_WEIGHT"], -g["mix"]))
    n_queries = sum(len(query[0]) for _, query in episodes)
    return {"best": best, "grid": grid, "n_episodes": len(episodes), "n_queries": n_queries}
