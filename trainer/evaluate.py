"""Score a bundle on a labelled data file, through the code that serves it (signseek.engine).

    python -m trainer evaluate --bundle models --data traduttore-asl/signs.npz --split test --json
    python -m trainer evaluate --bundle artifacts/fewshot_bundle --data traduttore-asl/signs.npz \
        --protocol fewshot --shots 3 --seed 0 --labels heldout --json

Protocols:
  closed   queries = FILE's clips (optionally only the `--split` sessions of the training config's
           session split); references = the bundle's. Queries whose label has no reference are
           left out (counted in n_skipped).
  fewshot  enrol `--shots` clips per label from FILE (seeded), query the rest, ignore the bundle's
           references. `--labels heldout` keeps only labels the encoder never trained on
           (class-disjoint). DTW-1NN and Euclidean-1NN run on the same split for comparison.

Metrics (JSON, last stdout line with --json):
  top1, top5, mrr      the served pipeline: `Engine.rank_labels(mode="full")` (cosine + DTW re-rank)
  encoder_top1/5, encoder_mrr   cosine only (`mode="encoder"`)
  ret_at_1             query -> nearest reference instance by cosine has the right label
  inst_at_1            query -> nearest *other query* by cosine has the right label (clustering of
                       the queries alone, references not involved)
  proto_top1           nearest label prototype (mean reference embedding)
  pos_sim / neg_sim    mean cosine of a query to same-label / other-label references
  dtw_1nn_top1, euclid_1nn_top1 (+ top5)   the baselines on the same split (normalised features)
With --out DIR: confusion.csv/.png, per_class.csv/.json and metrics.json of the served pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from signseek.bundle import ENCODER_ONNX, ENCODER_TS, load_bundle
from signseek.engine import Encoder, Engine, ReferenceSet
from signseek.engine import dtw as dtw_mod
from signseek.settings import resolve_settings

from .data import DataError, load_clips, session_split

RankFn = Callable[[Sequence[np.ndarray]], list[list[str]]]


def ranking_metrics(ranked: list[list[str]], truth: Sequence[str], prefix: str = "") -> dict:
    ranks = []
    for labels, label in zip(ranked, truth, strict=True):
        ranks.append(labels.index(label) + 1 if label in labels else np.inf)
    ranks = np.asarray(ranks, dtype=np.float64)
    return {
        f"{prefix}top1": float(np.mean(ranks <= 1)),
        f"{prefix}top5": float(np.mean(ranks <= 5)),
        f"{prefix}mrr": float(np.mean(np.where(np.isfinite(ranks), 1.0 / ranks, 0.0))),
    }


def rank_by_distance(dist: np.ndarray, ref_labels: Sequence[str]) -> list[list[str]]:
    """[Q, R] distances -> each query's labels, best first (a label ranks by its nearest reference)."""
    ref_labels = np.asarray(ref_labels, dtype=str)
    order = np.argsort(dist, axis=1, kind="stable")
    return [list(dict.fromkeys(ref_labels[row].tolist())) for row in order]


def euclidean_1nn(queries: list[np.ndarray], refs: list[np.ndarray], ref_labels) -> list[list[str]]:
    """Frame-aligned Euclidean distance of the (equal-length, resampled) normalised sequences."""
    q = np.stack([x.reshape(-1) for x in queries]).astype(np.float64)
    r = np.stack([x.reshape(-1) for x in refs]).astype(np.float64)
    dist = (q**2).sum(1)[:, None] + (r**2).sum(1)[None, :] - 2 * q @ r.T
    return rank_by_distance(dist, ref_labels)


def similarity_metrics(query_emb: np.ndarray, query_labels, ref_emb: np.ndarray, ref_labels) -> dict:
    query_labels, ref_labels = np.asarray(query_labels), np.asarray(ref_labels)
    sims = query_emb @ ref_emb.T
    same = query_labels[:, None] == ref_labels[None, :]
    out = {
        "ret_at_1": float(np.mean(ref_labels[sims.argmax(1)] == query_labels)),
        "pos_sim": float(sims[same].mean()) if same.any() else float("nan"),
        "neg_sim": float(sims[~same].mean()) if (~same).any() else float("nan"),
    }
    if len(query_emb) > 1:
        qq = query_emb @ query_emb.T
        np.fill_diagonal(qq, -np.inf)
        out["inst_at_1"] = float(np.mean(query_labels[qq.argmax(1)] == query_labels))
    return out


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


