"""Metrics of retrieval, open-set rejection and confidence calibration (numpy only).

    ranking_metrics(ranked, truth)            top-1 / top-5 / MRR of ranked label lists
    auroc(known_scores, unknown_scores)       P(a known clip scores above an unknown one)
    fpr_at_tpr(known, unknown, 0.95)          unknowns accepted at the threshold keeping 95% of knowns
    calibration_error(confidence, correct)    expected calibration error (equal-width bins) + the bins
    wilson_interval(k, n)                     95% interval of a rate measured on n trials
    operating_point(...)                      what a threshold does: known accept, precision, false accepts

Used by `signseek.evaluation` (the protocols), the trainer, the explorer and the benchmarks, so a
number means the same thing wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def ranking_metrics(ranked: Sequence[Sequence[str]], truth: Sequence[str], prefix: str = "") -> dict:
    """top-1, top-5 and mean reciprocal rank of each query's ranked labels (best first)."""
    ranks = np.array([list(labels).index(t) + 1 if t in labels else np.inf
                      for labels, t in zip(ranked, truth, strict=True)], dtype=np.float64)
    if len(ranks) == 0:
        return {f"{prefix}top1": float("nan"), f"{prefix}top5": float("nan"), f"{prefix}mrr": float("nan")}
    return {
        f"{prefix}top1": float(np.mean(ranks <= 1)),
        f"{prefix}top5": float(np.mean(ranks <= 5)),
        f"{prefix}mrr": float(np.mean(np.where(np.isfinite(ranks), 1.0 / ranks, 0.0))),
    }


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: P(a positive scores above a negative), ties counted half."""
    pos, neg = np.asarray(positive, np.float64).ravel(), np.asarray(negative, np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties (Mann-Whitney U)
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    stops = np.r_[starts[1:], len(scores)]
    for a, b in zip(starts, stops, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def fpr_at_tpr(positive: np.ndarray, negative: np.ndarray, tpr: float = 0.95) -> float:
    """Share of negatives at or above the threshold that keeps ``tpr`` of the positives."""
    pos, neg = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    threshold = np.quantile(pos, 1.0 - tpr, method="lower")
    return float(np.mean(neg >= threshold))


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate: honest on a handful of trials (1 of 6 is not 17% flat)."""
    if trials == 0:
        return (float("nan"), float("nan"))
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15,
                      weights: np.ndarray | None = None) -> tuple[float, list[dict]]:
    """Expected calibration error over ``n_bins`` equal-width confidence bins, and the bins
    (for a reliability diagram): each bin's mean confidence, accuracy and weight."""
    conf = np.clip(np.asarray(confidence, np.float64), 0.0, 1.0)
    right = np.asarray(correct, np.float64)
    w = np.ones_like(conf) if weights is None else np.asarray(weights, np.float64)
    if len(conf) == 0:
        return float("nan"), []
    which = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total, ece, bins = w.sum(), 0.0, []
    for b in range(n_bins):
        m = which == b
        if not m.any():
            continue
        weight = w[m].sum()
        mean_conf = float(np.average(conf[m], weights=w[m]))
        accuracy = float(np.average(right[m], weights=w[m]))
        ece += weight / total * abs(mean_conf - accuracy)
        bins.append({"low": b / n_bins, "high": (b + 1) / n_bins, "confidence": mean_conf,
                     "accuracy": accuracy, "weight": float(weight / total), "count": int(m.sum())})
    return float(ece), bins


@dataclass
class OperatingPoint:
    """What accepting ``score >= threshold`` does on known and unknown queries."""

    threshold: float
    known_accept: float  # known queries accepted with the right label / known queries
    known_precision: float  # right / accepted, among known queries (the closed-set precision)
    precision: float  # right / accepted with unknowns weighted to a 1:1 known:unknown mix
    unknown_accept: float  # unknown queries accepted (as any known sign) / unknown queries
    unknown_accept_ci: tuple[float, float]
    n_known: int
    n_unknown: int

    def to_dict(self) -> dict:
        return asdict(self)


def operating_point(threshold: float, known_scores: np.ndarray, known_correct: np.ndarray,
                    unknown_scores: np.ndarray) -> OperatingPoint:
    ks, kc = np.asarray(known_scores, np.float64), np.asarray(known_correct, bool)
    us = np.asarray(unknown_scores, np.float64)
    k_acc, u_acc = ks >= threshold, us >= threshold
    right, wrong_known = int((k_acc & kc).sum()), int((k_acc & ~kc).sum())
    n_u_acc = int(u_acc.sum())
    known_precision = right / (right + wrong_known) if right + wrong_known else 1.0
    # 1:1 mix: each side weighs as much as the other whatever its count
    tp = right / max(len(ks), 1)
    fp = wrong_known / max(len(ks), 1) + (n_u_acc / len(us) if len(us) else 0.0)
    return OperatingPoint(
        float(threshold), right / max(len(ks), 1), float(known_precision),
        float(tp / (tp + fp)) if tp + fp else 1.0, n_u_acc / len(us) if len(us) else float("nan"),
        wilson_interval(n_u_acc, len(us)), len(ks), len(us),
    )
