"""Request and response models of the REST API: the GhSL deployment guide's contract, exactly,
with SignSeek's own fields beside it.

These names are the contract with clients: keep them stable. `SequencePayload` is what a
client posts (the guide's `{frames, top_k, metadata: {fps, source}}`); `InferenceResponse` what
it gets back (the guide's `{top_k: N, results: [...]}` plus SignSeek's top-level `label`,
`accepted`, `model`, `timings_ms`, ...). A sample from `/v1/samples/random` is a
`SequencePayload` with a label, so it can be posted straight back to `/v1/inference`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from signseek.landmarks.layouts import LAYOUT_BY_SIZE
from signseek.ranker import REASONS
from signseek.store import CATEGORIES

COORDINATE_LIMIT = 1e6

# A landmark coordinate: a JSON number (strict: not true, not "0.5"), finite and within
# +-COORDINATE_LIMIT (MediaPipe's normalised coordinates are around 0-1), or null where the
# landmark was not detected. allow_inf_nan=False: a 1e999 that parses as inf is refused too.
# The WebSocket and Socket.IO doors apply the same rule (demo/api/payloads.py).
Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-COORDINATE_LIMIT, le=COORDINATE_LIMIT)] | None
LayoutName = Literal["canonical", "holistic", "pose_hands", "upper_hands", "hands"]
# signseek.store.NAME_PATTERN without spaces at either end (the service refuses those rather than guess).
NAME_SCHEMA = {"pattern": r"^[\w]([\w .'\-]*[\w.'\-])?$", "minLength": 1, "maxLength": 64}
MAX_FRAMES_SCHEMA = 600  # MAX_FRAMES' default; a server with another MAX_FRAMES says so in its 413


def _one_layout_per_payload(schema: dict, model=None) -> None:
    """The frames' JSON schema, exactly: every frame has one of the layouts' lengths (all the
    same), an explicit `layout` matches it, at least one frame is not null. A oneOf of one
    variant per layout (what pydantic cannot say in a type); the server checks the same."""
    props = schema.get("properties", {})
    frames = props.get("frames")
    if frames is None:
        return
    coordinate = {"anyOf": [{"type": "number", "minimum": -COORDINATE_LIMIT, "maximum": COORDINATE_LIMIT},
                            {"type": "null"}]}
    variants = []
    for size, name in sorted(LAYOUT_BY_SIZE.items()):
        frame = {"type": "array", "items": coordinate, "minItems": size, "maxItems": size}
        variants.append({"properties": {
            "frames": {"type": "array", "minItems": 1, "maxItems": MAX_FRAMES_SCHEMA,
                       "items": {"anyOf": [frame, {"type": "null"}]}, "contains": frame},
            "layout": {"anyOf": [{"enum": [name]}, {"type": "null"}]},
        }})
    props["frames"] = {"type": "array", "description": frames.get("description", ""), "minItems": 1,
                       "maxItems": MAX_FRAMES_SCHEMA}
    schema["oneOf"] = variants

FRAMES_DOC = (
    "Per-frame landmark vectors, one list per frame, all of one length: 1629 (canonical: 543 "
    "points x (x, y, z)), 1662 (holistic: pose 33 x 4, face 468 x 3, hands 2 x 21 x 3), 258 "
    "(pose_hands: pose 33 x 4, hands), 170 (upper_hands: pose 0-10 x 4, hands) or 126 (hands). "
    "A part that was not detected is all zeros or all null; a frame may also be null as a whole."
)


class PayloadMetadata(BaseModel):
    """The guide's `metadata`: how the frames were captured."""

    model_config = ConfigDict(extra="ignore")

    fps: float | None = Field(None, gt=0, le=1000, description="Frames per second of the capture.")
    source: str | None = Field(None, max_length=64, description="Where the frames came from, e.g. 'webcam' (logged).")


