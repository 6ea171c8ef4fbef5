"""The reference store: the bundle's references plus signs enrolled by users, in SQLite.

A new sign is a few recorded clips (at least MIN_ENROL_CLIPS), no retraining:

    store = ReferenceStore(engine)                          # STORE_PATH from the engine's settings
    store.enrol("akwaaba", [points1, points2, points3])     # canonical [T,543,3] or flat [T,V] clips
    store.enrol_videos("akwaaba", ["a.mp4", "b.mp4", "c.mp4"])
    store.list_signs(); store.list_clips("akwaaba")
    store.delete_sign("akwaaba"); store.delete_clip(clip_id)
    store.export_bundle("exported/")                        # a new bundle with the enrolled references

Each clip is stored with its landmarks (compressed), prepared features, embedding, label,
category, time and the id of the model that embedded it. The engine sees every change at once
(`engine.set_references`), and a restart reloads the database; clips embedded by another model
are re-embedded from their landmarks on load. The database runs in WAL mode; every write is
one transaction, so concurrent enrolments from threads (or processes) lose nothing.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import export_references
from .engine.core import Engine, InputError, as_points
from .engine.gates import hand_frames
from .engine.search import ReferenceSet
from .errors import SignSeekError
from .features import prepare_sequence

NAME_PATTERN = re.compile(r"^[\w][\w .'\-]*$", re.UNICODE)
MAX_NAME_LENGTH = 64
CATEGORIES = ("word", "letter", "phrase", "number", "other")

SCHEMA = """
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT NOT NULL,
    category TEXT NOT NULL,
    created TEXT NOT NULL,
    n_frames INTEGER NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL,
    landmarks BLOB NOT NULL,
    features BLOB NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS clips_label ON clips(label);
