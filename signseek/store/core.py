"""`ReferenceStore`: the engine's references = the bundle's + the signs enrolled in a backend."""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bundle import export_references, stable_sentence_id
from ..engine.core import Engine, InputError, as_points
from ..engine.gates import hand_frames
from ..engine.search import ReferenceSet
from ..features import prepare_sequence
from .backends import SqlBackend, SQLiteBackend, open_backend
from .records import (
    CATEGORIES,
    MODES,
    ClipInfo,
    ClipRecord,
    EnrolmentError,
    NewSign,
    SignInfo,
    SignStatus,
    pack,
    unpack,
    validate_name,
)

log = logging.getLogger(__name__)


@dataclass
class _Cached:
    """One enrolled clip as the engine needs it (kept between refreshes: only new clips are read)."""

    label: str
    category: str
    features: np.ndarray
    embedding: np.ndarray
    row: dict


def store_location(settings) -> str | Path:
    """STORE_URL when set (postgresql://... or sqlite:///...), else the SQLite file STORE_PATH."""
    url = (getattr(settings, "STORE_URL", None) or "").strip()
    return url or Path(settings.STORE_PATH)


class ReferenceStore:
    """Enrolled signs in SQLite or PostgreSQL, merged into the engine's references.

    ``location``: a file path, ``sqlite:///path`` or ``postgresql://...`` (default: the
    engine's settings, STORE_URL else STORE_PATH), or a ready backend.
    """

    def __init__(self, engine: Engine, location: str | Path | SqlBackend | None = None,
                 min_clips: int | None = None, *, watch: bool = True) -> None:
        self.engine = engine
        settings = engine.settings
        if isinstance(location, SqlBackend):
            self.backend = location
        else:
            self.backend = open_backend(location if location is not None else store_location(settings))
        self.path = self.backend.path if isinstance(self.backend, SQLiteBackend) else None
        self.min_clips = min_clips if min_clips is not None else settings.MIN_ENROL_CLIPS
        self.base = engine.references  # the bundle's references; enrolled ones are added to these
        self.model_id = engine.bundle.model_id if engine.bundle else engine.model_name
        self._bundle_counts: dict[str, int] = {}
        self._bundle_ids: dict[str, int] = {}
        for label, row in zip(self.base.labels, self.base.rows, strict=True):
            self._bundle_counts[label] = self._bundle_counts.get(label, 0) + 1
            value = row.get("sentence_id")
            if label not in self._bundle_ids and value is not None and str(value).strip() != "":
                self._bundle_ids[label] = int(value)
        self._refresh_lock = threading.Lock()
        self._cache: dict[int, _Cached] = {}
        self.last_refresh: dict = {}
        self.refresh()
        if watch:
            self.backend.watch(self.refresh)

    def close(self) -> None:
        self.backend.close()

    def __repr__(self) -> str:
        return f"ReferenceStore({self.backend.kind}: {self.backend.location}, {len(self._cache)} enrolled clips)"

    # ------------------------------------------------------------------ names

    def sign_status(self, name: str) -> SignStatus:
        """Whether ``name`` is enrolled here (and how many clips), shipped in the bundle, both or neither."""
        name = (name or "").strip()
        return SignStatus(name, self.backend.count(name), self._bundle_counts.get(name, 0))

    def is_bundle_sign(self, name: str) -> bool:
        return (name or "").strip() in self._bundle_counts

    def sentence_id(self, label: str) -> int:
        """The sign's sentence_id: the bundle's for a shipped sign, else the label's stable id."""
        return self._bundle_ids.get(label, stable_sentence_id(label))

    # ------------------------------------------------------------------ enrolment

    def _prepare_clips(self, clips: Sequence, layout: str | None) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for i, clip in enumerate(clips, 1):
            try:
                points = as_points(clip, layout)
            except InputError as exc:
                raise EnrolmentError(f"clip {i}: {exc}") from exc
            if len(points) > self.engine.settings.MAX_FRAMES:
                raise EnrolmentError(f"clip {i} has {len(points)} frames; at most {self.engine.settings.MAX_FRAMES}")
            if hand_frames(points) == 0:
                raise EnrolmentError(f"clip {i} shows no hands in any frame; record it again with the hands in view")
            out.append((points, prepare_sequence(points, self.engine.feature_config)))
        return out

    def enrol(self, label: str, clips: Sequence, category: str = "word", layout: str | None = None,
              sources: Sequence[str] | None = None, *, sentence: str | None = None,
              video_files: Sequence[str] | None = None, mode: str = "auto",
              allow_bundle_sign: bool | None = None) -> list[int]:
        """Add a sign (or more clips of one) from landmark clips; returns the new clip ids.

        ``mode``: "auto" (a new sign, or more clips of an enrolled one), "new" (refuse a name
        enrolled already: code sign_exists) or "add" (refuse a name not enrolled yet:
        unknown_sign). A shipped (bundle) sign is refused (code bundle_sign) unless
        ``allow_bundle_sign`` (default: the BUNDLE_SIGNS_WRITABLE setting). ``sentence``
        defaults to the name; ``sources`` and ``video_files`` are per clip (may be empty).
        """
        if (label or "").strip() in self.engine.idle_labels:
            raise EnrolmentError(f"{label!r} is the idle (no sign) label and cannot be enrolled")
        label = validate_name(label)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if allow_bundle_sign is None:
            allow_bundle_sign = bool(getattr(self.engine.settings, "BUNDLE_SIGNS_WRITABLE", False))
        if label in self._bundle_counts and not allow_bundle_sign:
            raise EnrolmentError(f"{label!r} is a shipped sign (from the model bundle); adding clips to it would "
                                 "change every user's answers: choose another name", code="bundle_sign",
                                 kind="forbidden")
        category = (category or "word").strip().lower()
        if category not in CATEGORIES:
            raise EnrolmentError(f"unknown category {category!r}; use one of {', '.join(CATEGORIES)}")
        clips = list(clips)
        if len(clips) < self.min_clips:
            raise EnrolmentError(f"{len(clips)} clip(s) given; enrol at least {self.min_clips} clips of the sign")
        prepared = self._prepare_clips(clips, layout)
        embeddings = self.engine.embed_prepared([f for _, f in prepared])
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        sources = list(sources) if sources is not None else [""] * len(clips)
        video_files = list(video_files) if video_files is not None else [""] * len(clips)
        records = [
            ClipRecord(None, label, category, created, len(points), src or "", video or "", self.model_id,
                       pack(points.astype(np.float32)), pack(feats), pack(emb.astype(np.float32)))
            for (points, feats), emb, src, video in zip(prepared, embeddings, sources, video_files, strict=True)
        ]
        sign = NewSign(label, self.sentence_id(label), (sentence or "").strip() or label, category, created)
        ids = self.backend.insert(sign, records, mode)
        self.refresh()
        return ids

    def enrol_videos(self, label: str, paths: Sequence[str | Path], category: str = "word", **options) -> list[int]:
        """Extract landmarks from video files (MediaPipe Holistic), then enrol them."""
        from ..landmarks.extract import ExtractionError, extract_video
        from ..landmarks.video import VideoError

        validate_name(label)
        if len(paths) < self.min_clips:
            raise EnrolmentError(f"{len(paths)} video(s) given; enrol at least {self.min_clips} clips of the sign")
        clips = []
        for path in paths:
            try:
                result = extract_video(path, max_duration_s=self.engine.settings.MAX_VIDEO_SECONDS)
            except (VideoError, ExtractionError) as exc:
                raise EnrolmentError(f"{Path(path).name}: {exc}") from exc
            clips.append(result.sequence.points)
        return self.enrol(label, clips, category, sources=[Path(p).name for p in paths], **options)

    # ------------------------------------------------------------------ listing and deleting

    def list_clips(self, label: str | None = None) -> list[ClipInfo]:
        return self.backend.clips(label)

    def list_signs(self, include_bundle: bool = False) -> list[SignInfo]:
        signs = self.backend.signs()
        if include_bundle:
            enrolled = {s.label for s in signs}
            cats: dict[str, str] = {}
            for label, cat in zip(self.base.labels, self.base.categories, strict=True):
                cats.setdefault(label, cat)
            signs += [SignInfo(label, cats[label], n, "", False, self.sentence_id(label), label)
                      for label, n in sorted(self._bundle_counts.items()) if label not in enrolled]
        return signs

    def clip_landmarks(self, label: str) -> np.ndarray | None:
        """Canonical [T, 543, 3] points of the first enrolled clip of ``label`` (what the API draws
        a sign with no recorded video from), or None when no clip of it is enrolled here."""
        blob = self.backend.first_landmarks((label or "").strip())
        return None if blob is None else np.asarray(unpack(blob), dtype=np.float32)

    def delete_sign(self, label: str) -> int:
        """Delete every enrolled clip of ``label``; returns how many (0: nothing enrolled by that name)."""
        n = self.backend.delete_sign(label)
        self.refresh()
        return n

    def delete_clip(self, clip_id: int) -> bool:
        removed = self.backend.delete_clip(clip_id)
        self.refresh()
        return removed

    # ------------------------------------------------------------------ engine

    def _row(self, record: ClipRecord) -> dict:
        return {
            "clip_id": record.id, "source": record.source or "enrolled", "session": "",
            "sample_id": f"enrolled-{record.id}", "category": record.category,
            # A shipped sign's clips keep the bundle's id; an enrolled sign has the id stored with it.
            "sentence_id": self._bundle_ids.get(record.label, record.sentence_id),
            "sentence": record.sentence or record.label, "video_file": record.video_file or "",
        }

    def _load(self, ids: Sequence[int], stale: set[int]) -> dict[int, _Cached]:
        records = self.backend.load(ids)
        out: dict[int, _Cached] = {}
        refresh_ids = [r.id for r in records if r.id in stale]
        fresh_features = {r.id: prepare_sequence(unpack(r.landmarks).astype(np.float32), self.engine.feature_config)
                          for r in records if r.id in stale}
        fresh = dict(zip(refresh_ids, self.engine.embed_prepared([fresh_features[i] for i in refresh_ids]),
                         strict=True)) if refresh_ids else {}
        for r in records:
            features = fresh_features[r.id] if r.id in fresh else unpack(r.features)
            embedding = fresh[r.id] if r.id in fresh else unpack(r.embedding)
            out[r.id] = _Cached(r.label, r.category, features, np.asarray(embedding, dtype=np.float32), self._row(r))
        if fresh:  # clips embedded by another model: store the new embeddings once
            self.backend.update_embeddings([(i, self.model_id, pack(fresh_features[i]), pack(fresh[i].astype(np.float32)))
                                            for i in refresh_ids])
        return out

    def enrolled_references(self) -> ReferenceSet | None:
        """The enrolled clips as a ReferenceSet (clips embedded by another model re-embedded)."""
        with self._refresh_lock:
            return self._enrolled_set()

    def _enrolled_set(self) -> ReferenceSet | None:
        if not self._cache:
            return None
        items = [self._cache[i] for i in sorted(self._cache)]
        return ReferenceSet(np.stack([c.embedding for c in items]), [c.label for c in items],
                            [c.category for c in items], [c.features for c in items], [dict(c.row) for c in items])

    def refresh(self) -> bool:
        """Read what changed in the backend since the last refresh (only new clips' arrays) and
        give the engine the bundle's references plus the enrolled ones; False when nothing changed."""
        with self._refresh_lock:
            start = time.perf_counter()
            self.backend.mark_seen()  # before reading, so a write that lands meanwhile is seen next time
            index = self.backend.clip_index()
            present = {i for i, _ in index}
            stale = {i for i, model in index if model != self.model_id}
            new = [i for i, _ in index if i not in self._cache or i in stale]
            removed = [i for i in self._cache if i not in present]
            if not new and not removed and self.last_refresh:
                return False
            for i in removed:
                del self._cache[i]
            if new:
                self._cache.update(self._load(new, stale))
            enrolled = self._enrolled_set()
            self.engine.set_references(self.base.concat(enrolled) if enrolled is not None else self.base)
            self.last_refresh = {"added": len(new), "removed": len(removed), "references": len(self.engine.references),
                                 "index": self.engine.index_kind, "ms": round((time.perf_counter() - start) * 1e3, 3)}
            return True

    def refresh_if_changed(self) -> bool:
        """Refresh when another process (a second server worker, another replica) changed the
        store since our last refresh: a stat of two files for SQLite; for PostgreSQL the listener
        thread has done it already (a version poll, at most once a second, when it is down)."""
        if not self.backend.changed():
            return False
        return self.refresh()

    # ------------------------------------------------------------------ export

    def export_bundle(self, out: str | Path, command: str = "ReferenceStore.export_bundle") -> Path:
        """Write a new bundle whose references are the bundle's plus the enrolled ones."""
        if self.engine.bundle is None:
            raise EnrolmentError("export needs an engine loaded from a bundle (its model files are copied)")
        refs = self.engine.references
        if refs.features is None:
            raise EnrolmentError("the references have no feature sequences to export")
        rows = [{**{k: v for k, v in row.items() if k != "index"}, "label": label, "category": cat}
                for label, cat, row in zip(refs.labels, refs.categories, refs.rows, strict=True)]
        return export_references(self.engine.bundle, out, refs.embeddings, rows, refs.features, command)

    def export_signs(self, out: str | Path) -> Path:
        """The enrolled signs as a SignSeek dataset file (landmarks + sign fields), for
        `import_signs` into another store (any backend, any model: they are re-embedded)."""
        from .transfer import export_signs

        return export_signs(self.backend, out)

    def import_signs(self, path: str | Path, mode: str = "new") -> dict[str, int]:
        """Enrol every sign of a file written by `export_signs` (one transaction a sign)."""
        from .transfer import import_signs

        return import_signs(self, path, mode)


def open_store(engine: Engine, settings=None, *, watch: bool = True) -> ReferenceStore:
    """The store the settings name (STORE_URL, else STORE_PATH) for this engine."""
    settings = settings or engine.settings
    return ReferenceStore(engine, store_location(settings), settings.MIN_ENROL_CLIPS, watch=watch)
