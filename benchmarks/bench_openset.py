"""Open-set rules side by side on a few-shot study bundle (labels held out of its training).

    python -m benchmarks openset -- --bundle artifacts/fewshot_bundle_hs3 \
        --negatives artifacts/negatives.npz [--update-md]

Which unknown-score best tells known signs (the bundle's signs on held-out sittings) from signs
the encoder never saw, and what each rule does at an operating point chosen on the VALIDATION
labels (`signseek.evaluation.validation_episodes`: each validation label in turn unknown), never
on the test labels: the threshold is the lowest that accepts at most VALIDATION_UNKNOWN_ACCEPT (20%) of the validation
unknowns with accepted known answers right >= 99% of the time. Test = the bundle's references,
known = the test sessions of its signs, unknown = its held-out test labels (same signers) and the
negatives file (other-language clips), a 1:1 known:unknown mix, idle clips left out.

Rules (all rank by the served order; they differ in what is thresholded):
  before       the rule served before this change: accept when the refined (cosine + DTW)
               similarity >= SIM_THRESHOLD 0.55, margin >= 0.01 and the prototype agrees
  refined      the refined similarity (cosine + DTW blend) of the answer
  cosine       the answer's cosine similarity
  cos+margin   cosine + MARGIN_WEIGHT x its margin over the next sign (the served unknown-score)
  density      cosine minus the sign's density offset (each sign's own spread)
  category     cosine minus its category's offset (CATEGORY_SIM_OFFSET: letters need more)
  served       the calibrated confidence as served: P(known) x softmax share
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from benchmarks.report import update_section
from signseek.evaluation import VALIDATION_UNKNOWN_ACCEPT, Evaluation, Scored, validation_episodes
from signseek.labels import IDLE_LABELS
from signseek.metrics import auroc, fpr_at_tpr, operating_point
from signseek.settings import Settings

MD_START, MD_END = "<!-- openset:start -->", "<!-- openset:end -->"


def rule_scores(scored: Scored, ranker) -> dict[str, np.ndarray]:
    cos = np.array([r.cosine[0] for r in scored.rankings])
    density = np.array([ranker.density.get(r.labels[0], ranker.median_density) for r in scored.rankings])
    return {
        "refined": np.array([r.refined[0] + (0.0 if r.density_offset is None else r.density_offset[0])
                             for r in scored.rankings]),
        "cosine": cos,
        "cos+margin": scored.unknown_score,
        "density": cos - (density - ranker.median_density),
        "category": cos - np.array([ranker.sim_threshold(r.labels[0]) - ranker.settings.SIM_THRESHOLD
                                    for r in scored.rankings]),
        "served": scored.confidence,
    }


def before_rule(scored: Scored) -> np.ndarray:
    """Accept/reject of the rule served before: refined >= 0.55, margin >= 0.01, prototype agrees."""
    out = []
    for r in scored.rankings:
        refined = r.refined + (0.0 if r.density_offset is None else r.density_offset)
        margin = refined[0] - refined[1] if len(refined) > 1 else 1.0
        out.append(r.labels[0] not in IDLE_LABELS and refined[0] >= 0.55 and margin >= 0.01
                   and (r.prototype_label is None or r.prototype_label == r.labels[0]))
    return np.array(out, dtype=bool)


def choose(values: np.ndarray, known: np.ndarray, correct: np.ndarray,
           target: float = VALIDATION_UNKNOWN_ACCEPT) -> float:
    for threshold in np.unique(np.round(values, 5)):
        point = operating_point(threshold, values[known], correct[known], values[~known])
        if point.unknown_accept <= target and point.known_precision >= 0.99:
            return float(threshold)
    return float(values.max() + 1e-6)


def run(bundle: str, negatives: str | None) -> dict:
    ev = Evaluation.from_bundle(bundle)
    config = ev.bundle.config
    test_labels, val_labels = config.get("heldout_labels") or [], config.get("val_labels") or []
    if not test_labels or not val_labels:
        raise SystemExit(f"{bundle} is not a few-shot study bundle (it records no held-out and validation labels)")
    data = (config.get("training") or {}).get("data", "traduttore-asl/signs.npz")
    clips = ev.load(data)
    split_mode = (config.get("training") or {}).get("split", "last_session")
    no_test = clips.subset(np.flatnonzero(~np.isin(clips.labels, test_labels)))
    t0 = time.perf_counter()
    val = validation_episodes(ev, no_test, val_labels, split_mode, config.get("max_refs_per_label") or 32)
    split = ev.split(clips)
    refs = set(ev.references.labels) - set(ev.idle_labels)
    known = clips.subset([i for i in split["test"] if clips.labels[i] in refs])
    unknown = clips.subset(np.flatnonzero(np.isin(clips.labels, test_labels)))
    neg = None
    if negatives:
        neg = ev.load(negatives)
        neg.labels = np.array([f"negative:{x}" for x in neg.labels])
    _, test = ev.openset(known, unknown, neg)
    ranker = ev.ranker()
    keep_v, keep_t = ~np.isin(val.truth, IDLE_LABELS), ~np.isin(test.truth, IDLE_LABELS)
    val, test = val.subset(keep_v), test.subset(keep_t)
    rows = []
    before = before_rule(test)
    right_t = test.correct
    rows.append({"rule": "before", "auroc_val": None, "auroc_test": None, "fpr95_test": None, "threshold": None,
                 **_point(before, test, right_t)})
    sv, st = rule_scores(val, ranker), rule_scores(test, ranker)
    for name in sv:
        threshold = choose(sv[name], val.known, val.correct)
        accepted = st[name] >= threshold
        if name == "served":  # the served rule also rejects idle answers, thin margins, prototype disagreement
            accepted = test.accepted
        rows.append({"rule": name, "auroc_val": auroc(sv[name][val.known], sv[name][~val.known]),
                     "auroc_test": auroc(st[name][test.known], st[name][~test.known]),
                     "fpr95_test": fpr_at_tpr(st[name][test.known], st[name][~test.known]),
                     "threshold": threshold, **_point(accepted, test, right_t)})
    return {"bundle": bundle, "rows": rows, "n_val_known": int(val.known.sum()), "n_val_unknown": int((~val.known).sum()),
            "n_known": int(test.known.sum()), "n_unknown": int((~test.known).sum()),
            "seconds": time.perf_counter() - t0, "settings": {k: getattr(ev.settings, k) for k in (
                "SIM_THRESHOLD", "CATEGORY_SIM_OFFSET", "UNKNOWN_SCALE", "MARGIN_WEIGHT", "MIN_CONFIDENCE", "DENSITY_WEIGHT",
                "CONFIDENCE_TEMPERATURE")}}


def _point(accepted: np.ndarray, test: Scored, right: np.ndarray) -> dict:
    known = test.known
    out = {"known_accept": float((accepted & right)[known].mean()),
           "known_precision": float((accepted & right)[known].sum() / max((accepted & known).sum(), 1))}
    for group in ("unknown_labels", "negatives"):
        m = (~known) & (test.group == group)
        if m.any():
            out[f"accept_{group}"] = f"{int(accepted[m].sum())}/{int(m.sum())}"
    return out


def markdown(result: dict, command: str) -> str:
    lines = [f"## Open-set rules side by side ({time.strftime('%Y-%m-%d')})", "",
             f"`{command}` on `{result['bundle']}`: validation {result['n_val_known']} known / "
             f"{result['n_val_unknown']} unknown queries, test {result['n_known']} known (held-out sittings) / "
             f"{result['n_unknown']} unknown (held-out labels, same signers; and other-language negatives). "
             f"Thresholds chosen on validation (<= {VALIDATION_UNKNOWN_ACCEPT:.0%} of its unknowns accepted, known "
             "precision >= 0.99; the served rule on the cross-fit folds' pooled validation, the others on the "
             "bundle's own validation labels).", "",
             "| rule | AUROC val | AUROC test | FPR@95%TPR test | known accept | known precision | held-out labels accepted | negatives accepted |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    fmt = lambda v: "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    for r in result["rows"]:
        lines.append(f"| {r['rule']} | {fmt(r['auroc_val'])} | {fmt(r['auroc_test'])} | {fmt(r['fpr95_test'])} | "
                     f"{fmt(r['known_accept'])} | {fmt(r['known_precision'])} | {r.get('accept_unknown_labels', '')} | "
                     f"{r.get('accept_negatives', '')} |")
    lines += ["", f"Served settings: `{json.dumps(result['settings'])}`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="artifacts/fewshot_bundle_cf")
    parser.add_argument("--negatives", help="a dataset of other-language clips (every one unknown)")
    parser.add_argument("--update-md", action="store_true")
    args = parser.parse_args(argv)
    Settings()  # fail early on a bad environment
    result = run(args.bundle, args.negatives)
    command = "python -m benchmarks openset -- " + " ".join(argv or sys.argv[1:])
    text = markdown(result, command)
    print(text)
    if args.update_md:
        update_section(MD_START, MD_END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

