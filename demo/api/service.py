"""What the routes share: settings, the engine, the reference store, samples and extraction.

Built once by `create_app` (`Service.create`), reachable as ``app.state.service``. The routes
speak HTTP; this module speaks SignSeek: it turns engine results into the API's response
dicts and library exceptions into `ApiError`s with messages that say what to fix.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import signseek
from signseek.bundle import ENCODER_ONNX, Bundle, load_bundle
from signseek.engine import EncoderError, Engine, InputError
from signseek.landmarks.layouts import detect_layout
from signseek.paths import SAMPLE_DATASET
from signseek.settings import Settings, resolve_settings
from signseek.store import EnrolmentError, ReferenceStore, validate_name

from .errors import ApiError

DEFAULT_SAMPLES = SAMPLE_DATASET / "signs_sample.npz"
log = logging.getLogger("signseek.api")


def _r(value, digits: int = 6):
    return None if value is None else round(float(value), digits)


def result_to_response(result, model_version: str) -> dict:
    """An engine `RecognitionResult` -> the InferenceResponse dict (the GhSL guide's names)."""
    return {
        "label": result.label,
        "confidence": _r(result.confidence),
        "accepted": bool(result.accepted),
        "rejection_reason": result.rejection_reason,
        "top_k": [
            {
                "label": c.label,
                "category": c.category or None,
                "similarity": _r(c.similarity),
                "confidence": _r(c.confidence),
                "raw_similarity": _r(c.raw_similarity),
                "prototype_similarity": _r(c.prototype_similarity),
                "dtw_distance": _r(c.dtw_distance),
                "dtw_score": _r(c.dtw_score),
            }
            for c in result.candidates
        ],
        "motion": _r(result.motion),
        "model": result.model,
        "timings_ms": {k: round(float(v), 3) for k, v in result.timings_ms.items()},
        "model_version": model_version,
        "diagnostics": {
            "margin": _r(result.margin),
            "prototype_label": result.prototype_label,
            "idle_similarity": _r(result.idle_similarity),
            "hand_frames": int(result.hand_frames),
            "n_frames": int(result.n_frames),
            "kept": list(result.kept) if result.kept is not None else None,
            "backend": result.backend,
        },
    }


@dataclass
class SampleSet:
    """The stored sample sequences (shared NPZ layout), loaded once."""

    path: Path
    landmarks: np.ndarray  # [N, T, V]
    labels: list[str]
    layout: str
    by_label: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> SampleSet:
        if not path.is_file():
            raise ApiError(503, "unavailable", f"the sample dataset {path.name} is missing from {path.parent}")
        with np.load(path, allow_pickle=False) as data:
            landmarks = data["landmarks"].astype(np.float32)
            labels = [str(x) for x in data["label"]]
        by_label: dict[str, list[int]] = {}
        for i, label in enumerate(labels):
            by_label.setdefault(label, []).append(i)
        return cls(path, landmarks, labels, detect_layout(landmarks.shape[-1]), by_label)

    @property
    def labels_sorted(self) -> list[str]:
        return sorted(self.by_label)

    def indices(self, label: str | None) -> list[int]:
        return list(range(len(self.labels))) if label is None else self.by_label.get(label, [])

    def payload(self, index: int) -> dict:
        frames = self.landmarks[index]
        # Zeros stay zeros: in the flat layouts an all-zero part means "not detected".
        return {
            "frames": np.round(frames, 6).tolist(),
            "layout": self.layout,
            "fps": None,  # the shared NPZ files do not record a frame rate
            "label": self.labels[index],
            "index": index,
            "source": self.path.name,
        }


class Service:
    def __init__(self, settings: Settings, sources: dict[str, str], bundle: Bundle, engine: Engine,
                 store=None, samples_path: Path | None = None) -> None:
        self.settings = settings
        self.sources = sources
        self.bundle = bundle
        self.engine = engine
        self.store = store
        self.samples_path = Path(samples_path or DEFAULT_SAMPLES)
        self.started = time.monotonic()
        self.version = signseek.__version__
        self.model_version = f"{bundle.model_name}@{bundle.model_id[:12]}"
        self._samples: SampleSet | None = None
        self._extractor = None
        self._extract_lock = threading.Lock()  # one MediaPipe graph, one clip at a time

    @classmethod
    def create(cls, settings: Settings | None = None, samples_path: Path | None = None) -> Service:
        """Load the bundle (verified against its manifest: BundleError names a bad file)."""
        given = settings or Settings()
        bundle = load_bundle(given.MODELS_DIR)
        if settings is None:
            settings, sources = resolve_settings(bundle)
        else:
            # Values set on the given object win; the bundle's calibrated thresholds fill the rest.
            explicit = {name: getattr(given, name) for name in given.model_fields_set}
            settings, sources = resolve_settings(bundle, _env_file=None, **explicit)
            for name in explicit:
                sources[name] = "env" if name in os.environ else "argument"
        engine = Engine.from_bundle(bundle, settings)
        engine.setting_sources = sources
        store = cls._open_store(settings, bundle, engine)
        return cls(settings, sources, bundle, engine, store, samples_path)

    @staticmethod
    def _open_store(settings: Settings, bundle: Bundle, engine: Engine) -> ReferenceStore:
        return ReferenceStore(engine, settings.STORE_PATH, settings.MIN_ENROL_CLIPS)

    # ------------------------------------------------------------------ status

    @property
    def model_loaded(self) -> bool:
        return self.engine is not None

    @property
    def backend(self) -> str:
        return self.engine.encoder.backend

    @property
    def reference_count(self) -> int:
        return len(self.engine.references)

    def model_info(self) -> dict:
        info = self.engine.info()
        cfg = self.engine.feature_config
        return {
            "architecture": str(self.bundle.config.get("architecture", "GRU encoder + retrieval (cosine, DTW re-rank)")),
            "num_classes": len([x for x in info["labels"] if x not in info["idle_labels"]]),
            "input_shape": [cfg.seq_len if cfg.length_mode == "resample" else None, cfg.feature_dim],
            "parameters": self.bundle.config.get("parameters"),
            "labels": info["labels"],
            "model_name": info["model_name"],
            "model_version": self.model_version,
            "backend": info["backend"],
            "embedding_dim": info["embedding_dim"],
            "reference_count": info["n_references"],
            "idle_labels": info["idle_labels"],
            "index": info["index"],
            "classifiers": info["classifiers"],
            "encoder_sha256": self.bundle.manifest["files"][ENCODER_ONNX]["sha256"],
        }

    # ------------------------------------------------------------------ recognition

    def predict(self, points: np.ndarray, visibility=None, fps=None, top_k: int | None = None) -> dict:
        self.store.refresh_if_changed()  # another worker may have enrolled or deleted a sign
        try:
            result = self.engine.recognize(points, top_k=top_k)
        except InputError as exc:
            raise ApiError(422, "invalid_frames", str(exc)) from None
        except EncoderError as exc:  # the model runtime failed: the server, not the input, is at fault
            log.error("encoder failed: %s", exc)
            raise ApiError(503, "unavailable", f"the model could not run ({exc}); try again later") from None
        return result_to_response(result, self.model_version)

    # ------------------------------------------------------------------ samples

    def samples(self) -> SampleSet:
        if self._samples is None:
            self._samples = SampleSet.load(self.samples_path)
        return self._samples

    # ------------------------------------------------------------------ extraction

    @property
    def extract_lock(self) -> threading.Lock:
        """Held while the shared Holistic graph works on one clip."""
        return self._extract_lock

    def holistic(self):
        """The process's one MediaPipe Holistic graph for clips (API uploads and the UI's alike),
        built on first use. Callers hold ``extract_lock`` while they use it."""
        from signseek.landmarks.extract import HolisticExtractor

        if self._extractor is None:
            self._extractor = HolisticExtractor()
        return self._extractor

    def extract(self, path: Path):
        """A clip file -> (LandmarkSequence, extraction ms). Bad clips -> ApiError 4xx."""
        from signseek.landmarks.extract import ExtractionError, NoPersonDetected, extract_video
        from signseek.landmarks.video import VideoError, VideoTooLargeError, VideoTooLongError

        start = time.perf_counter()
        try:
            with self._extract_lock:
                result = extract_video(path, max_duration_s=self.settings.MAX_VIDEO_SECONDS,
                                       extractor=self.holistic())
        except (VideoTooLongError, VideoTooLargeError) as exc:
            raise ApiError(413, "video_too_long", str(exc)) from None
        except NoPersonDetected as exc:
            raise ApiError(422, "no_person", str(exc)) from None
        except (VideoError, ExtractionError) as exc:
            raise ApiError(422, "invalid_video", str(exc)) from None
        return result.sequence, round((time.perf_counter() - start) * 1000, 3)

    # ------------------------------------------------------------------ enrolment

    def _label_count(self, name: str) -> int:
        return sum(1 for label in self.engine.references.labels if label == name)

    def check_name(self, name: str) -> str:
        try:
            return validate_name(name)
        except EnrolmentError as exc:
            raise ApiError(422, "invalid_name", str(exc)) from None

    def enrol(self, name: str, clips: list[np.ndarray], category: str | None = None,
              sources: list[str] | None = None) -> dict:
        try:
            ids = self.store.enrol(name, clips, category or "word", sources=sources)
        except EnrolmentError as exc:
            raise ApiError(422, "enrolment_refused", str(exc)) from None
        except sqlite3.OperationalError as exc:  # e.g. the store's disk is full or locked too long
            log.error("reference store write failed: %s", exc)
            raise ApiError(503, "unavailable", f"the reference store could not be written ({exc}); try again") from None
        return {"name": name, "added": len(ids), "references": self._label_count(name),
                "total_references": self.reference_count}

    def list_signs(self) -> dict:
        self.store.refresh_if_changed()
        signs = [
            {"name": s.label, "category": s.category or None, "references": s.n_clips, "enrolled": s.enrolled}
            for s in self.store.list_signs(include_bundle=True)
        ]
        return {"signs": sorted(signs, key=lambda s: s["name"]), "total_references": self.reference_count}

    def delete(self, name: str) -> dict:
        removed = self.store.delete_sign(name)
        if removed == 0:
            raise ApiError(404, "not_found", f"no enrolled sign named {name!r}; GET /v1/signs lists them "
                           "(the bundle's own signs cannot be deleted)")
        return {"name": name, "removed": removed, "total_references": self.reference_count}

    def export(self) -> dict:
        """A new bundle (bundle references + enrolled ones) in a fresh folder next to the store."""
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        out = Path(self.settings.STORE_PATH).parent / "exports" / f"bundle-{stamp}-{time.time_ns() % 10**6:06d}"
        try:
            path = self.store.export_bundle(out, command="POST /v1/references/export")
        except EnrolmentError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        return {"path": str(path), "files": sorted(p.name for p in Path(path).iterdir() if p.is_file()),
                "references": self.reference_count}
