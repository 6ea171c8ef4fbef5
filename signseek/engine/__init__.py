"""The recognition engine: landmarks -> ranked signs, with every diagnostic.

Serving (the demo, SignPredictor):

    from signseek.engine import Engine
    engine = Engine.from_bundle("models")            # verifies the bundle; settings env > bundle > defaults
    result = engine.recognize(points)                # canonical [T, 543, 3], LandmarkSequence or flat [T, V]
    result.label, result.confidence, result.accepted, result.rejection_reason
    result.candidates[0].similarity, .raw_similarity, .dtw_distance, .dtw_score, .prototype_similarity
    result.timings_ms, result.model ("encoder" or "fingerspelling"), result.backend, result.to_dict()
    await engine.recognize_async(points)             # concurrent callers share one ONNX call (micro-batching)
    engine.recognize_many(list_of_clips)             # batch jobs: one ONNX call per 256 clips
    engine.set_references(reference_set)             # swap references live (the store does this on enrolment)
    engine.info()                                    # for /healthz and /model/info

The seven steps of `recognize`:
  1 prepare      `signseek.features.prepare_sequence` + the bundle's FeatureStats (the one preprocessing)
  2 gates        no hand in any frame -> "no_hands"; motion below MOTION_FLOOR -> "low_motion"
  3 embed        ONNX Runtime (CPU, or CUDA with ENABLE_CUDA), TorchScript fallback; micro-batched
  4 search       cosine per label (each label's best reference): exact matmul below ANN_THRESHOLD
                 references, a usearch HNSW index above
  5 DTW re-rank  the top DTW_TOP_N labels: DTW (DTW_BACKEND, DTW_WINDOW) between the query and each
                 label's best reference; refined = (1 - DTW_WEIGHT) * cosine + DTW_WEIGHT * exp(-d / DTW_SCALE)
  6 decide       `signseek.ranker.Ranker`: idle label on top -> "idle"; a calibrated confidence
                 (P(the clip is a known sign) from the answer's cosine, times its softmax share) below
                 MIN_CONFIDENCE -> "unknown_sign" or "ambiguous_margin"; refined margin < SIM_MARGIN ->
                 "ambiguous_margin"; nearest prototype != top-1 -> "prototype_disagreement"
  7 report       `RecognitionResult`, per-stage timings in ms
Clips with hands but no torso (HandTalk sends one hand) go to the bundle's hands-only
"fingerspelling" classifier when it has one (`result.model == "fingerspelling"`).

Evaluation (the trainer scores retrieval through this code):

    from signseek.engine import Encoder, Engine, ReferenceSet
    encoder = Encoder.load("out/sign_encoder.onnx")                       # or any object with .embed/.embed_sequences/.backend
    refs = ReferenceSet.from_sequences(encoder, prepared_list, labels, stats=stats)   # prepared = prepare_sequence(...)
    engine = Engine.from_parts(encoder, stats, feature_config, refs, settings)        # settings: signseek.settings.Settings
    ranked = engine.rank_labels(query_prepared_list, mode="encoder")    # list of label lists, best first (no gates)
    ranked = engine.rank_labels(query_prepared_list, mode="full")       # + DTW re-rank of the top DTW_TOP_N
    engine.recognize(points, mode="encoder")                            # encoder-only result (no DTW, no gates)
    signseek.engine.dtw.nearest_labels(norm_queries, norm_refs, labels, window)   # plain DTW-1NN baseline
"""

from ..ranker import REASONS, Ranker, Reason
from .batching import MicroBatcher
from .core import Candidate, Engine, InputError, RecognitionResult, as_points
from .dtw import DTWError
from .encoder import ClassifierModel, Encoder, EncoderError, pad_batch
from .search import AnnIndex, ExactIndex, ReferenceSet, build_index

__all__ = [
    "REASONS",
    "AnnIndex",
    "Ranker",
    "Reason",
    "Candidate",
    "ClassifierModel",
    "DTWError",
    "Encoder",
    "EncoderError",
    "Engine",
    "ExactIndex",
    "InputError",
    "MicroBatcher",
    "RecognitionResult",
    "ReferenceSet",
    "as_points",
    "build_index",
    "pad_batch",
]
