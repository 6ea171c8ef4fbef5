"""Two bundles on the same clips: metric deltas, failures fixed and introduced, per-sign deltas.

    deltas = metric_deltas(a, b)         # rows: metric, A, B, B - A
    fixed, introduced = changed_clips(a, b)
    per_sign = per_sign_deltas(a, b)     # label, clips, right A, right B, delta

``a`` and ``b`` are the records of the same clips (same file, same selection) under each bundle.
"""

from __future__ import annotations

import pandas as pd

from explorer import backend, data

CHANGE_COLUMNS = ["query", "label", "session", "answer_a", "reason_a", "score_a", "answer_b", "reason_b", "score_b"]


def align(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    common = a.index.intersection(b.index)
    return a.loc[common], b.loc[common]


def metric_deltas(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    a, b = align(a, b)
    rows = []
    for source, name in ((backend.ranking_metrics, "top1"), (backend.ranking_metrics, "top5"),
                         (backend.ranking_metrics, "mrr"), (data.served_summary, "acceptance"),
                         (data.served_summary, "precision"), (data.served_summary, "right")):
        va, vb = float(source(a)[name]), float(source(b)[name])
        rows.append({"metric": name, "A": va, "B": vb, "B - A": vb - va})
    return pd.DataFrame(rows)


def changed_clips(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fixed: wrong or rejected under A, right under B; introduced: right under A, not under B)."""
    a, b = align(a, b)
    both = pd.DataFrame({
        "query": a.index, "label": a["label"].to_numpy(), "session": a["session"].astype(str).to_numpy(),
        "answer_a": a["answer"].to_numpy(), "reason_a": a["rejection_reason"].to_numpy(),
        "score_a": a["score"].to_numpy(), "answer_b": b["answer"].to_numpy(),
        "reason_b": b["rejection_reason"].to_numpy(), "score_b": b["score"].to_numpy(),
    })
    ca, cb = a["correct"].to_numpy(), b["correct"].to_numpy()
    return both[~ca & cb][CHANGE_COLUMNS].reset_index(drop=True), both[ca & ~cb][CHANGE_COLUMNS].reset_index(drop=True)


def per_sign_deltas(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    a, b = align(a, b)
    frame = pd.DataFrame({"label": a["label"].astype(str).to_numpy(), "a": a["correct"].to_numpy(),
                          "b": b["correct"].to_numpy()})
    out = frame.groupby("label").agg(clips=("a", "size"), right_a=("a", "mean"), right_b=("b", "mean")).reset_index()
    out["delta"] = out["right_b"] - out["right_a"]
    return out.sort_values(["delta", "label"]).reset_index(drop=True)
