"""The explorer's one link to the engine: a dataset -> per-clip records, and the decision rule's
score and parameters.

Every number comes from SignSeek's own code: clips are recognised by
`signseek.engine.Engine.recognize_many` (features, embedding, search, DTW re-rank, gates: exactly
what serving does, with the bundle's settings) and embedded by the engine's encoder for the
projection. Nothing else in explorer/ calls the engine.

The decision rule is `signseek.ranker.Ranker`'s (the trust issue's one home of the rule); the
pages reach it through a few names here:
  - `decision_score(result)`: the engine's own unknown-score of a RecognitionResult (higher: more
    like a known sign); a hands-only classifier's answers score their probability.
  - `rule_parameters(model)` / `settings_in_use`: the rule's parameters and their values in force.
  - `score_clips(...)`: the clips ranked and decided by the engine's Ranker
    (`signseek.evaluation.score`), kept so that `redecide(engine, scored, params)` can decide them
    again under other parameter values, with the Ranker itself (no copy of the rule here).
  - `write` of the parameters: `explorer.data.write_thresholds`.
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

# The rule's parameters the calibration page sets and writes, per answering model: the Ranker's
# for the encoder (signseek/ranker.py: p_known = sigmoid((cosine + MARGIN_WEIGHT x cosine margin -
# SIM_THRESHOLD) / UNKNOWN_SCALE), confidence = p_known x softmax(refined / CONFIDENCE_TEMPERATURE),
# accept at MIN_CONFIDENCE with a refined margin >= SIM_MARGIN), and a hands-only classifier's
# confidence gate (signseek.engine.core.Engine._classify).
SCORE_PARAMETER = "SIM_THRESHOLD"
ACCEPT_PARAMETER = "MIN_CONFIDENCE"
MARGIN_PARAMETER = "SIM_MARGIN"
CLASSIFIER_PARAMETER = "CLASSIFIER_MIN_CONFIDENCE"
RULE_PARAMETERS = (ACCEPT_PARAMETER, SCORE_PARAMETER, "UNKNOWN_SCALE", "MARGIN_WEIGHT", MARGIN_PARAMETER,
                   "CONFIDENCE_TEMPERATURE")
# The thresholds that accept or reject, and the value each compares with: a value outside the range
# the data showed (it would accept every clip, or none) is refused. SIM_THRESHOLD is not one: it is
# the centre of P(known)'s sigmoid, which sits between known and unknown scores, below every known
# one when the data holds no unknowns. Every value must also be a valid setting.
PARAMETER_COLUMNS = {ACCEPT_PARAMETER: "confidence", MARGIN_PARAMETER: "margin", CLASSIFIER_PARAMETER: "confidence"}


def rule_parameters(model: str = "encoder") -> tuple[str, ...]:
    """The parameters of the rule that decides the answers of ``model`` ("encoder" or a classifier's name)."""
    return RULE_PARAMETERS if model == "encoder" else (CLASSIFIER_PARAMETER,)


def accept_parameter(model: str = "encoder") -> str:
    """The threshold that accepts an answer (swept for precision against acceptance)."""
    return ACCEPT_PARAMETER if model == "encoder" else CLASSIFIER_PARAMETER


# What the Overview lists as "in use" (the gates, the re-ranking, and the rule's parameters).
SHOWN_SETTINGS = (*RULE_PARAMETERS, "PROTOTYPE_CHECK", "MOTION_FLOOR", "DTW_WEIGHT", "DTW_SCALE", "DTW_TOP_N",
                  "DEFAULT_TOP_K", CLASSIFIER_PARAMETER)

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
    """The engine's own unknown-score of one RecognitionResult (higher: more like a known sign);
    a hands-only classifier's answer: its top probability. NaN: nothing was ranked."""
    if result.model == "encoder":
        score = getattr(result, "unknown_score", None)
        return float(score) if score is not None else float("nan")
    return float(result.confidence) if result.candidates else float("nan")


def unknown_score(records: pd.DataFrame) -> np.ndarray:
    """The engine's unknown-score of each record (higher: more like a known sign)."""
    return records["score"].to_numpy(dtype=np.float64)


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


def score_clips(engine, dataset, queries, progress: Progress = _quiet):
    """The clips at ``queries`` ranked and decided by the engine's Ranker (`signseek.evaluation.score`:
    the same embedding, DTW re-rank and decision as serving), for deciding again under other values."""
    from signseek.evaluation import score

    queries = np.asarray(queries, dtype=np.int64)
    normalised, vectors = [], []
    for start in range(0, len(queries), CHUNK):
        progress(0.8 * start / max(len(queries), 1), f"Embedding clips for the decision rule: {start} of {len(queries)}")
        part = [engine.stats.apply(_prepare(engine, dataset.points(int(q)))) for q in queries[start:start + CHUNK]]
        normalised.extend(part)
        vectors.append(engine.encoder.embed_sequences(part))
    progress(0.85, f"Ranking {len(queries)} clips (DTW re-rank)...")
    embeddings = np.concatenate(vectors) if vectors else np.zeros((0, engine.references.embeddings.shape[1]))
    scored = score(engine.ranker, embeddings, normalised, dataset.labels[queries].astype(str))
    progress(1.0, "Ranked")
    return scored


def redecide(engine, scored, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """(accepted, confidence) of every scored clip under the engine's settings with ``params``
    changed: the Ranker's own decision (`Ranker.decide`) on the same rankings."""
    from signseek.ranker import Ranker

    settings = engine.settings.model_copy(update={k: v for k, v in params.items() if k in RULE_PARAMETERS})
    ranker = Ranker(engine.ranker.references, settings, engine.stats, engine.idle_labels)
    decisions = [ranker.decide(r) for r in scored.rankings]
    return (np.array([d.accepted for d in decisions], dtype=bool),
            np.array([d.confidence for d in decisions], dtype=np.float64))


def regate_classifier(records: pd.DataFrame, value: float, model: str) -> np.ndarray:
    """Which clips a hands-only classifier would accept at CLASSIFIER_MIN_CONFIDENCE = ``value``:
    its gate (the top label not idle, its probability at least the value); clips answered by
    another model, or stopped before it, keep their verdict."""
    from explorer.data import INPUT_REASONS

    reason = records["rejection_reason"].to_numpy()
    decided = (records["model"].to_numpy() == model) & ~np.isin(reason, INPUT_REASONS)
    with np.errstate(invalid="ignore"):
        passes = (reason != Reason.IDLE.value) & (records["confidence"].to_numpy(dtype=np.float64) >= float(value))
    return np.where(decided, passes, records["accepted"].to_numpy()).astype(bool)


def ranking_metrics(records: pd.DataFrame) -> dict:
    """Top-1, top-5 and MRR (`signseek.metrics.ranking_metrics`) of the engine's ranking over the
    clips whose sign the bundle knows: the answering model's order (encoder: refined similarity
    after DTW; hands-only classifier: its probabilities), before the gates."""
    from signseek.metrics import ranking_metrics as metrics

    known = records[records["known"]] if "known" in records else records
    ranked = [list(dict.fromkeys([top1, *labels])) for top1, labels in
              zip(known["ranked_top1"], known["ranked_labels"], strict=True)]
    return {**metrics(ranked, known["label"].astype(str).tolist()), "n": len(known)}