class SequencePayload(BaseModel):
    """A landmark sequence to recognise (or to enrol)."""

    model_config = ConfigDict(
        extra="ignore",  # a sample's "label" etc. may ride along when it is posted back
        json_schema_extra=_one_layout_per_payload,
    )

    frames: list[list[Coordinate] | None] = Field(..., description=FRAMES_DOC)
    layout: LayoutName | None = Field(
        None, description="Layout of each frame; inferred from the frame length when omitted."
    )
    fps: float | None = Field(None, gt=0, le=1000, description="Frames per second of the source, if known "
                              "(SignSeek's name; `metadata.fps` is the guide's and wins when both are sent).")
    top_k: int | None = Field(None, ge=1, le=100, description="How many candidates to return (DEFAULT_TOP_K).")
    metadata: PayloadMetadata | None = Field(
        None, description="The guide's capture metadata: `fps` resamples the sequence to MODEL_FPS; both are logged."
    )

    def source_fps(self) -> float | None:
        """The frame rate the client states: the guide's `metadata.fps`, else `fps`."""
        if self.metadata is not None and self.metadata.fps is not None:
            return self.metadata.fps
        return self.fps


class SentenceResult(BaseModel):
    """One ranked candidate, in the guide's names and meanings, with SignSeek's beside them."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "sentence_id": 42, "sentence": "THANK YOU", "category": "greeting", "video_file": "thank_you.mp4",
        "similarity": 0.83, "confidence": 0.91, "raw_similarity": 0.80, "proto_similarity": 0.78,
        "motion_mean": 0.0013, "accepted": True, "rejection_reason": None, "dtw_distance": 12.4,
        "dtw_score": 0.94, "label": "thank you", "prototype_similarity": 0.78}})

    sentence_id: int = Field(..., description="The sign's id (embeddings_map.csv; stable per label).")
    sentence: str = Field(..., description="The sign's text to show: a word or a phrase (defaults to its label).")
    category: str | None = Field(None, description="word, letter, phrase, idle, ...")
    video_file: str = Field(..., description="GET /videos/{video_file} shows how the sign is made: a recorded clip, "
                            "or for a reference without one a rendered skeleton clip.")
    similarity: float = Field(..., description="Refined similarity: cosine blended with the DTW score.")
    confidence: float = Field(..., description="This candidate's softmax share at CONFIDENCE_TEMPERATURE.")
    raw_similarity: float | None = Field(None, description="Cosine similarity of the embeddings (null for a classifier).")
    proto_similarity: float | None = Field(None, description="Cosine to the sign's prototype (mean embedding).")
    motion_mean: float = Field(..., description="Mean motion energy of the query's kept frames.")
    accepted: bool = Field(..., description="True only for the first result, when it passed every gate.")
    rejection_reason: str | None = Field(
        None, description="On the first result: null when accepted, else why (signseek.ranker.Reason: "
        + ", ".join(r for r in REASONS if r != "none") + "). Null on the others: only the top answer is gated."
    )
    dtw_distance: float | None = Field(None, description="Normalised DTW distance to the best reference (null: not re-ranked).")
    dtw_score: float | None = Field(None, description="exp(-dtw_distance / DTW_SCALE).")
    label: str = Field(..., description="SignSeek: the reference label.")
    prototype_similarity: float | None = Field(None, description="SignSeek's name for proto_similarity.")


class InferenceResponse(BaseModel):
    """What the engine made of a sequence: the guide's `top_k` and `results`, SignSeek's fields beside."""

    top_k: int = Field(..., description="The guide's: how many results there are.")
    results: list[SentenceResult] = Field(..., description="The guide's: ranked candidates, best first.")
    label: str | None = Field(..., description="The recognised sign, or null when rejected.")
    confidence: float
    accepted: bool
    rejection_reason: str | None = Field(
        None, description="Why no sign was accepted: one of signseek.ranker.Reason: " + ", ".join(REASONS)
    )
    motion: float = Field(..., description="Mean motion energy of the kept frames.")
    model: str = Field(..., description="Which model answered: the encoder (retrieval) or a classifier head.")
    timings_ms: dict[str, float] = Field(default_factory=dict, description="Per-stage latency.")
    model_version: str
    diagnostics: dict[str, object] | None = Field(
        None, description="margin, prototype_label, idle_similarity, hand_frames, n_frames, kept, backend, "
        "fps (stated), resampled_to."
    )


class SamplePayload(SequencePayload):
    """A stored sequence from the sample dataset, in the SequencePayload shape, with its label."""

    label: str
    index: int = Field(..., description="Index of the sequence in the sample file.")
    source: str = Field(..., description="The sample file it came from.")


class HealthzResponse(BaseModel):
    status: Literal["ok", "degraded"]
    model_loaded: bool
    backend: str = Field(..., description="Encoder runtime: onnx, onnx-int8 or torchscript (fallback).")
    reference_count: int = Field(..., description="References in force, enrolments by other processes included.")
    version: str
    model_version: str | None = None
    writes: Literal["open", "key", "read_only"] = Field(
        ..., description="Who may change the reference store: anyone (open: no API_KEY), key holders, nobody.")
    warnings: list[str] = Field(default_factory=list, description="What start-up warned about (e.g. open writes).")


class HandTalkHealth(BaseModel):
    """HandTalk's GET /health."""

    status: Literal["healthy", "unhealthy"]
    model_loaded: bool
    uptime_seconds: float


