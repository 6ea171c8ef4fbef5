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
from ..features import FeatureConfig, FeatureStats, flip_chirality, prepare_sequence
from ..landmarks.layouts import flat_to_canonical
from ..landmarks.schema import N_DIMS, N_LANDMARKS, LandmarkSequence
from ..ranker import Ranker, Reason
from ..settings import Settings, resolve_settings
from . import dtw as dtw_mod
from .batching import MicroBatcher
from .encoder import ClassifierModel, Encoder, pad_batch
from .gates import hand_frames, has_body, input_gate
from .search import ReferenceSet


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
    # refined: (1 - DTW_WEIGHT) * cosine + DTW_WEIGHT * dtw_score - the density offset, the order
    # the ranker used; shown at most 1 (a sign whose few references are spread out can score above)
    similarity: float
    raw_similarity: float | None  # cosine similarity of the label's best reference clip
    dtw_distance: float | None = None  # normalised DTW distance to that reference (None: not re-ranked)
    dtw_score: float | None = None  # exp(-dtw_distance / DTW_SCALE)
    prototype_similarity: float | None = None  # cosine to the label's prototype
    confidence: float = 0.0  # calibrated P(this sign is the right answer): p_known x softmax share
    reference: dict = field(default_factory=dict)  # the best reference's row (source, sample_id, ...)


