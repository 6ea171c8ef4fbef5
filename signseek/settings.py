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
import re
from pathlib import Path
from typing import Annotated, Any, Literal

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
    # A shared reference store for several processes or replicas (postgresql://user:pass@host/db);
    # empty: the SQLite file STORE_PATH. /v1/config shows it without the password.
    STORE_URL: str | None = None

    # Sequences and results.
    SEQ_LEN: int = Field(32, ge=4, le=1024)  # replaces the bundle's feature_config.seq_len only if set
    DEFAULT_TOP_K: int = Field(5, ge=1, le=100)

    # Gates. Static letters move little (~0.01) so the motion floor stays low: hand presence is
    # the main "nobody is signing" signal.
    MOTION_FLOOR: float = Field(0.001, ge=0.0)  # static letters measured down to ~0.0025
    # The decision rule (signseek.ranker.Ranker; calibrated values come with the bundle):
    # p_known = sigmoid((cosine + MARGIN_WEIGHT * cosine margin - SIM_THRESHOLD) / UNKNOWN_SCALE),
    # confidence = p_known * softmax(refined / CONFIDENCE_TEMPERATURE), accept at MIN_CONFIDENCE.
    SIM_THRESHOLD: float = Field(0.55, ge=-1.0, le=2.0)  # unknown-score where p_known = 0.5
    UNKNOWN_SCALE: float = Field(0.05, gt=0.0, le=1.0)  # how fast p_known rises around SIM_THRESHOLD
    MARGIN_WEIGHT: float = Field(0.0, ge=0.0, le=10.0)  # weight of the cosine margin in the unknown-score
    MIN_CONFIDENCE: float = Field(0.5, ge=0.0, le=1.0)  # accept when the calibrated confidence reaches it
    # Added to SIM_THRESHOLD for an answer of that category (signseek.labels: letter, word, ...):
    # static handshapes (letters) sit closer to each other than words, so a letter answer needs a
    # higher score to be believed. Categories not listed use SIM_THRESHOLD as it is. JSON in the env.
    CATEGORY_SIM_OFFSET: dict[str, Annotated[float, Field(ge=-1.0, le=1.0)]] = Field(default_factory=dict)
    SIM_MARGIN: float = Field(0.01, ge=0.0, le=2.0)  # refined top-1 minus top-2 below this: ambiguous
    DENSITY_WEIGHT: float = Field(0.0, ge=0.0, le=5.0)  # discount a sign by how tight its references are
    # A sign with fewer references than the median sign gains FEW_REFS_WEIGHT x ln(median count /
    # its count): the best of 32 clips beats the best of 3 by chance alone. Opt-in (0): it also lets
    # a new sign that is a near twin of a shipped one take its answers (BENCHMARKS.md, enrolment).
    FEW_REFS_WEIGHT: float = Field(0.0, ge=0.0, le=1.0)
    PROTOTYPE_CHECK: bool = True  # reject when the nearest prototype disagrees with the top-1
    CONFIDENCE_TEMPERATURE: float = Field(0.05, gt=0.0)  # softmax over the signs' refined similarities
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
    # `python app.py`: processes serving POST /v1/inference beside the one that serves the UI,
    # Socket.IO and the other routes (1: that one alone). Each holds its own engine (~150 MB).
    API_WORKERS: int = Field(1, ge=1, le=64)

    # ---- Landmark extraction (signseek/landmarks): which MediaPipe graph reads clips ----
    # fast: pose + hands, no face mesh, frames pipelined (see signseek/landmarks/fast.py);
    # holistic: full legacy Holistic with the face mesh. A bundle whose features read face points
    # always gets holistic.
    LANDMARKS_MODE: Literal["fast", "holistic"] = "fast"

    # Input limits (the API enforces them).
    MAX_FRAMES: int = Field(600, ge=1)
    MAX_VIDEO_SECONDS: float = Field(20.0, gt=0)
    MAX_UPLOAD_MB: float = Field(50.0, gt=0)

    # Enrolment and access.
    MIN_ENROL_CLIPS: int = Field(3, ge=1)
    API_KEY: str | None = None

    # ---- API edge (demo/api): access, bounded work per request, disk, client frame rates ----
    READ_ONLY: bool = False  # refuse every write to the reference store, whatever the key (public demos)
    BUNDLE_SIGNS_WRITABLE: bool = False  # allow adding clips to a shipped (bundle) sign
    PUBLIC_PATHS: bool = False  # show absolute server paths in /v1/config and Gradio's /config
    MODEL_FPS: float = Field(30.0, ge=0.0)  # a sequence with a stated fps is resampled to this (0: never)
    MAX_JSON_MB: float = Field(16.0, gt=0)  # JSON bodies (600 frames of 1662 values is ~12 MB)
    JSON_PARSE_CONCURRENCY: int = Field(1, ge=1, le=64)  # JSON bodies of 1 MiB+ parsed at once (they hold the GIL)
    EXTRACT_QUEUE: int = Field(2, ge=0, le=64)  # clips waiting for the Holistic graph; more get 503
    QUEUE_WAIT_S: float = Field(60.0, gt=0)  # longest wait in a queue before a 503
    RETRY_AFTER_S: int = Field(10, ge=1)  # Retry-After of a 503 busy / 429
    RATE_LIMIT_INFERENCE: int = Field(600, ge=0)  # requests per client per minute (0: no limit)
    RATE_LIMIT_VIDEO: int = Field(20, ge=0)  # clip uploads (recognise, enrol) per client per minute
    RATE_LIMIT_WRITE: int = Field(30, ge=0)  # enrol / delete / export per client per minute
    EXPORTS_KEEP: int = Field(3, ge=1, le=100)  # exported bundles kept next to the store; older ones removed
    MAX_VIDEO_PIXELS: int = Field(1920 * 1080, ge=64 * 64)  # pixels a frame of an uploaded clip
    MAX_DECODE_MPIX: float = Field(2600.0, gt=0)  # megapixels decoded for one clip (1080p60 for 20 s: 2,488)
    # ---- end of the API edge's settings ----

    def public_dict(self) -> dict[str, Any]:
        """Every setting as JSON-friendly values, the API key masked."""
        out = {}
        for name, value in self.model_dump().items():
            if name in SECRET_FIELDS:
                value = "***" if value else None
            elif name == "STORE_URL" and value:
                value = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value)  # the password out
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


