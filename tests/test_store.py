"""The reference store on both backends: enrolment validation, persistence, threads, names
(new / add / shipped), sentence fields, delete, export, signs moved between stores.

Every store test runs on SQLite (a temp file) and on a real PostgreSQL server (initdb + postgres
on 127.0.0.1 as an unprivileged user, one fresh database a test; see tests/clusters.py).
Several processes sharing one PostgreSQL store are in test_store_postgres.py.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest
from clusters import Unavailable, shared_postgres
from fixtures.bundle_factory import build_fixture_bundle

from signseek.bundle import load_bundle, stable_sentence_id
from signseek.datasets import SignDataset
from signseek.engine import Engine
from signseek.engine.gates import hand_frames
from signseek.landmarks.layouts import canonical_to_flat
from signseek.landmarks.schema import LEFT_HAND, RIGHT_HAND
from signseek.paths import PROJECT_ROOT
from signseek.store import EnrolmentError, ReferenceStore, StoreUnavailable
from signseek.store.records import pack


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_fixture_bundle(tmp_path_factory.mktemp("bundle"))


def new_engine(fx) -> Engine:
    return Engine.from_bundle(fx.directory, _env_file=None)


def clips(fx, label, n=3):
    return [p for p, y in zip(fx.reference_points, fx.reference_labels, strict=True) if y == label][:n]


def postgres_url(name: str) -> str:
    try:
        server = shared_postgres()
    except Unavailable as exc:
        pytest.skip(f"SKIPPED LOUDLY: {exc}")
    return server.create_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """Where a test's store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "enrolled.db"
    return postgres_url(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def open_stores():
    """ReferenceStore(engine, location) that is closed (listener thread, connections) after the test."""
    made = []

    def make(engine, location, **kwargs):
        made.append(ReferenceStore(engine, location, **kwargs))
        return made[-1]

    yield make
    for store in made:
        store.close()


def wait_for(condition, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_enrolled_sign_is_recognised_at_once_and_survives_a_restart(fx, location, open_stores):
    engine = new_engine(fx)
    store = open_stores(engine, location)
    n_before = len(engine.references)
    ids = store.enrol("akwaaba", clips(fx, "hello"), category="word")
    assert len(ids) == 3 and len(engine.references) == n_before + 3
    result = engine.recognize(clips(fx, "hello")[0], top_k=3)
    assert {"akwaaba", "hello"} <= {c.label for c in result.candidates[:2]}
    assert result.candidates[0].raw_similarity == pytest.approx(1.0, abs=1e-5)

    restarted = new_engine(fx)
    store2 = open_stores(restarted, location)
    assert [(s.label, s.n_clips, s.category) for s in store2.list_signs()] == [("akwaaba", 3, "word")]
    assert "akwaaba" in restarted.labels
    np.testing.assert_allclose(restarted.references.embeddings[-3:], engine.references.embeddings[-3:], atol=1e-6)


def test_rows_carry_the_sentence_fields(fx, location, open_stores):
    engine = new_engine(fx)
    store = open_stores(engine, location)
    store.enrol("good morning", clips(fx, "hello"), category="phrase", sentence="Good morning, how are you?",
                video_files=["gm1.mp4", "", ""], sources=["a.webm", "b.webm", "c.webm"])
    store.enrol("akwaaba", clips(fx, "tea"))
    rows = {(r["sentence"], r["video_file"], r["category"], r["source"], r["sentence_id"])
            for label, r in zip(engine.references.labels, engine.references.rows, strict=True)
            if label in ("good morning", "akwaaba")}
    gm, ak = stable_sentence_id("good morning"), stable_sentence_id("akwaaba")
    assert rows == {("Good morning, how are you?", "gm1.mp4", "phrase", "a.webm", gm),
                    ("Good morning, how are you?", "", "phrase", "b.webm", gm),
                    ("Good morning, how are you?", "", "phrase", "c.webm", gm),
                    ("akwaaba", "", "word", "enrolled", ak)}
    signs = {s.label: s for s in store.list_signs(include_bundle=True)}
    assert signs["good morning"].sentence_id == gm and signs["good morning"].sentence.startswith("Good morning")
    # The first enrolled clip's landmarks (what the API draws a sign without a video from).
    np.testing.assert_array_equal(store.clip_landmarks("good morning"), clips(fx, "hello")[0])
    assert store.clip_landmarks("hello") is None and store.clip_landmarks("nothing") is None  # shipped / unknown
    # The clip is found with its fields: what the API puts in its results.
    hit = engine.recognize(clips(fx, "hello")[1], top_k=2).candidates[0]
    assert hit.label == "good morning" and hit.reference["sentence_id"] == gm
    # A shipped sign keeps the bundle's id when clips are added to it.
    bundle_id = next(int(r["sentence_id"]) for y, r in zip(store.base.labels, store.base.rows, strict=True)
                     if y == "water")
    store.enrol("water", clips(fx, "water"), allow_bundle_sign=True)
    assert {r["sentence_id"] for y, r in zip(engine.references.labels, engine.references.rows, strict=True)
            if y == "water"} == {bundle_id}


def test_new_add_and_shipped_names_are_never_merged_silently(fx, location, open_stores):
    store = open_stores(new_engine(fx), location)
    assert not store.sign_status("akwaaba").exists
    store.enrol("akwaaba", clips(fx, "tea"), mode="new")
    with pytest.raises(EnrolmentError, match="enrolled already") as exc:
        store.enrol("akwaaba", clips(fx, "water"), mode="new")
    assert exc.value.code == "sign_exists" and exc.value.kind == "conflict"
    with pytest.raises(EnrolmentError, match="no enrolled sign") as exc:
        store.enrol("unknown", clips(fx, "water"), mode="add")
    assert exc.value.code == "unknown_sign"
    store.enrol("akwaaba", clips(fx, "water"), mode="add")
    status = store.sign_status("akwaaba")
    assert status.enrolled and status.enrolled_clips == 6 and not status.bundle
    # A shipped sign: refused unless asked for (BUNDLE_SIGNS_WRITABLE in the settings, or the argument).
    hello = store.sign_status("hello")
    assert hello.bundle and not hello.enrolled and hello.bundle_clips == 3 and store.is_bundle_sign("hello")
    with pytest.raises(EnrolmentError, match="shipped sign") as exc:
        store.enrol("hello", clips(fx, "hello"))
    assert exc.value.code == "bundle_sign" and exc.value.kind == "forbidden"
    assert store.sign_status("hello").enrolled_clips == 0
    store.enrol("hello", clips(fx, "hello"), allow_bundle_sign=True)
    assert store.sign_status("hello").enrolled_clips == 3


def test_concurrent_enrolments_lose_nothing(fx, location, open_stores):
    engine = new_engine(fx)
    store = open_stores(engine, location)
    base = len(store.base)
    labels = ["tea", "water", "coffee", "hello", "please", "small"]
    errors = []
    barrier = threading.Barrier(len(labels))

    def worker(i, label):
        try:
            barrier.wait()
            store.enrol(f"sign-{i}", clips(fx, label))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, y)) for i, y in enumerate(labels)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_clips()) == 3 * len(labels)
    assert {s.label for s in store.list_signs()} == {f"sign-{i}" for i in range(len(labels))}
    assert len(engine.references) == base + 3 * len(labels)  # the engine sees every enrolment


