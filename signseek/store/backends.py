"""Where enrolled signs are kept: SQLite (embedded, the default) or PostgreSQL (shared by replicas).

A backend stores rows and nothing else: it knows no engine and no bundle. Both speak the same
SQL through `SqlBackend`; they differ in connections, locking and how they notice changes:

- SQLite: one file (WAL mode), a connection per operation, writers serialised by
  ``BEGIN IMMEDIATE``; another process's change shows as a new mtime / size of the database
  files (a stat, cheap enough before every request).
- PostgreSQL (postgres.py): a connection pool, writers serialised by an advisory lock, and
  every write ends with ``NOTIFY``; a listener thread hears it and refreshes at once, and
  polls a version counter every second in case a notification was missed.

Every write is one transaction: a process killed mid-write leaves the store as it was before
the write. Driver errors become `StoreUnavailable` (the API answers 503); nothing is lost.

Schema (version 2): ``signs`` (label, sentence_id, sentence, category, created), ``clips``
(one row per clip: landmarks, prepared features, embedding, model id, source, video_file) and
``store_meta`` (schema version, change counter). Version 1 databases (clips only) are migrated
in place on open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

from ..bundle import stable_sentence_id
from .records import ClipInfo, ClipRecord, EnrolmentError, NewSign, SignInfo, StoreUnavailable

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
CLIP_COLUMNS = ("label", "category", "created", "n_frames", "source", "video_file", "model_id", "landmarks",
                "features", "embedding")


def is_postgres_url(location: str | Path | None) -> bool:
    return str(location or "").split(":", 1)[0].lower() in ("postgresql", "postgres")


def redact_url(url: str) -> str:
    """A database URL without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(str(url))
    if parts.password is None:
        return str(url)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def open_backend(location: str | Path) -> SqlBackend:
    """A backend for a PostgreSQL URL (postgresql://... or postgres://...), a sqlite:///path
    URL or a plain file path."""
    text = str(location)
    if is_postgres_url(text):
        from .postgres import PostgresBackend

        return PostgresBackend(text)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]  # sqlite:///relative.db, sqlite:////absolute.db
    elif "://" in text:
        raise StoreUnavailable(f"STORE_URL {redact_url(text)!r} is neither postgresql://... nor sqlite:///path; "
                               "give a PostgreSQL URL, or leave it empty for the SQLite file at STORE_PATH",
                               kind="invalid", code="invalid_store_url")
    return SQLiteBackend(Path(text))


