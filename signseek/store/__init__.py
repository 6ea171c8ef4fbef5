"""The reference store: the bundle's references plus signs enrolled by users.

A new sign is a few recorded clips (at least MIN_ENROL_CLIPS), no retraining:

    store = open_store(engine)                              # STORE_URL, else the SQLite file STORE_PATH
    store.enrol("akwaaba", [points1, points2, points3])     # canonical [T,543,3] or flat [T,V] clips
    store.enrol("akwaaba", more, mode="add")                # more clips of an enrolled sign
    store.enrol_videos("akwaaba", ["a.mp4", "b.mp4", "c.mp4"])
    store.sign_status("hello")                              # enrolled here? shipped in the bundle?
    store.list_signs(); store.list_clips("akwaaba"); store.clip_landmarks("akwaaba")
    store.delete_sign("akwaaba"); store.delete_clip(clip_id)
    store.export_bundle("exported/")                        # a new bundle with the enrolled references
    store.export_signs("signs.npz"); other.import_signs("signs.npz")

Each clip is stored with its landmarks (compressed), prepared features, embedding, time, source,
video_file and the id of the model that embedded it; each sign with its sentence_id (the
bundle's for a shipped sign, else a stable id of its name), sentence (default: the name) and
category. The engine sees every change at once (`engine.set_references`, rebuilt from the
bundle's references and the enrolled clips; a refresh reads only clips it has not seen), and a
restart reloads the database; clips embedded by another model are re-embedded from their
landmarks on load.

Backends (backends.py): SQLite, embedded, the default (a file, WAL mode); PostgreSQL
(``STORE_URL=postgresql://...``, ``pip install 'signseek[postgres]'``) shared by several app
processes or replicas, each of which sees another's change within about a second
(LISTEN/NOTIFY). Every write is one transaction: concurrent enrolments lose nothing and a
process killed mid-write leaves no half-enrolled sign. ``python -m signseek.store`` migrates a
SQLite store into PostgreSQL, exports and imports enrolled signs.
"""

from .backends import SqlBackend, SQLiteBackend, is_postgres_url, open_backend, redact_url
from .records import (
    CATEGORIES,
    MAX_NAME_LENGTH,
    MODES,
    NAME_PATTERN,
    ClipInfo,
    EnrolmentError,
    SignInfo,
    SignStatus,
    StoreUnavailable,
    validate_name,
)
from .records import pack as _pack  # noqa: F401  (kept for callers of the old module's helpers)
from .records import unpack as _unpack  # noqa: F401

# The engine-facing store loads on first use, so `python -m signseek.store migrate` (rows only)
# does not pay for ONNX Runtime.
_LAZY = {"ReferenceStore", "open_store", "store_location"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CATEGORIES",
    "MAX_NAME_LENGTH",
    "MODES",
    "NAME_PATTERN",
    "ClipInfo",
    "EnrolmentError",
    "ReferenceStore",
    "SQLiteBackend",
    "SignInfo",
    "SignStatus",
    "SqlBackend",
    "StoreUnavailable",
    "is_postgres_url",
    "open_backend",
    "open_store",
    "redact_url",
    "store_location",
    "validate_name",
]