def test_delete_sign_and_clip(fx, location, open_stores):
    engine = new_engine(fx)
    store = open_stores(engine, location)
    store.enrol("one", clips(fx, "tea"))
    store.enrol("two", clips(fx, "water"), category="phrase")
    clip_id = store.list_clips("two")[0].id
    assert store.delete_clip(clip_id) and not store.delete_clip(clip_id)
    assert len(store.list_clips("two")) == 2
    assert store.delete_sign("one") == 3 and store.delete_sign("one") == 0
    assert "one" not in engine.labels and "two" in engine.labels
    listed = {s.label: s for s in store.list_signs(include_bundle=True)}
    assert listed["two"].enrolled and not listed["tea"].enrolled
    for clip in store.list_clips("two"):  # the sign goes with its last clip
        store.delete_clip(clip.id)
    assert not store.sign_status("two").exists and "two" not in engine.labels


def test_export_writes_a_bundle_with_the_enrolled_signs(fx, location, open_stores, tmp_path):
    engine = new_engine(fx)
    store = open_stores(engine, location)
    store.enrol("akwaaba", clips(fx, "thank-you"), sentence="Welcome")
    out = store.export_bundle(tmp_path / "exported")
    bundle = load_bundle(out)
    assert bundle.labels.count("akwaaba") == 3 and bundle.config["categories"]["akwaaba"] == "word"
    exported = Engine.from_bundle(bundle, _env_file=None)
    assert exported.recognize(clips(fx, "thank-you")[1], top_k=2).candidates[0].raw_similarity == pytest.approx(1, abs=1e-5)
    assert len(exported.references) == len(engine.references)
    row = next(r for y, r in zip(exported.references.labels, exported.references.rows, strict=True) if y == "akwaaba")
    assert row["sentence"] == "Welcome" and int(row["sentence_id"]) == stable_sentence_id("akwaaba")


