"""The recognition engine: landmarks -> ranked signs with every diagnostic. See signseek/engine/__init__.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..bundle import ENCODER_INT8, ENCODER_ONNX, ENCODER_TS, Bundle, load_bundle
from ..errors import SignSeekError
from ..features import FeatureConfig, FeatureStats, prepare_sequence
from ..landmarks.layouts import flat_to_canonical
from ..landmarks.schema import N_DIMS, N_LANDMARKS, LandmarkSequence
from ..settings import Settings, resolve_settings
from . import dtw as dtw_mod
from .batching import MicroBatcher
from .encoder import ClassifierModel, Encoder, pad_batch
from .gates import decision_gate, hand_frames, has_body, input_gate, softmax
from .search import ReferenceSet, build_index


class InputError(SignSeekError, ValueError):
    """Landmarks the engine cannot read (wrong shape, unknown layout, no frames)."""
    code = "invalid_frames"


def as_points(landmarks, layout: str | None = None) -> np.ndarray:
    """Canonical [T, 543, 3], a LandmarkSequence, or flat [T, V] frames (any known layout) ->
    canonical float32 points (NaN = not detected)."""
    if isinstance(landmarks, LandmarkSequence):
        return landmarks.points
    arr = np.asarray(landmarks, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[1:] == (N_LANDMARKS, N_DIMS):
        points = arr
    elif arr.ndim == 2:
        try:
            points, _ = flat_to_canonical(arr, layout)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
    else:
        raise InputError(
            f"landmarks must be [T, {N_LANDMARKS}, {N_DIMS}] or flat [T, values], got shape {arr.shape}"
        )
    if len(points) == 0:
        raise InputError("the clip has no frames")
    return points


@dataclass
class Candidate:
    label: str
    category: str
    similarity: float  # refined: (1 - DTW_WEIGHT) * cosine + DTW_WEIGHT * dtw_score
    raw_similarity: float | None  # cosine similarity of the label's best reference clip
    dtw_distance: float | None = None  # normalised DTW distance to that reference (None: not re-ranked)
    dtw_score: float | None = None  # exp(-dtw_distance / DTW_SCALE)
    prototype_similarity: float | None = None  # cosine to the label's prototype
    confidence: float = 0.0  # softmax share over labels (CONFIDENCE_TEMPERATURE)
    reference: dict = field(default_factory=dict)  # the best reference's row (source, sample_id, ...)


@dataclass
class RecognitionResult:
    label: str | None  # the accepted sign, None when rejected ("no sign")
    confidence: float
    accepted: bool
    rejection_reason: str  # a signseek.ranker.Reason value
    candidates: list[Candidate]  # signs, best first; idle labels never appear here
    motion: float
    hand_frames: int
    n_frames: int
    kept: tuple[int, int] | None = None  # frames kept after idle trimming
    margin: float | None = None  # top-1 minus the next label's refined similarity
    prototype_label: str | None = None  # the label of the query's nearest prototype
    idle_similarity: float | None = None  # best refined similarity of an idle label
    model: str = "encoder"  # which model answered: "encoder" or a classifier's name
    backend: str = ""
    mode: str = "full"  # "full" (DTW + gates) or "encoder" (cosine only, no gates)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def top(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _State:
    """Everything recognition reads about the references; swapped atomically on change."""

    references: ReferenceSet
    index: object
    prototype_labels: list[str]
    prototypes: np.ndarray | None
    categories: dict[str, str]


class Engine:
    """Retrieval engine over a reference set. Thread-safe; see the package docstring."""

    def __init__(
        self,
        encoder: Encoder,
        stats: FeatureStats,
        feature_config: FeatureConfig,
        references: ReferenceSet,
        settings: Settings | None = None,
        idle_labels: Sequence[str] = ("-",),
        categories: dict[str, str] | None = None,
        classifiers: dict[str, ClassifierModel] | None = None,
        model_name: str = "sign_encoder",
        bundle: Bundle | None = None,
        setting_sources: dict[str, str] | None = None,
    ) -> None:
        self.encoder = encoder
        self.stats = stats
        self.feature_config = feature_config
        self.settings = settings or Settings(_env_file=None)
        self.setting_sources = setting_sources or {}
        self.idle_labels = {str(x) for x in idle_labels}
        self.classifiers = classifiers or {}
        self.model_name = model_name
        self.bundle = bundle
        self._base_categories = dict(categories or {})
        self._lock = threading.Lock()
        self.batcher = MicroBatcher(self._embed_batch, self.settings.BATCH_MAX_SIZE, self.settings.BATCH_MAX_WAIT_MS)
        self._state: _State | None = None
        self.set_references(references)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_parts(cls, encoder: Encoder, stats: FeatureStats, feature_config: FeatureConfig,
                   references: ReferenceSet, settings: Settings | None = None, **kwargs) -> Engine:
        """An engine over any in-memory reference set (the trainer's evaluation uses this)."""
        return cls(encoder, stats, feature_config, references, settings, **kwargs)

    @classmethod
    def from_bundle(cls, bundle: Bundle | str | Path | None = None, settings: Settings | None = None,
                    quantized: bool = False, **settings_kwargs) -> Engine:
        """Load (and verify) a bundle; settings resolved env > bundle thresholds > defaults."""
        sources: dict[str, str] = {}
        if not isinstance(bundle, Bundle):
            if settings is None and bundle is None:
                settings = Settings(**settings_kwargs)
            bundle = load_bundle(bundle if bundle is not None else settings.MODELS_DIR)
        if settings is None:
            settings, sources = resolve_settings(bundle, **settings_kwargs)
        feature_config = bundle.feature_config
        if sources.get("SEQ_LEN", "default") != "default" and settings.SEQ_LEN != feature_config.seq_len:
            feature_config = replace(feature_config, seq_len=settings.SEQ_LEN)
        quantized = quantized or settings.ENCODER_INT8
        onnx_name = ENCODER_INT8 if quantized and bundle.path(ENCODER_INT8) else ENCODER_ONNX
        encoder = Encoder.load(bundle.directory / onnx_name, bundle.path(ENCODER_TS),
                               settings.ENABLE_CUDA, settings.INTRA_OP_THREADS)
        classifiers = {name: ClassifierModel(spec, settings.ENABLE_CUDA) for name, spec in bundle.classifiers.items()}
        return cls(
            encoder, bundle.stats, feature_config, ReferenceSet.from_bundle(bundle), settings,
            idle_labels=bundle.idle_labels, categories=bundle.config.get("categories") or {},
            classifiers=classifiers, model_name=bundle.model_name, bundle=bundle, setting_sources=sources,
        ).warmup()

    def warmup(self) -> Engine:
        """One dummy embedding and DTW so the first real request pays no lazy initialisation."""
        refs = self._state.references
        if refs.features:
            seq = self.stats.apply(refs.features[0])
            self.encoder.embed(seq[None], np.ones((1, len(seq)), dtype=np.float32))
            dtw_mod.distances(seq, [seq], self.settings.DTW_BACKEND, self.settings.DTW_WINDOW)
        return self

    # ------------------------------------------------------------------ references

    @property
    def references(self) -> ReferenceSet:
        return self._state.references

    @property
    def labels(self) -> list[str]:
        """Every label in the references, idle ones included, sorted."""
        return sorted(set(self._state.references.labels))

    @property
    def index_kind(self) -> str:
        return self._state.index.kind

    def set_references(self, references: ReferenceSet) -> None:
        """Swap in a new reference set (recognition in flight keeps the old one). Rebuilds the
        index: milliseconds for exact search, seconds for an ANN index of 100k references."""
        if len(references) == 0:
            raise ValueError("the engine needs at least one reference")
        index = build_index(references, self.settings.ANN_THRESHOLD)
        proto_labels, protos = references.label_prototypes()
        categories = dict(self._base_categories)
        for label, category in zip(references.labels, references.categories, strict=True):
            if category:
                categories.setdefault(label, category)
        with self._lock:
            self._state = _State(references, index, proto_labels, protos, categories)

    # ------------------------------------------------------------------ embedding

    def _embed_batch(self, sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
        features, mask = pad_batch(list(sequences))
        return list(self.encoder.embed(features, mask))

    def embed_prepared(self, prepared: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
        """Prepared (not normalised) [L_i, F] sequences -> unit embeddings [N, D], batched."""
        return self.encoder.embed_sequences([self.stats.apply(p) for p in prepared], batch_size)

    def prepare(self, landmarks, layout: str | None = None, feature_config: FeatureConfig | None = None):
        """Landmarks (any accepted form) -> (points, PreparedSequence)."""
        points = as_points(landmarks, layout)
        return points, prepare_sequence(points, feature_config or self.feature_config, return_info=True)

    # ------------------------------------------------------------------ recognition

    def recognize(self, landmarks, top_k: int | None = None, layout: str | None = None,
                  mode: str = "full") -> RecognitionResult:
        """One clip -> RecognitionResult. ``mode="encoder"``: cosine only, no DTW, no gates."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        s = self.settings
        top_k = top_k or s.DEFAULT_TOP_K
        with self.batcher.expect() as ticket:
            front = self._gate(landmarks, layout, mode, top_k, t0, timings)
            if isinstance(front, RecognitionResult):
                return front
            points, prepared, normalised, n_hands = front
            t1 = time.perf_counter()
            embedding = ticket.submit(normalised)
        t2 = time.perf_counter()
        timings["embed"] = (t2 - t1) * 1e3
        result = self._rank(embedding, normalised, self._state, top_k, mode, timings)
        result.motion, result.hand_frames, result.n_frames, result.kept = (
            prepared.motion, n_hands, len(points), prepared.kept)
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return result

    def _gate(self, landmarks, layout: str | None, mode: str, top_k: int, t0: float,
              timings: dict[str, float]):
        """Steps 1-2 for one clip: the hands-only classifier's answer, a rejection by the input
        gates (both as a finished RecognitionResult), or (points, prepared, normalised features,
        hand frames) to embed."""
        points = as_points(landmarks, layout)
        if mode == "full" and not has_body(points) and "fingerspelling" in self.classifiers:
            return self._classify(points, self.classifiers["fingerspelling"], top_k, t0)
        prepared = prepare_sequence(points, self.feature_config, return_info=True)
        normalised = self.stats.apply(prepared.features)
        n_hands = hand_frames(points[prepared.kept[0] : prepared.kept[1]])
        timings["prepare"] = (time.perf_counter() - t0) * 1e3
        reason = input_gate(n_hands, prepared.motion, self._motion_floor(points)) if mode == "full" else "none"
        if reason != "none":
            timings["total"] = (time.perf_counter() - t0) * 1e3
            return RecognitionResult(None, 0.0, False, reason, [], prepared.motion, n_hands, len(points),
                                     prepared.kept, model="encoder", backend=self.encoder.backend,
                                     mode=mode, timings_ms=timings)
        return points, prepared, normalised, n_hands

    async def recognize_async(self, landmarks, top_k: int | None = None, layout: str | None = None,
                              mode: str = "full") -> RecognitionResult:
        """`recognize` in a worker thread: concurrent awaits batch into shared encoder calls."""
        return await asyncio.to_thread(self.recognize, landmarks, top_k, layout, mode)

    def recognize_many(self, clips: Sequence, top_k: int | None = None, layout: str | None = None,
                       mode: str = "full", batch_size: int = 256) -> list[RecognitionResult]:
        """Many clips with one encoder call per ``batch_size`` (batch jobs, evaluation)."""
        s = self.settings
        top_k = top_k or s.DEFAULT_TOP_K
        results: list[RecognitionResult | None] = [None] * len(clips)
        todo = []
        for i, clip in enumerate(clips):
            front = self._gate(clip, layout, mode, top_k, time.perf_counter(), {})
            if isinstance(front, RecognitionResult):
                results[i] = front
                continue
            todo.append((i, *front))
        if todo:
            embeddings = self.encoder.embed_sequences([norm for _, _, _, norm, _ in todo], batch_size)
            state = self._state
            for (i, points, prepared, norm, n_hands), emb in zip(todo, embeddings, strict=True):
                result = self._rank(emb, norm, state, top_k, mode, {})
                result.motion, result.hand_frames, result.n_frames, result.kept = (
                    prepared.motion, n_hands, len(points), prepared.kept)
                results[i] = result
        return results

    def rank_labels(self, prepared: Sequence[np.ndarray], mode: str = "encoder", k: int | None = None,
                    include_idle: bool = True, batch_size: int = 256) -> list[list[str]]:
        """Ranked labels for many prepared (not normalised) sequences: top-1/top-5/MRR in evaluation.

        No gates. ``mode="encoder"``: per-label best cosine. ``mode="full"``: plus DTW re-rank of
        the top DTW_TOP_N labels. ``k``: labels per query (default: all labels).
        """
        normalised = [self.stats.apply(p) for p in prepared]
        embeddings = self.encoder.embed_sequences(normalised, batch_size)
        return self.rank_embeddings(embeddings, normalised if mode == "full" else None, k, include_idle)

    def rank_embeddings(self, embeddings: np.ndarray, normalised: Sequence[np.ndarray] | None = None,
                        k: int | None = None, include_idle: bool = True,
                        dtw_distances: np.ndarray | None = None) -> list[list[str]]:
        """Like rank_labels for precomputed embeddings; DTW re-rank when ``normalised`` is given.

        ``dtw_distances`` [Q, R]: precomputed normalised DTW distances from each query to every
        reference, used instead of computing them (calibration grids reuse one matrix).
        """
        state = self._state
        n_labels = len(set(state.references.labels))
        k = min(k or n_labels, n_labels)
        hits = state.index.search(np.asarray(embeddings, dtype=np.float32), n_labels)
        out = []
        for i, h in enumerate(hits):
            labels, sims = list(h.labels), h.similarities.astype(np.float64)
            if normalised is not None and self.settings.DTW_ENABLED:
                known = None if dtw_distances is None else dtw_distances[i]
                refined, _, _ = self._dtw_refine(normalised[i], h, sims, state, known)
                order = np.argsort(-refined, kind="stable")
                labels = [labels[j] for j in order]
            if not include_idle:
                labels = [x for x in labels if x not in self.idle_labels]
            out.append(labels[:k])
        return out

    # ------------------------------------------------------------------ internals

    def _motion_floor(self, points: np.ndarray) -> float:
        """MOTION_FLOOR in body mode; 0 without a torso, where features centre on the wrists and
        the motion column is always ~0 (hand presence is then the only idle signal)."""
        if self.feature_config.hands_only or not has_body(points):
            return 0.0
        return self.settings.MOTION_FLOOR

    def _dtw_refine(self, normalised: np.ndarray, hits, sims: np.ndarray, state: _State,
                    known_distances: np.ndarray | None = None):
        """Blend DTW into the top DTW_TOP_N labels; others get the worst re-ranked DTW score
        (they are at least that far), which keeps re-ranked labels ahead of the rest."""
        s = self.settings
        n = min(s.DTW_TOP_N, len(sims))
        feats = state.references.features
        dists = np.full(len(sims), np.nan)
        scores = np.full(len(sims), np.nan)
        if feats is None or n == 0:
            return sims.copy(), dists, scores
        best_refs = hits.reference_index[:n].astype(np.int64)
        if known_distances is not None:
            dists[:n] = known_distances[best_refs]
        else:
            refs = [self.stats.apply(feats[int(j)]) for j in best_refs]
            dists[:n] = dtw_mod.distances(normalised, refs, s.DTW_BACKEND, s.DTW_WINDOW)
        scores[:n] = dtw_mod.dtw_score(dists[:n], s.DTW_SCALE)
        filled = np.where(np.isnan(scores), np.nanmin(scores[:n]), scores)
        refined = (1 - s.DTW_WEIGHT) * sims + s.DTW_WEIGHT * filled
        return refined, dists, scores

    def _rank(self, embedding: np.ndarray, normalised: np.ndarray, state: _State, top_k: int, mode: str,
              timings: dict[str, float]) -> RecognitionResult:
        s = self.settings
        t = time.perf_counter()
        n_labels = len(set(state.references.labels))
        pool = n_labels if state.index.kind == "exact" else min(n_labels, max(top_k, s.DTW_TOP_N, 32))
        hits = state.index.search(embedding[None, :], pool)[0]
        sims = hits.similarities.astype(np.float64)
        t_search = time.perf_counter()
        timings["search"] = (t_search - t) * 1e3
        if mode == "full" and s.DTW_ENABLED:
            refined, dists, scores = self._dtw_refine(normalised, hits, sims, state)
        else:
            refined, dists, scores = sims.copy(), np.full(len(sims), np.nan), np.full(len(sims), np.nan)
        t_dtw = time.perf_counter()
        timings["dtw"] = (t_dtw - t_search) * 1e3

        order = np.argsort(-refined, kind="stable")
        conf = softmax(refined, s.CONFIDENCE_TEMPERATURE)
        proto_sims, proto_label = {}, None
        if state.prototypes is not None:
            ps = state.prototypes @ embedding
            proto_sims = dict(zip(state.prototype_labels, ps.tolist(), strict=True))
            proto_label = state.prototype_labels[int(np.argmax(ps))]
        candidates, idle_sim = [], None
        for j in order:
            label = hits.labels[j]
            if label in self.idle_labels:
                idle_sim = float(refined[j]) if idle_sim is None else idle_sim
                continue
            if len(candidates) < top_k:
                ref = int(hits.reference_index[j])
                candidates.append(Candidate(
                    label, state.categories.get(label, ""), float(refined[j]), float(sims[j]),
                    None if np.isnan(dists[j]) else float(dists[j]),
                    None if np.isnan(scores[j]) else float(scores[j]),
                    proto_sims.get(label), float(conf[j]),
                    {"index": ref, **state.references.rows[ref]},
                ))
        top_label = hits.labels[order[0]]
        margin = float(refined[order[0]] - refined[order[1]]) if len(order) > 1 else 1.0
        if mode == "full":
            reason = decision_gate(top_label, float(refined[order[0]]), margin, self.idle_labels,
                                   s.SIM_THRESHOLD, s.SIM_MARGIN, proto_label, s.PROTOTYPE_CHECK)
        else:
            reason = "idle" if top_label in self.idle_labels else "none"
        accepted = reason == "none"
        timings["decide"] = (time.perf_counter() - t_dtw) * 1e3
        return RecognitionResult(
            label=top_label if accepted else None,
            confidence=float(conf[order[0]]) if accepted else 0.0,
            accepted=accepted, rejection_reason=reason, candidates=candidates, motion=0.0,
            hand_frames=0, n_frames=0, margin=margin, prototype_label=proto_label, idle_similarity=idle_sim,
            model="encoder", backend=self.encoder.backend, mode=mode, timings_ms=timings,
        )

    def _classify(self, points: np.ndarray, classifier: ClassifierModel, top_k: int, t0: float) -> RecognitionResult:
        """Hands-only input (no torso): the bundle's hands-only classifier answers."""
        s = self.settings
        spec = classifier.spec
        prepared = prepare_sequence(points, spec.feature_config, return_info=True)
        n_hands = hand_frames(points[prepared.kept[0] : prepared.kept[1]])
        timings = {"prepare": (time.perf_counter() - t0) * 1e3}
        reason = input_gate(n_hands, prepared.motion, 0.0)  # hands-only features carry no motion
        candidates, label, confidence = [], None, 0.0
        if reason == "none":
            x = spec.stats.apply(prepared.features) if spec.stats is not None else prepared.features
            t1 = time.perf_counter()
            probs = classifier.probabilities(x[None], np.ones((1, len(x)), dtype=np.float32))[0]
            timings["embed"] = (time.perf_counter() - t1) * 1e3
            order = np.argsort(-probs, kind="stable")
            top_label = spec.labels[order[0]]
            for j in order:
                if spec.labels[j] in self.idle_labels or len(candidates) >= top_k:
                    continue
                p = float(probs[j])
                candidates.append(Candidate(spec.labels[j], "letter", p, None, confidence=p))
            if top_label in self.idle_labels:
                reason = "idle"
            elif probs[order[0]] < s.CLASSIFIER_MIN_CONFIDENCE:
                reason = "low_confidence"
            else:
                label, confidence = top_label, float(probs[order[0]])
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return RecognitionResult(label, confidence, reason == "none", reason, candidates, prepared.motion,
                                 n_hands, len(points), prepared.kept, model=classifier.name,
                                 backend=classifier.model.backend, timings_ms=timings)

    # ------------------------------------------------------------------ info

    def info(self) -> dict:
        """What /healthz and /model/info report."""
        state = self._state
        return {
            "model_name": self.model_name,
            "backend": self.encoder.backend,
            "embedding_dim": int(state.references.embeddings.shape[1]),
            "n_references": len(state.references),
            "n_labels": len(set(state.references.labels)),
            "labels": self.labels,
            "idle_labels": sorted(self.idle_labels),
            "index": state.index.kind,
            "classifiers": {n: {"labels": c.labels, "backend": c.model.backend} for n, c in self.classifiers.items()},
            "feature_config": self.feature_config.to_dict(),
            "bundle": str(self.bundle.directory) if self.bundle else None,
            "dtw_backend": self.settings.DTW_BACKEND if self.settings.DTW_ENABLED else None,
        }