class SqlBackend:
    """The store's SQL, shared by both databases. Subclasses provide connections."""

    kind = "?"
    SIGNS, CLIPS, META = "signs", "clips", "store_meta"
    PH = "?"  # the driver's parameter placeholder

    def sql(self, text: str) -> str:
        return text.format(signs=self.SIGNS, clips=self.CLIPS, meta=self.META).replace("?", self.PH)

    @property
    def location(self) -> str:
        raise NotImplementedError

    @contextmanager
    def _read(self) -> Iterator:
        raise NotImplementedError
        yield

    @contextmanager
    def _write(self) -> Iterator:
        """One serialised write transaction; bumps the change counter before it commits."""
        raise NotImplementedError
        yield

    def _bump(self, conn) -> None:
        conn.execute(self.sql("UPDATE {meta} SET value = value + 1 WHERE key = 'version'"))

    # ------------------------------------------------------------------ change detection

    def changed(self) -> bool:
        """Did another process write since `mark_seen`? Cheap; called before requests."""
        return False

    def mark_seen(self) -> None:
        """Note the current state (called just before the store reads everything)."""

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from a thread) when another process writes; no-op where polling suffices."""

    def close(self) -> None:
        """Release connections and threads."""

    def version(self) -> int:
        with self._read() as conn:
            row = conn.execute(self.sql("SELECT value FROM {meta} WHERE key = 'version'")).fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ writes

    def insert(self, sign: NewSign, clips: Sequence[ClipRecord], mode: str = "auto") -> list[int]:
        """Add ``clips`` to ``sign`` in one transaction (creating the sign when new).

        ``mode``: "auto" (new sign or more clips), "new" (refuse a name enrolled already),
        "add" (refuse a name not enrolled yet). The sign's stored sentence and category win
        over the given ones when it exists.
        """
        with self._write() as conn:
            existing = conn.execute(self.sql("SELECT category FROM {signs} WHERE label = ?"), (sign.label,)).fetchone()
            if existing is not None and mode == "new":
                n = conn.execute(self.sql("SELECT COUNT(*) FROM {clips} WHERE label = ?"), (sign.label,)).fetchone()[0]
                raise EnrolmentError(f"a sign named {sign.label!r} is enrolled already ({n} clips); add the clips "
                                     "to it, or choose another name for a new sign", code="sign_exists",
                                     kind="conflict")
            if existing is None and mode == "add":
                raise EnrolmentError(f"no enrolled sign named {sign.label!r} to add clips to; enrol it as a new "
                                     "sign", code="unknown_sign", kind="not_found")
            if existing is None:
                conn.execute(self.sql("INSERT INTO {signs} (label, sentence_id, sentence, category, created) "
                                      "VALUES (?, ?, ?, ?, ?)"),
                             (sign.label, sign.sentence_id, sign.sentence, sign.category, sign.created))
                category = sign.category
            else:
                category = existing[0]
            ids = []
            insert = self.sql(f"INSERT INTO {{clips}} ({', '.join(CLIP_COLUMNS)}) VALUES "
                              f"({', '.join('?' * len(CLIP_COLUMNS))}) RETURNING id")
            for clip in clips:
                values = (sign.label, category, clip.created, clip.n_frames, clip.source, clip.video_file,
                          clip.model_id, clip.landmarks, clip.features, clip.embedding)
                ids.append(int(conn.execute(insert, values).fetchone()[0]))
        return ids

    def copy_in(self, signs: Sequence[SignInfo], clips: Sequence[ClipRecord]) -> int:
        """Signs and their clips as they are (ids, times, embeddings), in one transaction;
        refuses names this store has already (migration and import)."""
        with self._write() as conn:
            have = {r[0] for r in conn.execute(self.sql("SELECT label FROM {signs}")).fetchall()}
            clash = sorted(have & {s.label for s in signs})
            if clash:
                raise EnrolmentError(f"{len(clash)} sign(s) exist in the target already: {', '.join(clash[:10])}; "
                                     "delete them there first (or migrate into an empty store)",
                                     code="sign_exists", kind="conflict")
            for s in signs:
                conn.execute(self.sql("INSERT INTO {signs} (label, sentence_id, sentence, category, created) "
                                      "VALUES (?, ?, ?, ?, ?)"),
                             (s.label, int(s.sentence_id), s.sentence or s.label, s.category, s.created))
            insert = self.sql(f"INSERT INTO {{clips}} ({', '.join(CLIP_COLUMNS)}) VALUES "
                              f"({', '.join('?' * len(CLIP_COLUMNS))})")
            for c in clips:
                conn.execute(insert, (c.label, c.category, c.created, c.n_frames, c.source, c.video_file,
                                      c.model_id, c.landmarks, c.features, c.embedding))
        return len(clips)

    def delete_sign(self, label: str) -> int:
        with self._write() as conn:
            n = conn.execute(self.sql("DELETE FROM {clips} WHERE label = ?"), (label,)).rowcount
            conn.execute(self.sql("DELETE FROM {signs} WHERE label = ?"), (label,))
        return int(n)

    def delete_clip(self, clip_id: int) -> bool:
        with self._write() as conn:
            row = conn.execute(self.sql("DELETE FROM {clips} WHERE id = ? RETURNING label"), (int(clip_id),)).fetchone()
            if row is not None:  # the sign goes with its last clip
                conn.execute(self.sql("DELETE FROM {signs} WHERE label = ? AND NOT EXISTS "
                                      "(SELECT 1 FROM {clips} WHERE label = ?)"), (row[0], row[0]))
        return row is not None

    def update_embeddings(self, updates: Sequence[tuple[int, str, bytes, bytes]]) -> None:
        """(clip id, model id, features, embedding) for clips re-embedded by a new model."""
        if not updates:
            return
        with self._write() as conn:
            for clip_id, model_id, features, embedding in updates:
                conn.execute(self.sql("UPDATE {clips} SET model_id = ?, features = ?, embedding = ? WHERE id = ?"),
                             (model_id, features, embedding, int(clip_id)))

    # ------------------------------------------------------------------ reads

    def signs(self) -> list[SignInfo]:
        with self._read() as conn:
            rows = conn.execute(self.sql(
                "SELECT s.label, s.category, COUNT(c.id), s.created, s.sentence_id, s.sentence FROM {signs} s "
                "JOIN {clips} c ON c.label = s.label GROUP BY s.label, s.category, s.created, s.sentence_id, "
                "s.sentence ORDER BY s.label")).fetchall()
        return [SignInfo(r[0], r[1], int(r[2]), r[3], True, int(r[4]), r[5]) for r in rows]

    def count(self, label: str) -> int:
        with self._read() as conn:
            return int(conn.execute(self.sql("SELECT COUNT(*) FROM {clips} WHERE label = ?"), (label,)).fetchone()[0])

    def clips(self, label: str | None = None) -> list[ClipInfo]:
        query = "SELECT id, label, category, created, n_frames, source, video_file FROM {clips}"
        args: tuple = ()
        if label is not None:
            query, args = query + " WHERE label = ?", (label,)
        with self._read() as conn:
            return [ClipInfo(int(r[0]), *r[1:4], int(r[4]), *r[5:]) for r in
                    conn.execute(self.sql(query + " ORDER BY id"), args).fetchall()]

    def clip_index(self) -> list[tuple[int, str]]:
        """(id, model id) of every clip, in id order: what changed, without the arrays."""
        with self._read() as conn:
            return [(int(r[0]), r[1]) for r in conn.execute(self.sql("SELECT id, model_id FROM {clips} ORDER BY id"))]

    def load(self, ids: Sequence[int] | None = None) -> list[ClipRecord]:
        """Clips with their arrays and their sign's sentence fields (all, or those ``ids``)."""
        query = (f"SELECT c.id, {', '.join('c.' + k for k in CLIP_COLUMNS)}, s.sentence_id, s.sentence "
                 "FROM {clips} c LEFT JOIN {signs} s ON s.label = c.label")
        out: list[ClipRecord] = []
        with self._read() as conn:
            if ids is None:
                rows = conn.execute(self.sql(query + " ORDER BY c.id")).fetchall()
            else:
                rows = []
                ids = [int(i) for i in ids]
                for start in range(0, len(ids), 500):  # bounded statement size
                    chunk = ids[start:start + 500]
                    rows += conn.execute(self.sql(query + f" WHERE c.id IN ({', '.join('?' * len(chunk))})"),
                                         chunk).fetchall()
                rows.sort(key=lambda r: r[0])
        for r in rows:
            sentence_id = r[11] if r[11] is not None else stable_sentence_id(r[1])
            out.append(ClipRecord(int(r[0]), r[1], r[2], r[3], int(r[4]), r[5], r[6], r[7], bytes(r[8]),
                                  bytes(r[9]), bytes(r[10]), int(sentence_id), r[12] or r[1]))
        return out

    def first_landmarks(self, label: str) -> bytes | None:
        with self._read() as conn:
            row = conn.execute(self.sql("SELECT landmarks FROM {clips} WHERE label = ? ORDER BY id LIMIT 1"),
                               (label,)).fetchone()
        return bytes(row[0]) if row is not None else None