def test_signs_exported_from_one_store_import_into_another(fx, location, open_stores, tmp_path):
    source = open_stores(new_engine(fx), tmp_path / "source.db")
    source.enrol("akwaaba", clips(fx, "tea"), category="phrase", sentence="Welcome", video_files=["w.mp4", "", ""])
    source.enrol("medaase", clips(fx, "water") + clips(fx, "coffee", 1))
    path = source.export_signs(tmp_path / "signs.npz")
    assert SignDataset.load(path).summary()["per_label"] == {"akwaaba": 3, "medaase": 4}  # a dataset like any other

    target = open_stores(new_engine(fx), location)
    assert target.import_signs(path) == {"akwaaba": 3, "medaase": 4}
    signs = {s.label: s for s in target.list_signs()}
    assert (signs["akwaaba"].category, signs["akwaaba"].sentence) == ("phrase", "Welcome")
    assert [c.video_file for c in target.list_clips("akwaaba")] == ["w.mp4", "", ""]
    np.testing.assert_array_equal(target.clip_landmarks("akwaaba"), source.clip_landmarks("akwaaba"))
    with pytest.raises(EnrolmentError, match="enrolled here already"):
        target.import_signs(path)
    assert len(target.list_clips()) == 7


def test_flat_clips_can_be_enrolled(fx, location, open_stores):
    store = open_stores(new_engine(fx), location)
    flat = [canonical_to_flat(p, "pose_hands") for p in clips(fx, "tea")]
    assert len(store.enrol("flat", flat)) == 3


@pytest.mark.parametrize(
    ("label", "n", "message"),
    [
        ("", 3, "empty"),
        ("x" * 65, 3, "at most 64"),
        ("bad/name", 3, "not allowed"),
        ("-", 3, "idle"),
        ("fine", 2, "at least 3"),
    ],
)
def test_enrolment_validation(fx, tmp_path, label, n, message):
    store = ReferenceStore(new_engine(fx), tmp_path / "enrolled.db")
    with pytest.raises(EnrolmentError, match=message):
        store.enrol(label, clips(fx, "tea", n))
    assert store.list_clips() == []


def test_a_clip_without_hands_is_refused(fx, tmp_path):
    store = ReferenceStore(new_engine(fx), tmp_path / "enrolled.db")
    batch = clips(fx, "tea")
    handless = batch[1].copy()
    handless[:, LEFT_HAND] = np.nan
    handless[:, RIGHT_HAND] = np.nan
    assert hand_frames(handless) == 0
    with pytest.raises(EnrolmentError, match="clip 2 shows no hands"):
        store.enrol("tea2", [batch[0], handless, batch[2]])
    with pytest.raises(EnrolmentError, match="clip 1"):
        store.enrol("tea2", [np.zeros((5, 7)), *batch])
    with pytest.raises(EnrolmentError, match="category"):
        store.enrol("tea2", batch, category="banana")
    assert store.list_clips() == []


def test_a_version_1_sqlite_store_is_migrated_in_place(fx, tmp_path):
    """A database written before the signs table and video_file existed opens, keeps every clip,
    and gains sentence ids; nothing else has to be done."""
    db = tmp_path / "old.db"
    engine = new_engine(fx)
    points = clips(fx, "tea")
    feats = [engine.prepare(p)[1].features for p in points]
    embs = engine.embed_prepared(feats)
    with sqlite3.connect(db) as conn:  # the version 1 schema, as the first store wrote it
        conn.executescript("""
            CREATE TABLE clips (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT NOT NULL, category TEXT NOT NULL,
                created TEXT NOT NULL, n_frames INTEGER NOT NULL, source TEXT NOT NULL DEFAULT '',
                model_id TEXT NOT NULL, landmarks BLOB NOT NULL, features BLOB NOT NULL, embedding BLOB NOT NULL);
            CREATE INDEX clips_label ON clips(label);""")
        conn.executemany("INSERT INTO clips (label, category, created, n_frames, source, model_id, landmarks, "
                         "features, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [("old sign", "letter", "2026-11-01T10:00:00+00:00", len(p), "x.mp4", "an older model",
                           pack(p.astype(np.float32)), pack(f), pack(e)) for p, f, e in zip(points, feats, embs, strict=True)])
    store = ReferenceStore(engine, db)
    assert [(s.label, s.n_clips, s.category, s.sentence_id, s.sentence) for s in store.list_signs()] == [
        ("old sign", 3, "letter", stable_sentence_id("old sign"), "old sign")]
    assert [c.video_file for c in store.list_clips()] == ["", "", ""]
    hit = engine.recognize(points[0], top_k=1).candidates[0]
    assert hit.label in ("old sign", "tea") and hit.raw_similarity == pytest.approx(1.0, abs=1e-5)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert {r[0] for r in conn.execute("SELECT model_id FROM clips")} == {store.model_id}  # re-embedded once