class HandTalkModelInfo(BaseModel):
    """HandTalk's GET /model/info, plus what SignSeek knows about its bundle."""

    model_config = ConfigDict(extra="allow")

    architecture: str
    num_classes: int
    input_shape: list[int | None]
    parameters: int | None = None
    labels: list[str] = Field(default_factory=list)


class ConfigResponse(BaseModel):
    settings: dict[str, object] = Field(..., description="Every setting in force (API_KEY masked; paths relative "
                                        "to the project unless PUBLIC_PATHS).")
    sources: dict[str, str] = Field(..., description="Where each came from: default, bundle, env, .env or argument.")
    models_dir: str
    model_version: str | None = None
    access: dict[str, object] = Field(default_factory=dict, description="writes: open / key / read_only, ...")
    guide_names: list[dict[str, object]] = Field(
        default_factory=list, description="The GhSL guide's setting names found (DTW_RADIUS, ...) and what each did: "
        "applied, overridden, not_mapped, matches, ignored, mismatch.")
    unknown_settings: list[dict[str, object]] = Field(
        default_factory=list, description="Variables that look like settings (our prefixes) but are none.")
    warnings: list[str] = Field(default_factory=list)


class EnrolRequest(BaseModel):
    """Landmark sequences of a new sign, added to the reference store (no retraining)."""

    # The constraints are in the schema for clients; the service checks them with messages that
    # say what to fix (signseek.store.validate_name, MIN_ENROL_CLIPS, the categories).
    name: str = Field(..., description="The sign's label: 1-64 letters, digits, spaces, '-', '_', '.' or \"'\", "
                      "starting with a letter or digit.", json_schema_extra=NAME_SCHEMA)
    sequences: list[SequencePayload] = Field(..., description="At least MIN_ENROL_CLIPS (3) sequences.",
                                             json_schema_extra={"minItems": 3})
    category: str | None = Field(None, description="word (default), letter, phrase, number or other.",
                                 json_schema_extra={"anyOf": [{"enum": list(CATEGORIES)}, {"type": "null"}]})


class EnrolResponse(BaseModel):
    name: str
    added: int = Field(..., description="Reference sequences added for this sign now.")
    references: int = Field(..., description="Reference sequences of this sign in total.")
    total_references: int


class SignInfo(BaseModel):
    name: str
    category: str | None = None
    references: int
    enrolled: bool = Field(..., description="True for signs added through enrolment, False for the bundle's.")


class SignsResponse(BaseModel):
    signs: list[SignInfo]
    total_references: int


class DeleteResponse(BaseModel):
    name: str
    removed: int
    total_references: int


class ExportResponse(BaseModel):
    path: str = Field(..., description="The new bundle's folder (relative to the project unless PUBLIC_PATHS).")
    name: str = Field(..., description="The new bundle's folder name.")
    files: list[str] = Field(default_factory=list)
    references: int
    bytes: int = Field(..., description="Size of the new bundle on disk.")


class ErrorResponse(BaseModel):
    """The body of every 4xx / 5xx."""

    error: str = Field(..., description="Machine-readable code, e.g. invalid_input, invalid_json, payload_too_large.")
    message: str = Field(..., description="What was wrong and what to fix.")
    status: int
    details: list[dict] | None = None
