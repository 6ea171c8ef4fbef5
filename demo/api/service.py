"""What every door shares: settings, the engine, the reference store, samples, extraction, and
the one rule for writes.

Built once by `create_app` (`Service.create`), reachable as ``app.state.service``; the Gradio UI
(demo/ui) calls the same object. The routes speak HTTP; this module speaks SignSeek: it turns
engine results into the API's response dicts and refuses with domain errors
(`signseek.errors.SignSeekError`: a code and a kind; demo/api/errors.py picks the HTTP status).

Every change to the reference store (`enrol`, `delete`, `export`) goes through
`authorize_write(key)`: READ_ONLY refuses all writes (403), a set API_KEY needs that key (401),
and a shipped (bundle) sign is read-only unless BUNDLE_SIGNS_WRITABLE (403). Whatever the door
(REST, Gradio, a script on the Service), the rule is this one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from anyio import CapacityLimiter, move_on_after, to_thread

import signseek
from signseek.bundle import ENCODER_ONNX, Bundle, load_bundle, stable_sentence_id
from signseek.engine import Engine
from signseek.errors import SignSeekError
from signseek.landmarks.layouts import detect_layout
from signseek.paths import PROJECT_ROOT, SAMPLE_DATASET
from signseek.settings import _DEFAULT_ENV_FILES, Settings, resolve_settings, settings_report
from signseek.store import EnrolmentError, ReferenceStore, open_store, validate_name

from .errors import Forbidden, NotFound, Unauthorized, Unavailable
from .limits import WorkQueue

DEFAULT_SAMPLES = SAMPLE_DATASET / "signs_sample.npz"
log = logging.getLogger("signseek.api")


def _r(value, digits: int = 6):
    return None if value is None else round(float(value), digits)


SKELETON_PREFIX = "skeleton_"  # video_file of a reference with no recorded clip: skeleton_<sentence_id>.mp4


def skeleton_video_name(sentence_id: int) -> str:
    return f"{SKELETON_PREFIX}{int(sentence_id)}.mp4"


class SentenceCatalog:
    """The guide's per-sign metadata (sentence_id, sentence, video_file) of the references in
    force, from their rows (embeddings_map.csv, or the store's rows for enrolled clips)."""

    def __init__(self, references) -> None:
        self.references = references
        self.by_label: dict[str, dict] = {}
        for label, row in zip(references.labels, references.rows, strict=True):
            entry = self.by_label.setdefault(label, {"sentence_id": None, "sentence": "", "video_file": ""})
            if entry["sentence_id"] is None and str(row.get("sentence_id", "")).strip() != "":
                entry["sentence_id"] = int(row["sentence_id"])
            entry["sentence"] = entry["sentence"] or str(row.get("sentence") or "")
            entry["video_file"] = entry["video_file"] or str(row.get("video_file") or "")
        self.by_id = {}
        for label in self.by_label:
            self.by_id[self.info(label)["sentence_id"]] = label

    def info(self, label: str, row: dict | None = None) -> dict:
        """sentence_id, sentence and video_file of ``label`` (``row``: the reference that matched)."""
        row = row or {}
        entry = self.by_label.get(label, {})
        sentence_id = row.get("sentence_id")
        if sentence_id is None or str(sentence_id).strip() == "":
            sentence_id = entry.get("sentence_id")
        sentence_id = stable_sentence_id(label) if sentence_id is None else int(sentence_id)
        video_file = str(row.get("video_file") or "") or entry.get("video_file") or skeleton_video_name(sentence_id)
        sentence = str(row.get("sentence") or "") or entry.get("sentence") or label
        return {"sentence_id": sentence_id, "sentence": sentence, "video_file": video_file}


def result_to_response(result, model_version: str, catalog: SentenceCatalog | None = None) -> dict:
    """An engine `RecognitionResult` -> the InferenceResponse dict: the guide's `top_k` (a count)
    and `results` (its field names and meanings), SignSeek's fields beside them."""
    motion = _r(result.motion)
    results = []
    for rank, c in enumerate(result.candidates):
        row = c.reference or {}
        meta = catalog.info(c.label, row) if catalog is not None else {
            "sentence_id": stable_sentence_id(c.label), "sentence": c.label, "video_file": ""}
        top = rank == 0
        results.append({
            **meta,
            "category": c.category or row.get("category") or None,
            "similarity": _r(c.similarity),
            "confidence": _r(c.confidence),
            "raw_similarity": _r(c.raw_similarity),
            "proto_similarity": _r(c.prototype_similarity),
            "motion_mean": motion,
            "accepted": bool(result.accepted) if top else False,
            "rejection_reason": (None if result.accepted else str(result.rejection_reason)) if top else None,
            "dtw_distance": _r(c.dtw_distance),
            "dtw_score": _r(c.dtw_score),
            "label": c.label,
            "prototype_similarity": _r(c.prototype_similarity),
        })
    return {
        "top_k": len(results),
        "results": results,
        "label": result.label,
        "confidence": _r(result.confidence),
        "accepted": bool(result.accepted),
        "rejection_reason": str(result.rejection_reason),
        "motion": motion,
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
            # The decision rule's unknown-score and P(a known sign) (the demo explains rejections with them).
            "unknown_score": _r(getattr(result, "unknown_score", None)),
            "p_known": _r(getattr(result, "p_known", None)),
        },
    }


