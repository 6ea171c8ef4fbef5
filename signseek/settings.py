"""Serving settings, by environment variable, with the GhSL deployment guide's names.

Precedence, lowest to highest:
  1. the defaults below (the guide's defaults),
  2. calibrated thresholds in the bundle's model_config.json ("thresholds": {NAME: value}),
  3. environment variables and a `.env` file (project root, then the working directory).

    from signseek.settings import resolve_settings
    settings, sources = resolve_settings(bundle)       # bundle: a Bundle, a config dict or None
    settings.SIM_THRESHOLD, sources["SIM_THRESHOLD"]   # 0.62, "bundle"

`sources` maps every field to "default", "bundle", "env" or ".env" (what /v1/config shows).
`Settings()` alone gives defaults + environment, without a bundle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .paths import PROJECT_ROOT

SECRET_FIELDS = frozenset({"API_KEY"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(PROJECT_ROOT / ".env", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=True,
        validate_default=True,
    )

    # Where things are.
    MODELS_DIR: Path = PROJECT_ROOT / "models"
    VIDEOS_DIR: Path = PROJECT_ROOT / "sample_dataset" / "videos"
    STORE_PATH: Path = PROJECT_ROOT / "data" / "enrolled.db"  # *.db is gitignored

    # Sequences and results.
    SEQ_LEN: int = Field(32, ge=4, le=1024)  # replaces the bundle's feature_config.seq_len only if set
    DEFAULT_TOP_K: int = Field(5, ge=1, le=100)

    # Gates. Static letters move little (~0.01) so the motion floor stays low: hand presence is
    # the main "nobody is signing" signal.
    MOTION_FLOOR: float = Field(0.001, ge=0.0)  # static letters measured down to ~0.0025
    SIM_THRESHOLD: float = Field(0.55, ge=-1.0, le=1.0)
    SIM_MARGIN: float = Field(0.01, ge=0.0, le=2.0)
    PROTOTYPE_CHECK: bool = True  # reject when the nearest prototype disagrees with the top-1
    CONFIDENCE_TEMPERATURE: float = Field(0.05, gt=0.0)
    CLASSIFIER_MIN_CONFIDENCE: float = Field(0.4, ge=0.0, le=1.0)  # hands-only classifier gate

    # DTW re-ranking.
    DTW_ENABLED: bool = True
    DTW_TOP_N: int = Field(5, ge=1, le=100)
    DTW_WEIGHT: float = Field(0.3, ge=0.0, le=1.0)  # refined = (1-w) * cosine + w * dtw_score
    DTW_BACKEND: Literal["dtaidistance", "fastdtw"] = "dtaidistance"
    DTW_WINDOW: int | None = Field(8, ge=1)  # Sakoe-Chiba band (frames); fastdtw: its radius
    DTW_SCALE: float = Field(0.5, gt=0.0)  # dtw_score = exp(-d / DTW_SCALE); d: same sign ~0.27, other ~0.63

    # Runtime.
    ENABLE_CUDA: bool = False
    ANN_THRESHOLD: int = Field(20000, ge=1)  # exact search below this many references, ANN above
    BATCH_MAX_SIZE: int = Field(16, ge=1, le=1024)
    BATCH_MAX_WAIT_MS: float = Field(2.0, ge=0.0, le=1000.0)
    INTRA_OP_THREADS: int = Field(1, ge=0)  # ONNX Runtime threads per call (0 = its default)
    ENCODER_INT8: bool = False  # serve sign_encoder.int8.onnx (its accuracy change is in the manifest)

    # Input limits (the API enforces them).
    MAX_FRAMES: int = Field(600, ge=1)
    MAX_VIDEO_SECONDS: float = Field(20.0, gt=0)
    MAX_UPLOAD_MB: float = Field(50.0, gt=0)

    # Enrolment and access.
    MIN_ENROL_CLIPS: int = Field(3, ge=1)
    API_KEY: str | None = None

    def public_dict(self) -> dict[str, Any]:
        """Every setting as JSON-friendly values, the API key masked."""
        out = {}
        for name, value in self.model_dump().items():
            if name in SECRET_FIELDS:
                value = "***" if value else None
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


# Bundle thresholds may set only these (model-dependent) fields.
BUNDLE_TUNABLE = frozenset(
    {
        "MOTION_FLOOR",
        "SIM_THRESHOLD",
        "SIM_MARGIN",
        "CONFIDENCE_TEMPERATURE",
        "CLASSIFIER_MIN_CONFIDENCE",
        "DTW_WEIGHT",
        "DTW_TOP_N",
        "DTW_WINDOW",
        "DTW_SCALE",
        "PROTOTYPE_CHECK",
    }
)


def _bundle_thresholds(bundle: Any) -> dict[str, Any]:
    if bundle is None:
        return {}
    config = bundle if isinstance(bundle, dict) else getattr(bundle, "config", {})
    thresholds = config.get("thresholds") or {}
    return {k: v for k, v in thresholds.items() if k in BUNDLE_TUNABLE and v is not None}


def resolve_settings(bundle: Any = None, **settings_kwargs: Any) -> tuple[Settings, dict[str, str]]:
    """Settings with the precedence env/.env > bundle thresholds > defaults, and each value's source.

    ``bundle``: a `signseek.bundle.Bundle`, a model_config dict, or None. ``settings_kwargs``
    go to `Settings` (e.g. ``_env_file=None`` in tests to ignore a developer's .env).
    """
    from_env = Settings(**settings_kwargs)
    env_set = set(from_env.model_fields_set)
    calibrated = {k: v for k, v in _bundle_thresholds(bundle).items() if k not in env_set}
    settings = Settings(**settings_kwargs, **calibrated) if calibrated else from_env
    sources = {}
    for name in Settings.model_fields:
        if name in env_set:
            sources[name] = "env" if name in os.environ else ".env"
        elif name in calibrated:
            sources[name] = "bundle"
        else:
            sources[name] = "default"
    return settings, sources