# Bundle thresholds may set only these (model-dependent) fields.
BUNDLE_TUNABLE = frozenset(
    {
        "MOTION_FLOOR",
        "SIM_THRESHOLD",
        "CATEGORY_SIM_OFFSET",
        "UNKNOWN_SCALE",
        "MARGIN_WEIGHT",
        "MIN_CONFIDENCE",
        "DENSITY_WEIGHT",
        "FEW_REFS_WEIGHT",
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
    # The guide's names (DTW_RADIUS, ...) count as environment values; ours win over them.
    aliased = {k: v for k, v in guide_aliases(settings_kwargs.get("_env_file", _DEFAULT_ENV_FILES))[0].items()
               if k not in env_set}
    calibrated = {k: v for k, v in _bundle_thresholds(bundle).items() if k not in env_set and k not in aliased}
    values = {k: v for k, (v, _) in aliased.items()}
    settings = Settings(**settings_kwargs, **values, **calibrated) if (calibrated or values) else from_env
    sources = {}
    for name in Settings.model_fields:
        if name in env_set or name in aliased:
            origin = aliased[name][1] if name in aliased else name
            sources[name] = "env" if origin in os.environ else ".env"
        elif name in calibrated:
            sources[name] = "bundle"
        else:
            sources[name] = "default"
    return settings, sources


# ---- the GhSL guide's settings names (owner: the API edge) -----------------------------------
# The guide (section 3.1) names some settings differently. Where the meaning matches, its name
# sets ours (ours wins when both are set); where it does not, start-up and /v1/config say so.

_DEFAULT_ENV_FILES = object()  # "the Settings' own env_file" (resolve_settings passes _env_file through)
GUIDE_ALIASES: dict[str, tuple[str, str]] = {
    # guide name: (our setting, how the value maps)
    "DTW_RADIUS": ("DTW_WINDOW", "the same: the DTW band half-width in frames (fastdtw: its radius)"),
    "DTW_TOPK": ("DTW_TOP_N", "the same: how many candidates DTW re-ranks"),
    "DTW_ALPHA": ("DTW_WEIGHT", "DTW_WEIGHT = 1 - DTW_ALPHA (the guide weights the cosine, we weight the DTW score)"),
}
GUIDE_NOT_MAPPED: dict[str, str] = {
    "DTW_LAMBDA": "not used: the guide's score is exp(-DTW_LAMBDA * d) on an unnormalised distance; SignSeek's "
                  "distance is normalised per frame, so set DTW_SCALE instead (score = exp(-d / DTW_SCALE))",
    "FEATURE_DIM": "not used: the feature size comes from the bundle's model_config.json (start-up compares them)",
}
# The guide's per-file paths; SignSeek loads every file from MODELS_DIR, verified by its manifest.
GUIDE_PATHS: dict[str, str] = {
    "ONNX_MODEL_PATH": "sign_encoder.onnx",
    "EMBEDDINGS_PATH": "embeddings.npy",
    "MAPPING_PATH": "embeddings_map.csv",
    "PROTOTYPES_PATH": "prototypes.npz",
    "GLOBAL_STATS_PATH": "global_stats.npz",
}


def _environment(env_file: Any = _DEFAULT_ENV_FILES) -> dict[str, str]:
    """Variables as Settings sees them: the .env file(s), then the process environment over them."""
    from dotenv import dotenv_values

    files = Settings.model_config.get("env_file") if env_file is _DEFAULT_ENV_FILES else env_file
    if files is None:
        files = ()
    elif isinstance(files, (str, Path)):
        files = (files,)
    merged: dict[str, str] = {}
    for path in files:
        if Path(path).is_file():
            merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(os.environ)
    return merged


def guide_aliases(env_file: Any = _DEFAULT_ENV_FILES) -> tuple[dict[str, tuple[Any, str]], list[dict]]:
    """The guide's names found in the environment -> ({our setting: (value, guide name)}, notes).

    Each note: {"name", "status": applied | overridden | not_mapped | matches | ignored, "setting",
    "message"}. A value that cannot be mapped (DTW_ALPHA not a number) raises ValueError.
    """
    env = _environment(env_file)
    values: dict[str, tuple[Any, str]] = {}
    notes: list[dict] = []
    for name, (ours, how) in GUIDE_ALIASES.items():
        if name not in env:
            continue
        raw = env[name]
        if name == "DTW_ALPHA":
            try:
                value: Any = round(1.0 - float(raw), 6)
            except ValueError:
                raise ValueError(f"DTW_ALPHA={raw!r} is not a number (the guide's cosine weight, 0-1)") from None
        else:
            value = raw
        if ours in env:
            notes.append({"name": name, "status": "overridden", "setting": ours,
                          "message": f"{name} is the guide's name for {ours}; {ours} is also set and wins"})
            continue
        values[ours] = (value, name)
        notes.append({"name": name, "status": "applied", "setting": ours,
                      "message": f"{name}={raw} sets {ours}={value}: {how}"})
    for name, why in GUIDE_NOT_MAPPED.items():
        if name in env:
            notes.append({"name": name, "status": "not_mapped", "setting": None, "message": f"{name}: {why}"})
    paths = {name: Path(env[name]) for name in GUIDE_PATHS if name in env}
    if paths:
        models_dir = Path(env["MODELS_DIR"]) if "MODELS_DIR" in env else None
        parents = {p.parent for p in paths.values()}
        standard = all(p.name == GUIDE_PATHS[n] for n, p in paths.items())
        if models_dir is None and "ONNX_MODEL_PATH" in paths and standard and len(parents) == 1:
            folder = parents.pop()
            values["MODELS_DIR"] = (folder, "ONNX_MODEL_PATH")
            notes.append({"name": "ONNX_MODEL_PATH", "status": "applied", "setting": "MODELS_DIR",
                          "message": f"MODELS_DIR is not set: the bundle is loaded from {folder.name!r}, the folder "
                                     f"of ONNX_MODEL_PATH ({', '.join(sorted(paths))} all point there)"})
        else:
            for name, path in sorted(paths.items()):
                inside = models_dir is not None and path.name == GUIDE_PATHS[name] and \
                    path.parent.resolve() == models_dir.resolve()
                notes.append({
                    "name": name, "status": "matches" if inside else "ignored", "setting": "MODELS_DIR",
                    "message": f"{name} names the bundle's {GUIDE_PATHS[name]} in MODELS_DIR: nothing to do" if inside
                    else f"{name} is not used: SignSeek loads {GUIDE_PATHS[name]} from MODELS_DIR, verified "
                         "against the bundle's export_manifest.json; put the file there (or point MODELS_DIR at "
                         "its folder)"})
    return values, notes


def unknown_settings(env_file: Any = _DEFAULT_ENV_FILES) -> list[dict]:
    """Variables that look like settings (one of our settings' prefixes, e.g. SIM_ or DTW_) but
    are neither ours nor the guide's: [{"name", "suggestion"}] (a typo is the usual reason)."""
    import difflib

    ours = set(Settings.model_fields)
    known = ours | set(GUIDE_ALIASES) | set(GUIDE_NOT_MAPPED) | set(GUIDE_PATHS)
    prefixes = {name.split("_", 1)[0] + "_" for name in ours if "_" in name}
    out = []
    for name in sorted(_environment(env_file)):
        if name in known or not any(name.startswith(p) for p in prefixes):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        out.append({"name": name, "suggestion": close[0] if close else None})
    return out


def settings_report(env_file: Any = _DEFAULT_ENV_FILES) -> dict:
    """What start-up logs and /v1/config shows about names: {"aliases": notes, "unknown": [...]}."""
    _, notes = guide_aliases(env_file)
    return {"aliases": notes, "unknown": unknown_settings(env_file)}
