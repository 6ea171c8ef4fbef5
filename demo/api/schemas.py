"""Request and response models of the REST API (the GhSL deployment guide's field names).

These names are the contract with clients: keep them stable. `SequencePayload` is what a
client posts; `InferenceResponse` what it gets back. A sample from `/v1/samples/random` is a
`SequencePayload` with a label, so it can be posted straight back to `/v1/inference`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# A landmark coordinate: a finite number, or null where the landmark was not detected.
# allow_inf_nan=False: a 1e999 that json turns into inf is refused like a literal Infinity.
Coordinate = Annotated[float, Field(allow_inf_nan=False)] | None
LayoutName = Literal["canonical", "holistic", "pose_hands", "upper_hands", "hands"]

FRAMES_DOC = (
    "Per-frame landmark vectors, one list per frame, all of one length: 1629 (canonical: 543 "
    "points x (x, y, z)), 1662 (holistic: pose 33 x 4, face 468 x 3, hands 2 x 21 x 3), 258 "
    "(pose_hands: pose 33 x 4, hands), 170 (upper_hands: pose 0-10 x 4, hands) or 126 (hands). "
    "A part that was not detected is all zeros or all null; a frame may also be null as a whole."
)


class SequencePayload(BaseModel):
    """A landmark sequence to recognise (or to enrol)."""

    model_config = ConfigDict(
        extra="ignore",  # a sample's "label" etc. may ride along when it is posted back
        json_schema_extra={
            "example": {"frames": [[0.5, 0.5, 0.0, 1.0] + [0.0] * 254], "layout": "pose_hands", "fps": 30.0, "top_k": 5}
        },
    )

    frames: list[list[Coordinate] | None] = Field(..., description=FRAMES_DOC)
    layout: LayoutName | None = Field(
        None, description="Layout of each frame; inferred from the frame length when omitted."
    )
    fps: float | None = Field(None, gt=0, le=1000, description="Frames per second of the source, if known.")
    top_k: int | None = Field(None, ge=1, le=100, description="How many candidates to return (DEFAULT_TOP_K).")


class Candidate(BaseModel):
    """One ranked sign with the diagnostics that decided its place."""

    label: str
    category: str | None = Field(None, description="word, letter, idle, enrolled, ...")
    similarity: float = Field(..., description="Refined similarity: cosine blended with the DTW score.")
    confidence: float = Field(..., description="Softmax of the similarities at CONFIDENCE_TEMPERATURE.")
    raw_similarity: float | None = Field(None, description="Cosine similarity of the embeddings (null for a classifier).")
    prototype_similarity: float | None = Field(None, description="Cosine to the label's prototype.")
    dtw_distance: float | None = Field(None, description="Normalised DTW distance to the best reference.")
    dtw_score: float | None = Field(None, description="exp(-dtw_distance / DTW_SCALE).")


class InferenceResponse(BaseModel):
    """What the engine made of a sequence."""

    label: str | None = Field(..., description="The recognised sign, or null when rejected.")
    confidence: float
    accepted: bool
    rejection_reason: str | None = Field(
        None, description="Why no sign was accepted: one of signseek.ranker.REASONS: none, no_hands, low_motion, idle, unknown_sign, ambiguous_margin, prototype_disagreement, low_confidence"
    )
    top_k: list[Candidate]
    motion: float = Field(..., description="Mean motion energy of the kept frames.")
    model: str = Field(..., description="Which model answered: the encoder (retrieval) or a classifier head.")
    timings_ms: dict[str, float] = Field(default_factory=dict, description="Per-stage latency.")
    model_version: str
    diagnostics: dict[str, object] | None = Field(
        None, description="margin, prototype_label, idle_similarity, hand_frames, n_frames, kept, backend."
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
    reference_count: int
    version: str
    model_version: str | None = None


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
    settings: dict[str, object] = Field(..., description="Every setting in force (API_KEY masked).")
    sources: dict[str, str] = Field(..., description="Where each came from: default, bundle, env, .env or argument.")
    models_dir: str
    model_version: str | None = None


class EnrolRequest(BaseModel):
    """Landmark sequences of a new sign, added to the reference store (no retraining)."""

    name: str = Field(..., description="The sign's label: 1-64 letters, digits, spaces, '-', '_', '.' or \"'\".")
    sequences: list[SequencePayload] = Field(..., description="At least MIN_ENROL_CLIPS sequences.")
    category: str | None = Field(None, max_length=32, description="word (default), letter, phrase, number or other.")


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
    path: str
    files: list[str] = Field(default_factory=list)
    references: int


class ErrorResponse(BaseModel):
    """The body of every 4xx / 5xx."""

    error: str = Field(..., description="Machine-readable code, e.g. invalid_input, invalid_json, payload_too_large.")
    message: str = Field(..., description="What was wrong and what to fix.")
    status: int
    details: list[dict] | None = None