def fewshot_split(labels: np.ndarray, shots: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded: `shots` enrolment clips per label, the rest are queries (labels with too few clips dropped)."""
    rng = np.random.default_rng(seed)
    enrol, query = [], []
    for label in sorted(set(labels.tolist())):
        rows = np.flatnonzero(labels == label)
        if len(rows) <= shots:
            continue
        picked = rng.choice(rows, size=shots, replace=False)
        enrol.extend(picked.tolist())
        query.extend(np.setdiff1d(rows, picked).tolist())
    return np.asarray(enrol, dtype=np.int64), np.asarray(query, dtype=np.int64)


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
) -> dict:
    bundle = load_bundle(bundle_dir)
    fcfg, stats = bundle.feature_config, bundle.stats
    keep_labels = None
    if labels == "heldout":
        keep_labels = bundle.config.get("heldout_labels") or []
        if not keep_labels:
            raise DataError(f"{bundle_dir} records no held-out labels (train with holdout_label_fraction > 0)")
    elif labels != "all":
        keep_labels = [x.strip() for x in labels.split(",") if x.strip()]
    clips = load_clips(data, fcfg, labels=keep_labels)
    if split != "all":
        mode = (bundle.config.get("training") or {}).get("split", "last_session")
        clips = clips.subset(session_split(clips.labels, clips.sessions, mode)[split])
    if len(clips) == 0:
        raise DataError(f"no clips left in {data} after --split {split} --labels {labels}")

    settings, _ = resolve_settings(bundle, _env_file=None)
    encoder = Encoder.load(bundle.directory / ENCODER_ONNX, bundle.path(ENCODER_TS), False, 2)
    result: dict = {"protocol": protocol, "bundle": str(bundle_dir), "data": str(data), "split": split,
                    "labels": labels}
    if protocol == "closed":
        refs = ReferenceSet.from_bundle(bundle)
        known = np.isin(clips.labels, list(set(refs.labels)))
        result["n_skipped"] = int((~known).sum())
        queries = clips.subset(np.flatnonzero(known))
    elif protocol == "fewshot":
        enrol, query = fewshot_split(clips.labels, shots, seed)
        if len(enrol) == 0 or len(query) == 0:
            raise DataError(f"--shots {shots} leaves no queries in {data}")
        enrolled = clips.subset(enrol)
        refs = ReferenceSet.from_sequences(encoder, enrolled.features, enrolled.labels.tolist(), stats=stats)
        queries = clips.subset(query)
        result.update(shots=shots, seed=seed)
    else:
        raise DataError(f"unknown protocol {protocol!r}")
    if len(queries) == 0:
        raise DataError("no queries whose label the references know")
    engine = Engine.from_parts(encoder, stats, fcfg, refs, settings, idle_labels=bundle.idle_labels)
    truth = queries.labels.tolist()
    normalised = [stats.apply(f) for f in queries.features]
    query_emb = encoder.embed_sequences(normalised)
    served = engine.rank_embeddings(query_emb, normalised)
    result.update(ranking_metrics(served, truth))
    result.update(ranking_metrics(engine.rank_embeddings(query_emb), truth, "encoder_"))
    result.update(similarity_metrics(query_emb, truth, refs.embeddings, refs.labels))
    proto_labels, protos = refs.label_prototypes()
    result["proto_top1"] = float(np.mean(np.asarray(proto_labels)[(query_emb @ protos.T).argmax(1)] == truth))
    ref_norm = [stats.apply(f) for f in refs.features]
    if with_dtw:
        dtw_ranked = dtw_mod.nearest_labels(normalised, ref_norm, refs.labels, settings.DTW_WINDOW,
                                            settings.DTW_BACKEND)
        result.update({f"dtw_1nn_{k}": v for k, v in ranking_metrics(dtw_ranked, truth).items()})
    if len({len(f) for f in normalised + ref_norm}) == 1:
        result.update({f"euclid_1nn_{k}": v for k, v in
                       ranking_metrics(euclidean_1nn(normalised, ref_norm, refs.labels), truth).items()})
    result.update(n_queries=len(queries), n_references=len(refs), n_labels=len(set(refs.labels)),
                  dtw_window=settings.DTW_WINDOW, dtw_weight=settings.DTW_WEIGHT, dtw_top_n=settings.DTW_TOP_N)
    if out_dir:
        write_reports(Path(out_dir), truth, [r[0] for r in served], result)
    return result


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
    DTW_SCALE) for served top-1, averaged over enrolment episodes, ranking through
    `Engine.rank_embeddings`.

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
                    engine = Engine.from_parts(None, stats, fcfg, refs, tuned)
                    ranked = engine.rank_embeddings(query_emb, normalised if weight > 0 else None,
                                                    dtw_distances=dtw_matrix)
                    top1 = ranking_metrics(ranked, list(query_labels))["top1"]
                    scores.setdefault((mix, weight, scale), []).append(top1)
    grid = [{"mix": m, "DTW_WEIGHT": w, "DTW_SCALE": sc, "top1": float(np.mean(v))} for (m, w, sc), v in scores.items()]
    best = max(grid, key=lambda g: (round(g["top1"], 6), -g["DTW_WEIGHT"], -g["mix"]))
    n_queries = sum(len(query[0]) for _, query in episodes)
    return {"best": best, "grid": grid, "n_episodes": len(episodes), "n_queries": n_queries}
