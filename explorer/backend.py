"""The explorer's one link to the engine and the trainer: a dataset -> per-query records.

Every number comes from SignSeek's own code: clips are read by `signseek.datasets.npz.import_npz`,
recognised by `signseek.engine.Engine.recognize_many` (features, embedding, search, DTW re-rank,
gates: exactly what serving does, with the bundle's settings), embedded by the engine's encoder
for the projection, and summarised by the trainer's evaluator (`trainer.evaluate.run_evaluation`).
Nothing is re-implemented here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from signseek.features import prepare_sequence

from . import data

# How many ranked labels each record keeps (the nearest-references table shows them).
TOP_K = 10


def load_engine(view: data.BundleView):
    """The serving engine over the bundle, with the settings serving would use (env > bundle > defaults)."""
    from signseek.engine import Engine

    return Engine.from_bundle(view.bundle)


def _records(dataset, results, engine) -> pd.DataFrame:
    rows = []
    idle = engine.idle_labels
    sequence = dataset.extra.get("sequence", np.arange(len(dataset)))
    for i, result in enumerate(results):
        cands = result.candidates
        # The engine's top label may be an idle one ("-"): it is then rejected with reason "idle"
        # and, being idle, not among the candidates.
        if result.rejection_reason == "idle":
            pred, top1_sim = sorted(idle)[0], result.idle_similarity
        elif cands:
            pred, top1_sim = cands[0].label, cands[0].similarity
        else:  # rejected before search (no hands, low motion)
            pred, top1_sim = "", np.nan
        label = str(dataset.labels[i])
        rows.append({
            "query": i,
            "sample_id": str(dataset.ids[i]),
            "label": label,
            "session": np.asarray(dataset.signers[i]).item(),
            "sequence": int(sequence[i]),
            "pred": pred,
            "answer": result.label or "",
            "accepted": bool(result.accepted),
            "rejection_reason": "" if result.accepted else result.rejection_reason,
            "top1_sim": float(top1_sim) if top1_sim is not None else np.nan,
            "margin": float(result.margin) if result.margin is not None else np.nan,
            "proto_label": result.prototype_label or "",
            "proto_sim": float(cands[0].prototype_similarity) if cands and cands[0].prototype_similarity is not None
            else np.nan,
            "motion": float(result.motion),
            "hand_frames": int(result.hand_frames),
            "model": result.model,
            "ranked_labels": [c.label for c in cands],
            "ranked_sims": [float(c.similarity) for c in cands],
            "ranked_refs": [int(c.reference.get("index", -1)) for c in cands],
            "top1_correct": pred == label,
            # Right end to end: the sign accepted, or an idle clip not taken for a sign.
            "correct": bool(result.accepted and result.label == label) or (label in idle and not result.accepted),
        })
    records = pd.DataFrame(rows)
    records["outcome"] = [
        data.outcome(a, t, c)
        for a, t, c in zip(records["accepted"], records["top1_correct"], records["correct"], strict=True)
    ]
    return records


def evaluate(view: data.BundleView, path: Path, engine=None, dataset=None) -> data.Evaluation:
    dataset = dataset if dataset is not None else data.load_dataset(path)
    if len(dataset) == 0:
        raise data.ExplorerError(f"{path} holds no clips")
    engine = engine or load_engine(view)
    points = [dataset.points(i) for i in range(len(dataset))]
    k = min(TOP_K, len(set(engine.references.labels)))
    results = engine.recognize_many(points, top_k=k)
    prepared = [prepare_sequence(p, engine.feature_config) for p in points]
    normalised = [engine.stats.apply(p) for p in prepared]
    embeddings = engine.encoder.embed_sequences(normalised)
    records = _records(dataset, results, engine)
    # The ranking's top-1 without gates (what the trainer's top-1 and per-class report score): the
    # engine's top label wherever it searched the references; clips stopped by the input gates or
    # answered by a hands-only classifier are ranked here.
    records["ranked_top1"] = records["pred"]
    gated = np.flatnonzero((records["rejection_reason"].isin(data.INPUT_REASONS)
                            | (records["model"] != "encoder")).to_numpy())
    if len(gated):
        ranked = engine.rank_embeddings(embeddings[gated], [normalised[i] for i in gated], k=1)
        records.loc[gated, "ranked_top1"] = [r[0] for r in ranked]
    labels = list(dict.fromkeys([*sorted(set(engine.references.labels)), *sorted(set(records["label"]))]))
    return data.Evaluation(records, embeddings, labels)


def trainer_evaluation(view: data.BundleView, path: Path) -> data.TrainerReport:
    """The trainer's closed-protocol evaluation of this bundle on this file: its metrics and its
    per-class report (trainer.evaluate.run_evaluation, as `python -m trainer evaluate` runs it).

    The DTW-1NN baseline is skipped (all queries x all references: minutes on the full set).
    Without the trainer's dependencies (torch) the explorer still works, without these numbers.
    """
    try:
        from trainer.evaluate import run_evaluation
    except ImportError as exc:
        return data.TrainerReport(note=f"the trainer is not importable here ({exc}); install the train extra")
    with tempfile.TemporaryDirectory(prefix="signseek-explorer-") as tmp:
        try:
            metrics = run_evaluation(bundle_dir=view.directory, data=path, with_dtw=False, quiet=True, out_dir=tmp)
        except Exception as exc:  # the trainer's DataError and friends: show why, keep the pages
            return data.TrainerReport(note=f"the trainer's evaluation failed: {exc}")
        report = pd.read_csv(Path(tmp) / "per_class.csv", keep_default_na=False)
    return data.TrainerReport(metrics, report)