def test_a_bad_store_location_says_what_to_fix(fx, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreUnavailable, match="cannot be opened"):
        ReferenceStore(new_engine(fx), tmp_path / "file" / "enrolled.db")
    with pytest.raises(StoreUnavailable, match="neither postgresql"):
        ReferenceStore(new_engine(fx), "mysql://user@host/db")


@pytest.mark.slow
def test_enrol_from_videos(fx, tmp_path):
    from signseek.paths import SHARED_DATASETS

    videos = sorted((SHARED_DATASETS / "msl150-clips").glob("*.mp4"))[:3]
    if len(videos) < 3:
        pytest.skip(f"SKIPPED LOUDLY: needs 3 real clips in {SHARED_DATASETS / 'msl150-clips'}")
    store = ReferenceStore(new_engine(fx), tmp_path / "enrolled.db")
    ids = store.enrol_videos("msl-test", videos)
    assert len(ids) == 3 and [c.source for c in store.list_clips()] == [v.name for v in videos]


def test_a_second_server_process_sees_signs_enrolled_by_the_first(fx, location, open_stores):
    """Two stores on one database stand for two server processes: an enrolment through one is
    recognised by the other (SQLite: on its next request; PostgreSQL: by its listener thread,
    with no request at all), and a deletion likewise. How fast: BENCHMARKS.md (not timed here)."""
    first, second = open_stores(new_engine(fx), location), open_stores(new_engine(fx), location)
    assert not second.refresh_if_changed()  # nothing written since it opened
    if second.backend.kind == "postgresql":
        def sees(present: bool) -> bool:  # the listener refreshes; nothing on the request path
            return ("wave-hello" in second.engine.references.labels) == present
    else:
        def sees(present: bool) -> bool:  # what each request does before answering
            second.refresh_if_changed()
            return ("wave-hello" in second.engine.references.labels) == present
    first.enrol("wave-hello", clips(fx, "hello"))
    assert wait_for(lambda: sees(True)), "the second store never saw the enrolment"
    assert second.engine.recognize(clips(fx, "hello")[1], top_k=2).candidates[0].label in ("wave-hello", "hello")
    assert not second.refresh_if_changed()
    first.delete_sign("wave-hello")
    assert wait_for(lambda: sees(False)), "the second store never saw the deletion"


def test_migrate_and_export_commands(fx, open_stores, tmp_path):
    """`python -m signseek.store migrate` copies a SQLite store into PostgreSQL row for row;
    `export` writes its signs to a file; bad input is one line and exit status 2."""
    location = postgres_url(f"t_{uuid.uuid4().hex[:12]}")
    src = tmp_path / "src.db"
    store = open_stores(new_engine(fx), src)
    store.enrol("akwaaba", clips(fx, "tea"), sentence="Welcome")
    store.enrol("medaase", clips(fx, "water"))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "signseek.store", *map(str, args)], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=120)

    done = run("migrate", src, location)
    assert done.returncode == 0, done.stderr
    assert "copied 2 signs (6 clips)" in done.stdout and "secret" not in done.stdout
    moved = open_stores(new_engine(fx), location)
    assert {(s.label, s.n_clips, s.sentence) for s in moved.list_signs()} == {("akwaaba", 3, "Welcome"),
                                                                               ("medaase", 3, "medaase")}
    np.testing.assert_array_equal(moved.enrolled_references().embeddings, store.enrolled_references().embeddings)
    again = run("migrate", src, location)
    assert again.returncode == 2 and "exist in the target already" in again.stderr and "Traceback" not in again.stderr
    exported = run("export", "--out", tmp_path / "signs.npz", "--store", location)
    assert exported.returncode == 0, exported.stderr
    assert len(SignDataset.load(tmp_path / "signs.npz")) == 6
    missing = run("info", "--store", "postgresql://nobody@127.0.0.1:1/none")
    assert missing.returncode == 2 and "cannot be opened" in missing.stderr and "Traceback" not in missing.stderr
