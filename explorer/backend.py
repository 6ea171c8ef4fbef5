"""The explorer's one link to the engine: a dataset -> per-clip records, and the decision rule's
score and parameters.

Every number comes from SignSeek's own code: clips are recognised by
`signseek.engine.Engine.recognize_many` (features, embedding, search, DTW re-rank, gates: exactly
what serving does, with the bundle's settings) and embedded by the engine's encoder for the
projection. Nothing else in explorer/ calls the engine.

The decision rule is reached through three names here, so the pages follow the engine when its
rule changes (signseek/ranker.py, the trust issue):
  - `decision_score(result)`: the score the rule thresholds (the open-set page's "unknown-score"
    is its negation). Today: the top sign's refined similarity, as the engine returns it.
  - `RULE_PARAMETERS` / `settings_in_use`: the rule's parameters and their values in force.
  - `regate(records, params)`: the engine's verdicts under other parameter values; at the
    bundle's own values it gives back the engine's verdicts (tests/test_explorer_app.py checks).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from signseek.ranker import Reason

# How many ranked labels each record keeps (the nearest-references table shows them).
TOP_K = 10
# Clips recognised per engine call: bounds memory (canonical points are 6.5 kB a frame) and
# paces the progress bar.
CHUNK = 256
# ONNX Runtime threads for the explorer's batch work (serving keeps INTRA_OP_THREADS' value).
ENCODER_THREADS = 2

# The rule's parameters the calibration page sets and writes, per answering model. The encoder's
# SCORE_PARAMETER thresholds `decision_score`, MARGIN_PARAMETER the gap between the top two signs;
# a hands-only classifier's answer is gated by its top probability alone.
SCORE_PARAMETER = "SIM_THRESHOLD"
MARGIN_PARAMETER = "SIM_MARGIN"
CLASSIFIER_PARAMETER = "CLASSIFIER_MIN_CONFIDENCE"
RULE_PARAMETERS = (SCORE_PARAMETER, MARGIN_PARAMETER)
# The record column each parameter is compared with (its observed range bounds what may be written).
PARAMETER_COLUMNS = {SCORE_PARAMETER: "score", MARGIN_PARAMETER: "margin", CLASSIFIER_PARAMETER: "score"}


def rule_parameters(model: str = "encoder") -> tuple[str, ...]:
    """The parameters of the rule that decides the answers of ``model`` ("encoder" or a classifier's name)."""
    return RULE_PARAMETERS if model == "encoder" else (CLASSIFIER_PARAMETER,)


def score_parameter(model: str = "encoder") -> str:
    return SCORE_PARAMETER if model == "encoder" else CLASSIFIER_PARAMETER


# What the Overview lists as "in use" (the gates, the re-ranking, and the rule's parameters).
SHOWN_SETTINGS = ("SIM_THRESHOLD", "SIM_MARGIN", "MOTION_FLOOR", "PROTOTYPE_CHECK", "DTW_WEIGHT", "DTW_SCALE",
                  "DTW_TOP_N", "DEFAULT_TOP_K", "CONFIDENCE_TEMPERATURE", "CLASSIFIER_MIN_CONFIDENCE")

Progress = Callable[[float, str], None]


def _quiet(fraction: float, text: str) -> None:
    return None


def settings_in_use(bundle) -> tuple[dict, dict]:
    """(name -> value, name -> source) of the settings the engine uses with this bundle."""
    from signseek.settings import resolve_settings

    settings, sources = resolve_settings(bundle)
    names = SHOWN_SETTINGS + tuple(n for n in (bundle.config.get("thresholds") or {})
                                   if n in sources and n not in SHOWN_SETTINGS)
    return {n: getattr(settings, n) for n in names}, {n: sources[n] for n in names}


def load_engine(view):
    """The serving engine over the bundle, with the settings serving would use (env > bundle >
    defaults); only ONNX Runtime's thread count is raised for batch work."""
    from signseek.engine import Engine

    return Engine.from_bundle(view.bundle, INTRA_OP_THREADS=ENCODER_THREADS)


def decision_score(result) -> float:
    """The score the decision rule thresholds, for one RecognitionResult (NaN: nothing was ranked)."""
    if result.rejection_reason == Reason.IDLE and result.model == "encoder":
        return float(result.idle_similarity) if result.idle_similarity is not None else float("nan")
    if result.candidates:
        return float(result.candidates[0].similarity)
    return float("nan")


def unknown_score(records: pd.DataFrame) -> np.ndarray:
    """Higher = more likely a sign the deployment does not know (the open-set page's score)."""
    return -records["score"].to_numpy(dtype=np.float64)


def known_labels(view) -> set[str]:
    """Signs the bundle can answer (references and hands-only classifiers), idle labels excluded."""
    idle = set(view.bundle.idle_labels)
    labels = set(view.labels)
    for names in view.classifier_labels.values():
        labels |= set(names)
    return labels - idle


def _records(dataset, results, view, offset: int = 0) -> list[dict]:
    from explorer.data import dataset_columns

    idle = set(view.bundle.idle_labels)
    meta = dataset_columns(dataset)
    sequence = dataset.extra.get("sequence", np.arange(len(dataset)))
    rows = []
    for j, result in enumerate(results):
        i = offset + j
        cands = result.candidates
        # The engine's top label may be an idle one ("-"): it is then rejected with reason "idle"
        # and, being idle, not among the candidates.
        if result.rejection_reason == Reason.IDLE and result.model == "encoder":
            pred = sorted(idle)[0]
        elif cands:
            pred = cands[0].label
        else:  # rejected before search (no hands, low motion), or a classifier's idle answer
            pred = sorted(idle)[0] if result.rejection_reason == Reason.IDLE else ""
        label = str(dataset.labels[i])
        refs = [int(c.reference.get("index", -1)) if c.reference else -1 for c in cands]
        rows.append({
            "query": i,
            "sample_id": meta["sample_id"][i],
            "label": label,
            "session": np.asarray(dataset.signers[i]).item(),
            "sequence": int(sequence[i]) if np.issubdtype(np.asarray(sequence).dtype, np.integer) else i,
            "pred": pred,
            "answer": result.label or "",
            "accepted": bool(result.accepted),
            "rejection_reason": "" if result.accepted else str(result.rejection_reason),
            "score": decision_score(result),
            "confidence": float(result.confidence),
            "margin": float(result.margin) if result.margin is not None else np.nan,
            "proto_label": result.prototype_label or "",
            "proto_sim": float(cands[0].prototype_similarity) if cands and cands[0].prototype_similarity is not None
            else np.nan,
            "motion": float(result.motion),
            "hand_frames": int(result.hand_frames),
            "model": result.model,
            "ranked_labels": [c.label for c in cands],
            "ranked_sims": [float(c.similarity) for c in cands],
            "ranked_refs": refs,
            "top1_correct": pred == label,
            # Right end to end: the sign accepted, or an idle clip not taken for a sign.
            "correct": bool(result.accepted and result.label == label) or (label in idle and not result.accepted),
            "video": meta["video"][i],
            "frame_start": meta["frame_start"][i],
            "demo_answer": meta["demo_answer"][i],
        })
    return rows


def evaluate(view, dataset, engine, progress: Progress = _quiet):
    """Every clip of ``dataset`` through ``engine.recognize_many``, CHUNK clips at a time."""
    from explorer import data

    n = len(dataset)
    if n == 0:
        raise data.ExplorerError("the dataset holds no clips")
    k = min(TOP_K, len(set(engine.references.labels)))
    rows: list[dict] = []
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        progress(start / n, f"Recognising clips with the engine: {start} of {n}")
        results = engine.recognize_many([dataset.points(i) for i in range(start, stop)], top_k=k)
        rows.extend(_records(dataset, results, view, start))
    progress(1.0, f"Recognised {n} clips")
    records = pd.DataFrame(rows).set_index("query", drop=False)
    records.index.name = None
    records["outcome"] = [
        data.outcome(a, t, c)
        for a, t, c in zip(records["accepted"], records["top1_correct"], records["correct"], strict=True)
    ]
    # The ranking's top-1 without gates: the engine's top label wherever a model ranked; clips
    # stopped by the input gates are ranked by the encoder here (few clips).
    records["ranked_top1"] = records["pred"]
    gated = records.index[records["rejection_reason"].isin(data.INPUT_REASONS)].to_numpy()
    if len(gated):
        prepared = [_prepare(engine, dataset.points(int(i))) for i in gated]
        ranked = engine.rank_labels(prepared, mode="full", k=1)
        records.loc[gated, "ranked_top1"] = [r[0] for r in ranked]
    known = known_labels(view)
    records["known"] = records["label"].isin(known)
    labels = list(dict.fromkeys([*view.labels, *sorted(known), *sorted(set(records["label"]))]))
    return data.Evaluation(records, labels, data.dataset_layout(dataset))


def _prepare(engine, points: np.ndarray) -> np.ndarray:
    from signseek.features import prepare_sequence

    return prepare_sequence(points, engine.feature_config)


def embed_dataset(dataset, engine, progress: Progress = _quiet) -> np.ndarray:
    """[N, D] the engine's encoder embedding of every clip (its features, as the engine prepares them)."""
    n = len(dataset)
    parts = []
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        progress(start / n, f"Embedding clips with the encoder: {start} of {n}")
        parts.append(engine.embed_prepared([_prepare(engine, dataset.points(i)) for i in range(start, stop)]))
    progress(1.0, f"Embedded {n} clips")
    return np.concatenate(parts).astype(np.float32)


def regate(records: pd.DataFrame, params: dict, prototype_check: bool = True, model: str = "encoder") -> np.ndarray:
    """Which clips the engine would accept with other parameter values (``params``: rule_parameters(model)).

    The engine's rules over the records (signseek.engine.gates.decision_gate for the encoder, the
    classifier's confidence gate for a hands-only classifier): clips stopped before the decision
    and clips answered by another model keep their verdict. For the encoder's clips the top label
    must not be idle, its score must reach SCORE_PARAMETER, the margin MARGIN_PARAMETER, and (with
    PROTOTYPE_CHECK) the nearest prototype must agree; for a classifier's, the top label must not
    be idle and its probability must reach CLASSIFIER_PARAMETER. Replaced by the ranker's own
    vectorised decision when signseek/ranker.py ships it.
    """
    from explorer.data import INPUT_REASONS

    models = records["model"].to_numpy()
    reason = records["rejection_reason"].to_numpy()
    decided = (models == model) & ~np.isin(reason, INPUT_REASONS)
    score = records["score"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if model == "encoder":
            passes = ((reason != Reason.IDLE.value) & (score >= float(params[SCORE_PARAMETER]))
                      & (records["margin"].to_numpy(dtype=np.float64) >= float(params[MARGIN_PARAMETER])))
            if prototype_check:
                passes &= records["proto_label"].to_numpy() == records["pred"].to_numpy()
        else:
            passes = (reason != Reason.IDLE.value) & (score >= float(params[CLASSIFIER_PARAMETER]))
    return np.where(decided, passes, records["accepted"].to_numpy()).astype(bool)


def ranking_metrics(records: pd.DataFrame) -> dict:
    """Top-1, top-5 and MRR of the engine's ranking over the clips whose sign the bundle knows.

    The ranking is the answering model's (encoder: refined similarity after DTW; hands-only
    classifier: its probabilities), without the gates. To be replaced by signseek.evaluation's
    metrics when that module ships.
    """
    known = records[records["known"]] if "known" in records else records
    n = len(known)
    if not n:
        return {"top1": float("nan"), "top5": float("nan"), "mrr": float("nan"), "n": 0}
    hits1, hits5, rr = 0, 0, 0.0
    for label, top1, ranked in zip(known["label"], known["ranked_top1"], known["ranked_labels"], strict=True):
        order = list(dict.fromkeys([top1, *ranked]))
        if label in order:
            rank = order.index(label) + 1
            hits1 += rank == 1
            hits5 += rank <= 5
            rr += 1.0 / rank
    return {"top1": hits1 / n, "top5": hits5 / n, "mrr": rr / n, "n": n}
