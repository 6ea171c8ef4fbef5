"""The reference store on PostgreSQL (STORE_URL=postgresql://...), shared by every replica.

psycopg 3 with its connection pool (``pip install 'signseek[postgres]'``). Tables are prefixed
``signseek_`` so the database can be shared with other applications. Writers take a
transaction-level advisory lock, so concurrent enrolments from any number of processes are
serialised and the name checks of `insert` hold; every write bumps a version counter and sends
``NOTIFY signseek_store`` in the same transaction (delivered only if it commits).

Each store runs one listener thread on a connection of its own: ``LISTEN signseek_store``,
wake on a notification or after ``poll_s`` seconds, read the version counter, and call back
when it moved. A lost notification (a reconnect) therefore costs at most ``poll_s``; while the
listener is disconnected, `changed()` polls the counter on the request path instead (at most
once a second).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from .backends import SqlBackend, redact_url
from .records import StoreUnavailable

log = logging.getLogger(__name__)

CHANNEL = "signseek_store"
LOCK_KEY = 0x5167_5EE7  # pg_advisory_lock key of SignSeek's store (any fixed 64-bit number)

SCHEMA = """
CREATE TABLE IF NOT EXISTS signseek_signs (
    label TEXT PRIMARY KEY,
    sentence_id BIGINT NOT NULL,
    sentence TEXT NOT NULL,
    category TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signseek_clips (
    id BIGSERIAL PRIMARY KEY,
    label TEXT NOT NULL,
    category TEXT NOT NULL,
    created TEXT NOT NULL,
    n_frames INTEGER NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    video_file TEXT NOT NULL DEFAULT '',
    model_id TEXT NOT NULL,
    landmarks BYTEA NOT NULL,
    features BYTEA NOT NULL,
    embedding BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS signseek_clips_label ON signseek_clips(label);
CREATE TABLE IF NOT EXISTS signseek_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO signseek_meta (key, value) VALUES ('version', 0), ('schema', 2) ON CONFLICT DO NOTHING;
"""


def _psycopg():
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise StoreUnavailable("STORE_URL names a PostgreSQL database but psycopg is not installed: "
                               "pip install 'signseek[postgres]'", code="store_unavailable") from None
    return psycopg, psycopg_pool


class PostgresBackend(SqlBackend):
    kind = "postgresql"
    SIGNS, CLIPS, META = "signseek_signs", "signseek_clips", "signseek_meta"
    PH = "%s"

    def __init__(self, url: str, pool_size: int = 4, poll_s: float = 1.0, connect_timeout_s: float = 10.0) -> None:
        psycopg, psycopg_pool = _psycopg()
        self._errors = (psycopg.Error, psycopg_pool.PoolTimeout)
        self.url = "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url
        self.poll_s = poll_s
        self._psycopg = psycopg
        self.pool = psycopg_pool.ConnectionPool(
            self.url, min_size=1, max_size=pool_size, timeout=connect_timeout_s, open=False,
            kwargs={"autocommit": True, "connect_timeout": int(connect_timeout_s)}, name="signseek-store")
        try:
            self.pool.open(wait=True, timeout=connect_timeout_s)
            with self.pool.connection() as conn:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))  # one creator at a time
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
        except self._errors as exc:
            self.pool.close()
            raise StoreUnavailable(f"the reference store at {self.location} cannot be opened "
                                   f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}); "
                                   "check STORE_URL and that the database server is up") from None
        self._seen_version: int | None = None
        self._last_poll = 0.0
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def location(self) -> str:
        return redact_url(self.url)

    def _unavailable(self, exc: Exception, doing: str) -> StoreUnavailable:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StoreUnavailable(f"the reference store at {self.location} could not be {doing} ({first}); nothing "
                                "was changed, try again")

    @contextmanager
    def _read(self):
        try:
            with self.pool.connection() as conn:
                yield conn
        except self._errors as exc:
            raise self._unavailable(exc, "read") from None

    @contextmanager
    def _write(self):
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                yield conn
                version = conn.execute(self.sql("UPDATE {meta} SET value = value + 1 WHERE key = 'version' "
                                                "RETURNING value")).fetchone()[0]
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(version)))
        except self._errors as exc:
            raise self._unavailable(exc, "written") from None

    # ------------------------------------------------------------------ change detection

    def mark_seen(self) -> None:
        try:
            self._seen_version = self.version()
        except StoreUnavailable:
            self._seen_version = None

    def changed(self) -> bool:
        if self._listening.is_set():
            return False  # the listener refreshes the store the moment a change commits
        now = time.monotonic()
        if now - self._last_poll < self.poll_s:
            return False
        self._last_poll = now
        try:
            return self.version() != self._seen_version
        except StoreUnavailable:
            return False

    def watch(self, callback: Callable[[], None]) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._listen, args=(callback,), name="signseek-store-listener",
                                        daemon=True)
        self._thread.start()
        self._listening.wait(timeout=5.0)  # normally at once; if not, changed() polls meanwhile

    def _listen(self, callback: Callable[[], None]) -> None:
        psycopg = self._psycopg
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    backoff = 0.5
                    while not self._stop.is_set():
                        version = conn.execute(self.sql("SELECT value FROM {meta} WHERE key = 'version'")).fetchone()[0]
                        if version != self._seen_version:
                            try:
                                callback()
                            except Exception:  # a failed refresh is retried on the next wake-up
                                log.exception("reference store refresh after a change failed")
                        for _ in conn.notifies(timeout=self.poll_s, stop_after=1):
                            pass
            except psycopg.Error as exc:
                self._listening.clear()
                if self._stop.is_set():
                    break
                log.warning("reference store listener lost %s (%s); reconnecting in %.1f s", self.location,
                            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self._listening.clear()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_s + 5)
            self._thread = None
        self.pool.close()
