"""Open set: how well the decision separates clips of signs the deployment knows from clips of
signs it does not, on the engine's own score (`backend.decision_score`, `backend.unknown_score`).

    table = openset_table(records_known_file, records_negatives, view)   # one row per clip, "unknown"
    summary(table)      # AUROC, FPR at 95% TPR, and at the served operating point: known accepted,
                        # precision of accepted, unknown false accepts (with a Wilson 95% interval)
    curve(table, params, prototype_check)   # known vs unknown accepted as the threshold sweeps

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


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound on a handful of clips, unlike p +- 2 se)."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def summary(table: pd.DataFrame) -> dict:
    """Separation (AUROC, FPR at 95% TPR) of known vs unknown by the unknown-score, and the served
    operating point (the engine's own verdicts). Clips the input gates stopped have no score:
    they count as rejected at the operating point and are left out of AUROC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    known, unknown = table[~table["unknown"]], table[table["unknown"]]
    scored = table[np.isfinite(table["unknown_score"])]
    out: dict = {"known": len(known), "unknown": len(unknown), "auroc": float("nan"), "fpr_at_95tpr": float("nan")}
    if scored["unknown"].nunique() == 2:
        y = scored["unknown"].to_numpy(dtype=int)
        out["auroc"] = float(roc_auc_score(y, scored["unknown_score"]))
        # TPR here: known clips kept (accepted) as the threshold on -unknown_score sweeps.
        fpr, tpr, _ = roc_curve(1 - y, -scored["unknown_score"].to_numpy())
        out["fpr_at_95tpr"] = float(fpr[np.searchsorted(tpr, 0.95, side="left")]) if (tpr >= 0.95).any() else 1.0
    k_acc = int(known["accepted"].sum())
    k_right = int((known["accepted"] & (known["answer"] == known["label"])).sum())
    u_acc = int(unknown["accepted"].sum())
    out.update({
        "known_accepted": k_acc / len(known) if len(known) else float("nan"),
        "precision": k_right / (k_acc + u_acc) if (k_acc + u_acc) else float("nan"),
        "false_accepts": u_acc,
        "false_accept_rate": u_acc / len(unknown) if len(unknown) else float("nan"),
        "false_accept_ci": wilson(u_acc, len(unknown)),
    })
    return out


def curve(table: pd.DataFrame, params: dict, prototype_check: bool = True, n_points: int = 101) -> pd.DataFrame:
    """Known and unknown clips accepted as the score threshold sweeps (the rule's other parameters
    as in ``params``; the engine's rule via backend.regate)."""
    scores = table["score"].to_numpy(dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    grid = np.unique(np.quantile(scores, np.linspace(0, 1, n_points))) if len(scores) else np.array([0.0])
    grid = np.concatenate([grid, [grid[-1] + 1e-6]])
    unknown = table["unknown"].to_numpy()
    rows = []
    for t in grid:
        accepted = backend.regate(table, {**params, backend.SCORE_PARAMETER: float(t)}, prototype_check)
        rows.append({"threshold": float(t),
                     "known_accepted": float(accepted[~unknown].mean()) if (~unknown).any() else float("nan"),
                     "unknown_accepted": float(accepted[unknown].mean()) if unknown.any() else float("nan")})
    return pd.DataFrame(rows)