# ---------------------------------------------------------------------------- SQLite


SQLITE_SCHEMA = """
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
    embedding BLOB NOT NULL,
    video_file TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS clips_label ON clips(label);
CREATE TABLE IF NOT EXISTS signs (
    label TEXT PRIMARY KEY,
    sentence_id INTEGER NOT NULL,
    sentence TEXT NOT NULL,
    category TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO store_meta (key, value) VALUES ('version', 0) ON CONFLICT DO NOTHING;
"""


class SQLiteBackend(SqlBackend):
    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._seen_signature: tuple | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                self._migrate(conn)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"the reference store {self.path} cannot be opened ({exc}); check the path "
                                   "(STORE_PATH) and that it is writable") from None

    @property
    def location(self) -> str:
        return str(self.path)

    @contextmanager
    def _connect(self):
        # One connection per operation: SQLite connections are cheap and not shareable across threads.
        with closing(sqlite3.connect(self.path, timeout=30.0, isolation_level=None)) as conn:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn

    def _migrate(self, conn) -> None:
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            have_clips = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='clips'").fetchone()
            if have_clips:  # version 1: clips only, no video_file, no signs table
                columns = {r[1] for r in conn.execute("PRAGMA table_info(clips)")}
                if "video_file" not in columns:
                    conn.execute("ALTER TABLE clips ADD COLUMN video_file TEXT NOT NULL DEFAULT ''")
            for statement in SQLITE_SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            rows = conn.execute("SELECT label, MIN(category), MIN(created) FROM clips GROUP BY label").fetchall()
            conn.executemany("INSERT INTO signs (label, sentence_id, sentence, category, created) VALUES "
                             "(?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             [(label, stable_sentence_id(label), label, cat, created) for label, cat, created in rows])
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if rows:
            log.info("reference store %s: schema migrated to version %d (%d signs)", self.path, SCHEMA_VERSION,
                     len(rows))

    @contextmanager
    def _read(self):
        try:
            with self._connect() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the reference store {self.path} could not be read ({exc}); try again") from None

    @contextmanager
    def _write(self):
        try:
            with self._connect() as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    self._bump(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the reference store {self.path} could not be written ({exc}); nothing was "
                                   "changed, try again") from None

    def _signature(self) -> tuple:
        """Modification time and size of the database and its WAL: changes when anyone writes."""
        signature = []
        for suffix in ("", "-wal"):
            try:
                stat = os.stat(f"{self.path}{suffix}")
                signature.append((stat.st_mtime_ns, stat.st_size))
            except FileNotFoundError:
                signature.append(None)
        return tuple(signature)

    def mark_seen(self) -> None:
        self._seen_signature = self._signature()

    def changed(self) -> bool:
        return self._signature() != self._seen_signature