@dataclass
class RecognitionResult:
    label: str | None  # the accepted sign, None when rejected ("no sign")
    confidence: float  # calibrated P(the top answer is right); also for rejected answers (0 when gated)
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
    p_known: float | None = None  # P(the clip is one of the known signs), from the unknown-score
    unknown_score: float | None = None  # the answer's cosine (+ MARGIN_WEIGHT x its cosine margin)
    mirrored: bool = False  # the clip led with the left hand and was mirrored (canonical_hand)
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
class _Front:
    """A clip after steps 1-2: its points and prepared features, or already its answer."""

    points: np.ndarray
    prepared: object = None  # signseek.features.PreparedSequence
    normalised: np.ndarray | None = None
    n_hands: int = 0
    answer: RecognitionResult | None = None  # set when no embedding is needed (classifier, input gate)


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
        self._ranker: Ranker | None = None
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
        refs = self._ranker.references
        if refs.features:
            seq = self.stats.apply(refs.features[0])
            self.encoder.embed(seq[None], np.ones((1, len(seq)), dtype=np.float32))
            dtw_mod.distances(seq, [seq], self.settings.DTW_BACKEND, self.settings.DTW_WINDOW)
        return self

    # ------------------------------------------------------------------ references

    @property
    def ranker(self) -> Ranker:
        """The decision over the current references (swapped whole when they change)."""
        return self._ranker

    @property
    def references(self) -> ReferenceSet:
        return self._ranker.references

    @property
    def labels(self) -> list[str]:
        """Every label in the references, idle ones included, sorted."""
        return self._ranker.labels

    @property
    def index_kind(self) -> str:
        return self._ranker.index.kind

    def set_references(self, references: ReferenceSet) -> None:
        """Swap in a new reference set (recognition in flight keeps the old one). Rebuilds the
        ranker's index: milliseconds for exact search, seconds for an ANN index of 100k references."""
        if len(references) == 0:
            raise ValueError("the engine needs at least one reference")
        ranker = Ranker(references, self.settings, self.stats, self.idle_labels, self._base_categories)
        with self._lock:
            self._ranker = ranker

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
        top_k = top_k or self.settings.DEFAULT_TOP_K
        with self.batcher.expect() as ticket:
            front = self._front(landmarks, layout, mode, top_k, t0, timings)
            if front.answer is not None:
                return front.answer
            t1 = time.perf_counter()
            embedding = ticket.submit(front.normalised)
        timings["embed"] = (time.perf_counter() - t1) * 1e3
        result = self._answer(front, embedding, self._ranker, top_k, mode, timings)
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return result

    def _front(self, landmarks, layout: str | None, mode: str, top_k: int, t0: float,
               timings: dict[str, float]) -> _Front:
        """Steps 1-2 for one clip: prepare it, and answer at once where no embedding is needed
        (the hands-only classifier, or a rejection by the input gates)."""
        points = as_points(landmarks, layout)
        if mode == "full" and not has_body(points) and "fingerspelling" in self.classifiers:
            return _Front(points, answer=self._classify(points, self.classifiers["fingerspelling"], top_k, t0))
        prepared = prepare_sequence(points, self.feature_config, return_info=True)
        front = _Front(points, prepared, self.stats.apply(prepared.features),
                       hand_frames(points[prepared.kept[0] : prepared.kept[1]]))
        timings["prepare"] = (time.perf_counter() - t0) * 1e3
        reason = input_gate(front.n_hands, prepared.motion, self._motion_floor(points)) if mode == "full" else Reason.NONE
        if reason is not Reason.NONE:
            timings["total"] = (time.perf_counter() - t0) * 1e3
            front.answer = RecognitionResult(
                None, 0.0, False, reason.value, [], prepared.motion, front.n_hands, len(points), prepared.kept,
                mirrored=prepared.mirrored, model="encoder", backend=self.encoder.backend, mode=mode,
                timings_ms=timings)
        return front

    async def recognize_async(self, landmarks, top_k: int | None = None, layout: str | None = None,
                              mode: str = "full") -> RecognitionResult:
        """`recognize` in a worker thread: concurrent awaits batch into shared encoder calls."""
        return await asyncio.to_thread(self.recognize, landmarks, top_k, layout, mode)

    def recognize_many(self, clips: Sequence, top_k: int | None = None, layout: str | None = None,
                       mode: str = "full", batch_size: int = 256) -> list[RecognitionResult]:
        """Many clips with one encoder call per ``batch_size`` (batch jobs, evaluation)."""
        top_k = top_k or self.settings.DEFAULT_TOP_K
        fronts = [self._front(clip, layout, mode, top_k, time.perf_counter(), {}) for clip in clips]
        todo = [f for f in fronts if f.answer is None]
        if todo:
            ranker = self._ranker
            embeddings = self.encoder.embed_sequences([f.normalised for f in todo], batch_size)
            for front, embedding in zip(todo, embeddings, strict=True):
                front.answer = self._answer(front, embedding, ranker, top_k, mode, {})
        return [f.answer for f in fronts]

    def rank_labels(self, prepared: Sequence[np.ndarray], mode: str = "encoder", k: int | None = None,
                    include_idle: bool = True, batch_size: int = 256) -> list[list[str]]:
        """Ranked labels for many prepared (not normalised) sequences: top-1/top-5/MRR in evaluation.

        No gates. ``mode="encoder"``: per-label best cosine. ``mode="full"``: plus DTW re-rank of
        the top DTW_TOP_N labels. ``k``: labels per query (default: all labels).
        """
        normalised = [self.stats.apply(p) for p in prepared]
        embeddings = self.encoder.embed_sequences(normalised, batch_size)
        rankings = self._ranker.rank_many(embeddings, normalised if mode == "full" else None)
        idle = self.idle_labels
        return [[x for x in r.labels if include_idle or x not in idle][:k] for r in rankings]

    # ------------------------------------------------------------------ internals

    def _motion_floor(self, points: np.ndarray) -> float:
        """MOTION_FLOOR in body mode; 0 without a torso, where features centre on the wrists and
        the motion column is always ~0 (hand presence is then the only idle signal)."""
        if self.feature_config.hands_only or not has_body(points):
            return 0.0
        return self.settings.MOTION_FLOOR

    def _answer(self, front: _Front, embedding: np.ndarray, ranker: Ranker, top_k: int, mode: str,
                timings: dict[str, float]) -> RecognitionResult:
        """Steps 4-7: search, DTW re-rank and decide (the Ranker), as a RecognitionResult."""
        full = mode == "full"
        ranking = ranker.rank(embedding, front.normalised if full else None, top_k)
        timings.update(ranking.timings_ms)
        t = time.perf_counter()
        decision = ranker.decide(ranking)
        timings["decide"] = (time.perf_counter() - t) * 1e3
        if not full:  # encoder mode: the cosine order, no gates
            reason = Reason.IDLE if ranking.labels[0] in self.idle_labels else Reason.NONE
        else:
            reason = decision.reason
        accepted = reason is Reason.NONE
        candidates, idle_sim = [], None
        refs = ranker.references
        for j, label in enumerate(ranking.labels):
            if label in self.idle_labels:
                idle_sim = float(ranking.refined[j]) if idle_sim is None else idle_sim
                continue
            if len(candidates) < top_k:
                ref = int(ranking.reference_index[j])
                dist, score = ranking.dtw_distance[j], ranking.dtw_score[j]
                candidates.append(Candidate(
                    label, ranker.categories.get(label, ""), min(1.0, float(ranking.refined[j])), min(1.0, float(ranking.cosine[j])),
                    None if np.isnan(dist) else float(dist), None if np.isnan(score) else float(score),
                    ranking.prototype_similarity.get(label), float(decision.probabilities[j]),
                    {"index": ref, **refs.rows[ref]},
                ))
        prepared = front.prepared
        return RecognitionResult(
            label=ranking.labels[0] if accepted else None, confidence=decision.confidence, accepted=accepted,
            rejection_reason=reason.value, candidates=candidates, motion=prepared.motion,
            hand_frames=front.n_hands, n_frames=len(front.points), kept=prepared.kept, margin=decision.margin,
            prototype_label=ranking.prototype_label, idle_similarity=idle_sim, p_known=decision.p_known,
            unknown_score=decision.unknown_score, mirrored=prepared.mirrored, model="encoder",
            backend=self.encoder.backend, mode=mode, timings_ms=timings,
        )

    def _classify(self, points: np.ndarray, classifier: ClassifierModel, top_k: int, t0: float) -> RecognitionResult:
        """Hands-only input (no torso): the bundle's hands-only classifier answers."""
        s = self.settings
        spec = classifier.spec
        prepared = prepare_sequence(points, spec.feature_config, return_info=True)
        n_hands = hand_frames(points[prepared.kept[0] : prepared.kept[1]])
        timings = {"prepare": (time.perf_counter() - t0) * 1e3}
        reason = input_gate(n_hands, prepared.motion, 0.0).value  # hands-only features carry no motion
        candidates, label, confidence = [], None, 0.0
        if reason == "none":
            views = [prepared.features]
            if spec.feature_config.canonical_hand:  # the same letter whichever hand made it
                views.append(flip_chirality(prepared.features, spec.feature_config))
            x = np.stack([spec.stats.apply(v) if spec.stats is not None else v for v in views])
            t1 = time.perf_counter()
            probs = classifier.probabilities(x, np.ones(x.shape[:2], dtype=np.float32)).mean(axis=0)
            timings["embed"] = (time.perf_counter() - t1) * 1e3
            order = np.argsort(-probs, kind="stable")
            top_label = spec.labels[order[0]]
            for j in order:
                if spec.labels[j] in self.idle_labels or len(candidates) >= top_k:
                    continue
                p = float(probs[j])
                candidates.append(Candidate(spec.labels[j], "letter", p, None, confidence=p))
            confidence = float(probs[order[0]])
            if top_label in self.idle_labels:
                reason = "idle"
            elif confidence < s.CLASSIFIER_MIN_CONFIDENCE:
                reason = "low_confidence"
            else:
                label = top_label
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return RecognitionResult(label, confidence, reason == "none", reason, candidates, prepared.motion,
                                 n_hands, len(points), prepared.kept, mirrored=prepared.mirrored,
                                 model=classifier.name, backend=classifier.model.backend, timings_ms=timings)

    # ------------------------------------------------------------------ info

    def info(self) -> dict:
        """What /healthz and /model/info report."""
        ranker = self._ranker
        return {
            "model_name": self.model_name,
            "backend": self.encoder.backend,
            "embedding_dim": int(ranker.references.embeddings.shape[1]),
            "n_references": len(ranker.references),
            "n_labels": len(set(ranker.references.labels)),
            "labels": self.labels,
            "idle_labels": sorted(self.idle_labels),
            "index": ranker.index.kind,
            "classifiers": {n: {"labels": c.labels, "backend": c.model.backend} for n, c in self.classifiers.items()},
            "feature_config": self.feature_config.to_dict(),
            "bundle": str(self.bundle.directory) if self.bundle else None,
            "dtw_backend": self.settings.DTW_BACKEND if self.settings.DTW_ENABLED else None,
        }