SKELETON_CACHE_KEEP = 500  # rendered stand-in clips kept (a few tens of kB each)


def skeleton_cache_dir() -> Path:
    from demo.render import render_dir

    folder = render_dir() / "references"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prune_oldest(folder: Path, keep: int, pattern: str = "*") -> list[Path]:
    """Delete all but the ``keep`` newest entries of ``folder`` matching ``pattern``; returns
    what was removed (files and folders)."""
    entries = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for old in entries[keep:]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
        removed.append(old)
    return removed


def resample_to_fps(points: np.ndarray, fps: float | None, target: float, max_frames: int) -> tuple[np.ndarray, float | None]:
    """Points [T, 543, 3] captured at ``fps`` -> the same motion at ``target`` fps (linear in time;
    a point missing in either neighbouring frame stays missing), at most ``max_frames`` frames.
    Returns (points, the rate they are now at, or None when nothing was done: no fps stated,
    ``target`` 0, or within 10% of it). Velocities and motion energy in the features are per frame,
    so a 60 fps client would otherwise look half as fast as the references."""
    if not fps or not target or len(points) < 2 or abs(fps / target - 1.0) <= 0.1:
        return points, None
    n_in = len(points)
    n_out = int(min(max_frames, max(2, round((n_in - 1) * target / fps) + 1)))
    t = np.linspace(0.0, n_in - 1, n_out)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = (t - i0).astype(np.float32)[:, None, None]
    mixed = (1.0 - w) * points[i0] + w * points[i1]
    out = np.where(w == 0.0, points[i0], mixed).astype(np.float32)
    return out, round((n_out - 1) * fps / (n_in - 1), 3)


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
            raise Unavailable(f"the sample dataset {path.name} is missing on the server", code="no_samples")
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
        self._catalog: SentenceCatalog | None = None
        self.names_report: dict = {"aliases": [], "unknown": []}  # the guide's names, look-alike variables
        self._refresh_limiter = CapacityLimiter(1)  # /healthz's own thread: never waits for the busy pool
        s = settings
        self.extract_queue = WorkQueue("extract", "clip extraction", 1, s.EXTRACT_QUEUE, s.QUEUE_WAIT_S, s.RETRY_AFTER_S)
        self.json_queue = WorkQueue("json", "large request bodies", s.JSON_PARSE_CONCURRENCY,
                                    4 * s.JSON_PARSE_CONCURRENCY, s.QUEUE_WAIT_S, s.RETRY_AFTER_S)
        self._render_lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._extractor = None

    @classmethod
    def create(cls, settings: Settings | None = None, samples_path: Path | None = None) -> Service:
        """Load the bundle (verified against its manifest: BundleError names a bad file).

        ``settings`` None: from the environment and .env (the guide's names too), with the
        bundle's calibrated thresholds. Given: its explicitly set values win, the bundle fills the
        rest, and no .env file is read."""
        env_file = {} if settings is None else {"_env_file": None}
        explicit = {name: getattr(settings, name) for name in settings.model_fields_set} if settings else {}
        first, _ = resolve_settings(None, **env_file, **explicit)  # MODELS_DIR, the guide's names included
        bundle = load_bundle(first.MODELS_DIR)
        settings, sources = resolve_settings(bundle, **env_file, **explicit)
        for name in explicit:
            sources[name] = "env" if name in os.environ else "argument"
        engine = Engine.from_bundle(bundle, settings)
        engine.setting_sources = sources
        store = cls._open_store(settings, bundle, engine)
        service = cls(settings, sources, bundle, engine, store, samples_path)
        service.names_report = settings_report(env_file.get("_env_file", _DEFAULT_ENV_FILES))
        feature_dim = os.environ.get("FEATURE_DIM")
        if feature_dim is not None and feature_dim.strip() != str(bundle.feature_config.feature_dim):
            service.names_report["aliases"].append({
                "name": "FEATURE_DIM", "status": "mismatch", "setting": None,
                "message": f"FEATURE_DIM={feature_dim} but this bundle's features have "
                           f"{bundle.feature_config.feature_dim} columns (model_config.json); the bundle's is used"})
        return service

    @staticmethod
    def _open_store(settings: Settings, bundle: Bundle, engine: Engine) -> ReferenceStore:
        return open_store(engine, settings)  # STORE_URL (PostgreSQL), else the SQLite file STORE_PATH

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

    def catalog(self) -> SentenceCatalog:
        """Sentence metadata of the references in force (rebuilt when enrolment swaps them)."""
        references = self.engine.references
        catalog = self._catalog
        if catalog is None or catalog.references is not references:
            catalog = self._catalog = SentenceCatalog(references)
        return catalog

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
        """Recognise canonical points [T, 543, 3]. ``fps``: the rate the client states; the
        sequence is resampled to MODEL_FPS first (diagnostics say so). The engine's InputError
        (invalid) and EncoderError (unavailable) go out as they are."""
        self.refresh()  # another worker may have enrolled or deleted a sign
        points, resampled_to = resample_to_fps(points, fps, self.settings.MODEL_FPS, self.settings.MAX_FRAMES)
        try:
            result = self.engine.recognize(points, top_k=top_k)
        except SignSeekError as exc:
            if exc.kind == "unavailable":  # the model runtime failed: the server is at fault, log it
                log.error("encoder failed: %s", exc)
            raise
        response = result_to_response(result, self.model_version, self.catalog())
        response["diagnostics"].update(fps=None if fps is None else float(fps), resampled_to=resampled_to)
        return response

    # ------------------------------------------------------------------ samples

    def samples(self) -> SampleSet:
        if self._samples is None:
            self._samples = SampleSet.load(self.samples_path)
        return self._samples

    # ------------------------------------------------------------------ reference videos

    def reference_landmarks(self, label: str) -> np.ndarray | None:
        """Canonical points of one clip of ``label``: its first enrolled clip, else a sample
        sequence of it; None when neither exists."""
        from signseek.landmarks.layouts import flat_to_canonical

        points = self.store.clip_landmarks(label)
        if points is not None:
            return points
        try:
            samples = self.samples()
        except SignSeekError:
            return None
        indices = samples.indices(label)
        if not indices:
            return None
        points, _ = flat_to_canonical(samples.landmarks[indices[0]], samples.layout)
        return points

    def skeleton_video(self, sentence_id: int) -> Path:
        """A rendered skeleton clip of the sign ``sentence_id`` (for references with no recorded
        video), cached on disk by the landmarks it shows. NotFound when there is nothing to draw."""
        label = self.catalog().by_id.get(int(sentence_id))
        points = self.reference_landmarks(label) if label is not None else None
        if points is None:
            raise NotFound(f"no sign has sentence_id {sentence_id} with landmarks to draw; "
                           "video_file in an /v1/inference result names one that has")
        digest = hashlib.sha1(points.tobytes()).hexdigest()[:12]
        folder = skeleton_cache_dir()
        with self._render_lock:
            cached = sorted(folder.glob(f"{SKELETON_PREFIX}{sentence_id}-{digest}.*"))
            if cached:
                return cached[0]
            from demo.render import render_skeleton_video

            start = time.perf_counter()
            rendered = render_skeleton_video(points, fps=self.settings.MODEL_FPS or 30.0, out_dir=folder,
                                             caption=label, canvas_size=(360, 360))
            path = rendered.rename(folder / f"{SKELETON_PREFIX}{sentence_id}-{digest}{rendered.suffix}")
            prune_oldest(folder, keep=SKELETON_CACHE_KEEP)
            log.info("skeleton video rendered", extra={"fields": {
                "event": "skeleton_rendered", "sentence_id": int(sentence_id), "bytes": path.stat().st_size,
                "ms": round((time.perf_counter() - start) * 1000, 1)}})
            return path

    # ------------------------------------------------------------------ extraction

    @property
    def extract_lock(self) -> WorkQueue:
        """Held while the shared Holistic graph works on one clip: ``with service.extract_lock:``.
        A bounded queue, not a bare lock: one clip at work, EXTRACT_QUEUE more waiting (at most
        QUEUE_WAIT_S each); entering it beyond that raises Busy (503 + Retry-After)."""
        return self.extract_queue

    def holistic(self):
        """The process's one MediaPipe Holistic graph for clips (API uploads and the UI's alike),
        built on first use. Callers hold ``extract_lock`` while they use it."""
        from signseek.landmarks.extract import make_extractor

        if self._extractor is None:
            # The fast path unless LANDMARKS_MODE=holistic (or the bundle's features read face points).
            self._extractor = make_extractor(feature_config=self.bundle.feature_config)
        return self._extractor

    def clip_limits(self) -> dict:
        """What a clip may be, decided from its header before anything is decoded: MAX_VIDEO_SECONDS,
        MAX_VIDEO_PIXELS a frame, MAX_FRAMES frames once read at MODEL_FPS (faster clips are
        subsampled, not refused)."""
        s = self.settings
        return {"max_duration_s": s.MAX_VIDEO_SECONDS, "max_pixels": s.MAX_VIDEO_PIXELS,
                "max_frames": s.MAX_FRAMES, "max_fps": s.MODEL_FPS or 30.0}

    def check_clip(self, path: Path, display_name: str | None = None):
        """Probe ``path`` (its header only) and refuse it before any decoding when it breaks a limit
        or would cost more than MAX_DECODE_MPIX megapixels of decoding (every frame of H.264 is
        decoded even when only every n-th is kept: a 0.2 MB 1080p 240 fps clip is 10 Gpx).
        Raises the core's VideoError (video_too_large / video_too_long / ...)."""
        from signseek.landmarks.video import VideoTooLargeError, expected_frames, probe_video

        info = probe_video(path, display_name=display_name, **self.clip_limits())
        frames = expected_frames(info)
        if frames is not None:
            megapixels = info.width * info.height * frames / 1e6
            if megapixels > self.settings.MAX_DECODE_MPIX:
                raise VideoTooLargeError(
                    f"{info.display_name!r} is {frames} frames of {info.width}x{info.height} ({info.fps:g} fps): "
                    f"{megapixels:,.0f} megapixels to decode, more than MAX_DECODE_MPIX="
                    f"{self.settings.MAX_DECODE_MPIX:g}; send it shorter, at a lower frame rate or a lower "
                    "resolution (720p at 30 fps is plenty)")
        return info

    def extract(self, path: Path, display_name: str | None = None, ticket=None):
        """A clip file -> (LandmarkSequence, extraction ms). The clip is probed first and refused
        before it waits for the graph or is decoded (`check_clip`); a bad clip raises the core's
        typed VideoError / ExtractionError naming ``display_name`` (the upload's own name); Busy
        when the extraction queue is full. ``ticket``: a place in the queue the request already
        holds (limits.GuardMiddleware takes one before an upload is read)."""
        from signseek.landmarks.extract import extract_video

        start = time.perf_counter()
        self.check_clip(path, display_name)
        with ticket.held() if ticket is not None else self.extract_queue:
            result = extract_video(path, extractor=self.holistic(), display_name=display_name,
                                   **self.clip_limits())
        return result.sequence, round((time.perf_counter() - start) * 1000, 3)

    # ------------------------------------------------------------------ the one rule for writes

    @property
    def writes_open(self) -> bool:
        """True when anyone may change the reference store (no API_KEY, not READ_ONLY)."""
        return not self.settings.READ_ONLY and not self.settings.API_KEY

    def access(self) -> dict:
        """What /healthz and /v1/config say about writes."""
        s = self.settings
        mode = "read_only" if s.READ_ONLY else ("key" if s.API_KEY else "open")
        out = {"writes": mode, "bundle_signs_writable": bool(s.BUNDLE_SIGNS_WRITABLE)}
        if mode == "open":
            out["warning"] = WRITES_OPEN_WARNING
        return out

    def authorize_write(self, key: str | None) -> None:
        """Refuse a change to the reference store unless READ_ONLY is off and ``key`` matches
        API_KEY (when one is set). Raises Forbidden (403) or Unauthorized (401)."""
        if self.settings.READ_ONLY:
            raise Forbidden("this server is read-only (READ_ONLY is set): signs cannot be added, deleted or exported "
                            "here", code="read_only")
        expected = self.settings.API_KEY
        if not expected:
            return
        if not key:
            raise Unauthorized("changing the reference store needs the API key: send it in the X-API-Key header "
                               "(API) or enter it in the page (UI)", code="unauthorized")
        if not secrets.compare_digest(str(key).encode(), expected.encode()):
            raise Unauthorized("the API key (X-API-Key header, or the key field in the page) does not match the "
                               "server's API_KEY", code="unauthorized")

    def _bundle_labels(self) -> set[str]:
        return set(self.store.base.labels)

    def _check_not_bundle_sign(self, name: str, action: str) -> None:
        if name in self._bundle_labels() and not self.settings.BUNDLE_SIGNS_WRITABLE:
            raise Forbidden(f"{name!r} is a shipped sign (from the model bundle): {action} it would change every "
                            "user's answers; choose another name (or set BUNDLE_SIGNS_WRITABLE=true)",
                            code="bundle_sign")

    # ------------------------------------------------------------------ enrolment

    def refresh(self) -> bool:
        """See enrolments and deletions another process made (a stat of two files when none)."""
        return self.store.refresh_if_changed()

    async def fresh_reference_count(self, timeout_s: float = 0.5) -> int:
        """The reference count after seeing other processes' changes, for /healthz: the refresh
        runs in a thread of its own and is not waited for beyond ``timeout_s``."""
        with move_on_after(timeout_s):
            await to_thread.run_sync(self.refresh, limiter=self._refresh_limiter, abandon_on_cancel=True)
        return self.reference_count

    def warnings(self) -> list[str]:
        """What start-up logs as warnings and /healthz and /v1/config repeat."""
        out = [WRITES_OPEN_WARNING] if self.writes_open else []
        for note in self.names_report.get("aliases", []):
            if note["status"] in ("not_mapped", "ignored", "mismatch", "overridden"):
                out.append(note["message"])
        for item in self.names_report.get("unknown", []):
            hint = f" (did you mean {item['suggestion']}?)" if item.get("suggestion") else ""
            out.append(f"{item['name']} looks like a setting but is not one{hint}; it has no effect")
        return out

    def _label_count(self, name: str) -> int:
        return sum(1 for label in self.engine.references.labels if label == name)

    def check_name(self, name: str) -> str:
        """A valid sign name, or an invalid_name refusal saying what to fix (the store's rule, and no
        spaces around the name: a client that sent them meant something else)."""
        try:
            valid = validate_name(name)
        except EnrolmentError as exc:
            exc.code = "invalid_name"
            raise
        if valid != name:
            raise EnrolmentError(f"the sign name {name!r} has spaces at the start or end; send {valid!r}",
                                 code="invalid_name")
        return valid

    def enrol(self, name: str, clips: list[np.ndarray], category: str | None = None,
              sources: list[str] | None = None, *, key: str | None = None) -> dict:
        self.authorize_write(key)
        name = self.check_name(name)
        self._check_not_bundle_sign(name, "adding clips to")
        try:
            ids = self.store.enrol(name, clips, category or "word", sources=sources)
        except sqlite3.OperationalError as exc:  # e.g. the store's disk is full or locked too long
            log.error("reference store write failed: %s", exc)
            raise Unavailable("the reference store could not be written; try again", code="store_unavailable") from None
        log.info("sign enrolled", extra={"fields": {"event": "enrolled", "sign": name, "clips": len(ids)}})
        return {"name": name, "added": len(ids), "references": self._label_count(name),
                "total_references": self.reference_count}

    def list_signs(self) -> dict:
        self.refresh()
        signs = [
            {"name": s.label, "category": s.category or None, "references": s.n_clips, "enrolled": s.enrolled}
            for s in self.store.list_signs(include_bundle=True)
        ]
        return {"signs": sorted(signs, key=lambda s: s["name"]), "total_references": self.reference_count}

    def delete(self, name: str, *, key: str | None = None) -> dict:
        self.authorize_write(key)
        name = self.check_name(name)
        removed = self.store.delete_sign(name)
        if removed == 0:
            self._check_not_bundle_sign(name, "deleting")
            raise NotFound(f"no enrolled sign named {name!r}; GET /v1/signs lists them", code="unknown_sign")
        log.info("sign deleted", extra={"fields": {"event": "deleted", "sign": name, "clips": removed}})
        return {"name": name, "removed": removed, "total_references": self.reference_count}

    def exports_dir(self) -> Path:
        return Path(self.settings.STORE_PATH).parent / "exports"

    def export(self, *, key: str | None = None) -> dict:
        """A new bundle (bundle references + enrolled ones) in a fresh folder next to the store;
        only the EXPORTS_KEEP newest exports are kept (sizes logged)."""
        self.authorize_write(key)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        folder = self.exports_dir()
        out = folder / f"bundle-{stamp}-{time.time_ns() % 10**6:06d}"
        with self._export_lock:
            path = Path(self.store.export_bundle(out, command="POST /v1/references/export"))
            removed = prune_oldest(folder, keep=self.settings.EXPORTS_KEEP, pattern="bundle-*")
        size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        log.info("bundle exported", extra={"fields": {
            "event": "exported", "bundle": path.name, "bytes": size, "references": self.reference_count,
            "removed_old": [p.name for p in removed], "kept": self.settings.EXPORTS_KEEP}})
        return {"path": self.public_path(path), "name": path.name,
                "files": sorted(p.name for p in path.iterdir() if p.is_file()),
                "references": self.reference_count, "bytes": size}

    def public_settings(self) -> dict:
        """Settings as /v1/config shows them: API_KEY masked, paths public (see `public_path`)."""
        out = self.settings.public_dict()
        for name, value in out.items():
            if isinstance(getattr(self.settings, name), Path):
                out[name] = self.public_path(value)
        return out

    def public_path(self, path: str | Path) -> str:
        """A server path as public responses show it: absolute only with PUBLIC_PATHS, else
        relative to the project (or just its name when outside it)."""
        path = Path(path)
        if self.settings.PUBLIC_PATHS:
            return str(path.resolve())
        return public_path(path)


WRITES_OPEN_WARNING = ("writes are open: API_KEY is not set and READ_ONLY is off, so anyone who can reach this "
                       "server can add, delete and export signs; set API_KEY (or READ_ONLY=true) before sharing it")


def public_path(path: str | Path) -> str:
    """``path`` relative to the project root when inside it, else only its last part."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return path.name