"""


class EnrolmentError(SignSeekError, ValueError):
    """An enrolment request that cannot be accepted; the message says what to fix."""
    code = "enrolment_refused"


@dataclass
class SignInfo:
    label: str
    category: str
    n_clips: int
    created: str  # first clip's time (ISO 8601, UTC)
    enrolled: bool = True  # False for signs that come only from the bundle


@dataclass
class ClipInfo:
    id: int
    label: str
    category: str
    created: str
    n_frames: int
    source: str


def _pack(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, a=array)
    return buf.getvalue()


def _unpack(blob: bytes) -> np.ndarray:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return data["a"]


def validate_name(label: str) -> str:
    label = (label or "").strip()
    if not label:
        raise EnrolmentError("the sign name is empty; give the sign a name")
    if len(label) > MAX_NAME_LENGTH:
        raise EnrolmentError(f"the sign name has {len(label)} characters; use at most {MAX_NAME_LENGTH}")
    if not NAME_PATTERN.match(label):
        raise EnrolmentError(
            f"the sign name {label!r} has characters that are not allowed; use letters, digits, "
            "spaces, '-', '_', '.' or an apostrophe, starting with a letter or digit"
        )
    return label


class ReferenceStore:
    def __init__(self, engine: Engine, path: str | Path | None = None, min_clips: int | None = None) -> None:
        self.engine = engine
        self.path = Path(path or engine.settings.STORE_PATH)
        self.min_clips = min_clips if min_clips is not None else engine.settings.MIN_ENROL_CLIPS
        self.base = engine.references  # the bundle's references; enrolled ones are added to these
        self.model_id = engine.bundle.model_id if engine.bundle else engine.model_name
        self._refresh_lock = threading.Lock()
        self._seen_signature: tuple | None = None  # the database files' state at the last refresh
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        self.refresh()

    @contextmanager
    def _connect(self):
        # One connection per operation: SQLite connections are cheap and not shareable across threads.
        with closing(sqlite3.connect(self.path, timeout=30.0, isolation_level=None)) as conn:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn

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
              sources: Sequence[str] | None = None) -> list[int]:
        """Add a sign (or more clips of one) from landmark clips; returns the new clip ids."""
        if (label or "").strip() in self.engine.idle_labels:
            raise EnrolmentError(f"{label!r} is the idle (no sign) label and cannot be enrolled")
        label = validate_name(label)
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
        rows = [
            (label, category, created, len(points), src, self.model_id,
             _pack(points.astype(np.float32)), _pack(feats), _pack(emb.astype(np.float32)))
            for (points, feats), emb, src in zip(prepared, embeddings, sources, strict=True)
        ]
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                ids = [conn.execute(
                    "INSERT INTO clips (label, category, created, n_frames, source, model_id, landmarks, "
                    "features, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row).lastrowid for row in rows]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self.refresh()
        return ids

    def enrol_videos(self, label: str, paths: Sequence[str | Path], category: str = "word") -> list[int]:
        """Extract landmarks from video files (MediaPipe Holistic), then enrol them."""
        from .landmarks.extract import ExtractionError, extract_video
        from .landmarks.video import VideoError

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
        return self.enrol(label, clips, category, sources=[Path(p).name for p in paths])

    # ------------------------------------------------------------------ listing and deleting

    def list_clips(self, label: str | None = None) -> list[ClipInfo]:
        query = "SELECT id, label, category, created, n_frames, source FROM clips"
        args: tuple = ()
        if label is not None:
            query, args = query + " WHERE label = ?", (label,)
        with self._connect() as conn:
            return [ClipInfo(*row) for row in conn.execute(query + " ORDER BY id", args)]

    def list_signs(self, include_bundle: bool = False) -> list[SignInfo]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT label, MIN(category), COUNT(*), MIN(created) FROM clips GROUP BY label ORDER BY label"
            ).fetchall()
        signs = [SignInfo(*row) for row in rows]
        if include_bundle:
            enrolled = {s.label for s in signs}
            counts: dict[str, int] = {}
            cats: dict[str, str] = {}
            for label, cat in zip(self.base.labels, self.base.categories, strict=True):
                counts[label] = counts.get(label, 0) + 1
                cats.setdefault(label, cat)
            signs += [SignInfo(label, cats[label], n, "", enrolled=False)
                      for label, n in sorted(counts.items()) if label not in enrolled]
        return signs

    def delete_sign(self, label: str) -> int:
        """Delete every enrolled clip of ``label``; returns how many (0: nothing enrolled by that name)."""
        with self._connect() as conn:
            n = conn.execute("DELETE FROM clips WHERE label = ?", (label,)).rowcount
        self.refresh()
        return n

    def delete_clip(self, clip_id: int) -> bool:
        with self._connect() as conn:
            n = conn.execute("DELETE FROM clips WHERE id = ?", (int(clip_id),)).rowcount
        self.refresh()
        return n > 0

    # ------------------------------------------------------------------ engine and export

    def enrolled_references(self) -> ReferenceSet | None:
        """The enrolled clips as a ReferenceSet (re-embedding clips made by another model)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, label, category, source, model_id, landmarks, features, embedding FROM clips ORDER BY id"
            ).fetchall()
        if not rows:
            return None
        features, embeddings, stale = [], [], []
        for i, (_, _, _, _, model_id, landmarks, feats, emb) in enumerate(rows):
            if model_id != self.model_id:
                feats_arr = prepare_sequence(_unpack(landmarks).astype(np.float32), self.engine.feature_config)
                stale.append(i)
            else:
                feats_arr = _unpack(feats)
            features.append(feats_arr)
            embeddings.append(_unpack(emb))
        if stale:
            fresh = self.engine.embed_prepared([features[i] for i in stale])
            for i, emb in zip(stale, fresh, strict=True):
                embeddings[i] = emb
            with self._connect() as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "UPDATE clips SET model_id = ?, features = ?, embedding = ? WHERE id = ?",
                    [(self.model_id, _pack(features[i]), _pack(embeddings[i]), rows[i][0]) for i in stale])
                conn.execute("COMMIT")
        meta = [{"clip_id": r[0], "source": r[3] or "enrolled", "session": "", "sample_id": f"enrolled-{r[0]}"}
                for r in rows]
        return ReferenceSet(np.stack(embeddings), [r[1] for r in rows], [r[2] for r in rows], features, meta)

    def _db_signature(self) -> tuple:
        """Modification time and size of the database and its WAL: changes when anyone writes."""
        signature = []
        for suffix in ("", "-wal"):
            try:
                stat = os.stat(f"{self.path}{suffix}")
                signature.append((stat.st_mtime_ns, stat.st_size))
            except FileNotFoundError:
                signature.append(None)
        return tuple(signature)

    def refresh_if_changed(self) -> bool:
        """Refresh when another process (a second server worker) changed the database since our
        last refresh; a stat of two files, cheap enough to call before every recognition."""
        if self._db_signature() == self._seen_signature:
            return False
        self.refresh()
        return True

    def refresh(self) -> None:
        """Give the engine the bundle's references plus the enrolled ones (read from the database)."""
        with self._refresh_lock:
            # Noted before reading, so a write that lands while we read triggers the next refresh.
            self._seen_signature = self._db_signature()
            enrolled = self.enrolled_references()
            self.engine.set_references(self.base.concat(enrolled) if enrolled is not None else self.base)

    def export_bundle(self, out: str | Path, command: str = "ReferenceStore.export_bundle") -> Path:
        """Write a new bundle whose references are the bundle's plus the enrolled ones."""
        if self.engine.bundle is None:
            raise EnrolmentError("export needs an engine loaded from a bundle (its model files are copied)")
        refs = self.engine.references
        if refs.features is None:
            raise EnrolmentError("the references have no feature sequences to export")
        rows = [{"label": label, "category": cat, **{k: v for k, v in row.items() if k != "index"}}
                for label, cat, row in zip(refs.labels, refs.categories, refs.rows, strict=True)]
        return export_references(self.engine.bundle, out, refs.embeddings, rows, refs.features, command)
