"""Open set: how well the engine's own unknown-score separates clips of signs the deployment knows
from clips of signs it does not (`backend.decision_score`: RecognitionResult.unknown_score, the
Ranker's), with `signseek.metrics` (AUROC, FPR at 95% TPR, Wilson intervals).

    table = openset_table(records, idle, negatives_records)   # one row per clip, "unknown" True/False
    summary(table)    # AUROC, FPR at 95% known kept, and at the served operating point: known
                      # accepted, precision of accepted, unknown false accepts (Wilson 95% interval)
    curve(table)      # known vs unknown clips kept as a threshold on the unknown-score sweeps

Unknown clips are those whose label the bundle does not have (neither its references nor a
hands-only classifier), plus every clip of a negatives file the analyst picks (other-language
clips, say). Idle clips are neither: the rule must reject them, but they are not signs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explorer import backend


def openset_table(records: pd.DataFrame, idle: set[str], negatives: pd.DataFrame | None = None) -> pd.DataFrame:
    """Clips to score: the file's (known = the bundle has the sign) and the negatives' (all unknown)."""
    parts = []
    own = records[~records["label"].isin(idle)].copy()
    own["unknown"] = ~own["known"]
    own["origin"] = "dataset"
    parts.append(own)
    if negatives is not None and len(negatives):
        neg = negatives[~negatives["label"].isin(idle)].copy()
        neg["unknown"] = True
        neg["origin"] = "negatives file"
        parts.append(neg)
    table = pd.concat(parts, ignore_index=True)
    table["unknown_score"] = backend.unknown_score(table)
    return table


def _sides(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    scores = table["unknown_score"].to_numpy(np.float64)
    unknown = table["unknown"].to_numpy(bool)
    finite = np.isfinite(scores)
    return scores[~unknown & finite], scores[unknown & finite]


def summary(table: pd.DataFrame) -> dict:
    """Separation (AUROC, FPR at 95% TPR) of known vs unknown by the unknown-score, and the served
    operating point (the engine's own verdicts). Clips the input gates stopped have no score:
    they count as rejected at the operating point and are left out of AUROC."""
    from signseek.metrics import auroc, fpr_at_tpr, wilson_interval

    known, unknown = table[~table["unknown"]], table[table["unknown"]]
    known_scores, unknown_scores = _sides(table)
    k_acc = int(known["accepted"].sum())
    k_right = int((known["accepted"] & (known["answer"] == known["label"])).sum())
    u_acc = int(unknown["accepted"].sum())
    return {
        "known": len(known), "unknown": len(unknown),
        "auroc": auroc(known_scores, unknown_scores),
        "fpr_at_95tpr": fpr_at_tpr(known_scores, unknown_scores, 0.95),
        "known_accepted": k_acc / len(known) if len(known) else float("nan"),
        "precision": k_right / (k_acc + u_acc) if (k_acc + u_acc) else float("nan"),
        "false_accepts": u_acc,
        "false_accept_rate": u_acc / len(unknown) if len(unknown) else float("nan"),
        "false_accept_ci": wilson_interval(u_acc, len(unknown)),
    }


def curve(table: pd.DataFrame, n_points: int = 101) -> pd.DataFrame:
    """Known and unknown clips whose unknown-score reaches a threshold, as it sweeps the observed
    scores (the curve AUROC summarises)."""
    known_scores, unknown_scores = _sides(table)
    scores = np.concatenate([known_scores, unknown_scores])
    grid = np.unique(np.quantile(scores, np.linspace(0, 1, n_points))) if len(scores) else np.array([0.0])
    grid = np.concatenate([grid, [grid[-1] + 1e-6]])
    return pd.DataFrame({
        "threshold": grid,
        "known_accepted": [float(np.mean(known_scores >= t)) if len(known_scores) else np.nan for t in grid],
        "unknown_accepted": [float(np.mean(unknown_scores >= t)) if len(unknown_scores) else np.nan for t in grid],
    })
