"""The reference store: enrolment validation, SQLite persistence, threads, delete, export."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fixtures.bundle_factory import build_fixture_bundle

from signseek.bundle import load_bundle
from signseek.engine import Engine
from signseek.engine.gates import hand_frames
from signseek.landmarks.layouts import canonical_to_flat
from signseek.landmarks.schema import LEFT_HAND, RIGHT_HAND
from signseek.store import EnrolmentError, ReferenceStore


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_fixture_bundle(tmp_path_factory.mktemp("bundle"))


def new_engine(fx) -> Engine:
    return Engine.from_bundle(fx.directory, _env_file=None)


def clips(fx, label, n=3):
    return [p for p, y in zip(fx.reference_points, fx.reference_labels, strict=True) if y == label][:n]


def test_enrolled_sign_is_recognised_at_once_and_survives_a_restart(fx, tmp_path):
    db = tmp_path / "enrolled.db"
    engine = new_engine(fx)
    store = ReferenceStore(engine, db)
    n_before = len(engine.references)
    ids = store.enrol("akwaaba", clips(fx, "hello"), category="word")
    assert len(ids) == 3 and len(engine.references) == n_before + 3
    result = engine.recognize(clips(fx, "hello")[0], top_k=3)
    assert {"akwaaba", "hello"} <= {c.label for c in result.candidates[:2]}
    assert result.candidates[0].raw_similarity == pytest.approx(1.0, abs=1e-5)

    restarted = new_engine(fx)
    store2 = ReferenceStore(restarted, db)
    assert [(s.label, s.n_clips, s.category) for s in store2.list_signs()] == [("akwaaba", 3, "word")]
    assert "akwaaba" in restarted.labels
    np.testing.assert_allclose(restarted.references.embeddings[-3:], engine.references.embeddings[-3:], atol=1e-6)


def test_concurrent_enrolments_lose_nothing(fx, tmp_path):
    engine = new_engine(fx)
    store = ReferenceStore(engine, tmp_path / "enrolled.db")
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


def test_delete_sign_and_clip(fx, tmp_path):
    engine = new_engine(fx)
    store = ReferenceStore(engine, tmp_path / "enrolled.db")
    store.enrol("one", clips(fx, "tea"))
    store.enrol("two", clips(fx, "water"), category="phrase")
    clip_id = store.list_clips("two")[0].id
    assert store.delete_clip(clip_id) and not store.delete_clip(clip_id)
    assert len(store.list_clips("two")) == 2
    assert store.delete_sign("one") == 3 and store.delete_sign("one") == 0
    assert "one" not in engine.labels and "two" in engine.labels
    listed = {s.label: s for s in store.list_signs(include_bundle=True)}
    assert listed["two"].enrolled and not listed["tea"].enrolled


def test_export_writes_a_bundle_with_the_enrolled_signs(fx, tmp_path):
    engine = new_engine(fx)
    store = ReferenceStore(engine, tmp_path / "enrolled.db")
    store.enrol("akwaaba", clips(fx, "thank-you"))
    out = store.export_bundle(tmp_path / "exported")
    bundle = load_bundle(out)
    assert bundle.labels.count("akwaaba") == 3 and bundle.config["categories"]["akwaaba"] == "word"
    exported = Engine.from_bundle(bundle, _env_file=None)
    assert exported.recognize(clips(fx, "thank-you")[1], top_k=2).candidates[0].raw_similarity == pytest.approx(1, abs=1e-5)
    assert len(exported.references) == len(engine.references)


def test_flat_clips_can_be_enrolled(fx, tmp_path):
    store = ReferenceStore(new_engine(fx), tmp_path / "enrolled.db")
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


@pytest.mark.slow
def test_enrol_from_videos(fx, tmp_path):
    from signseek.paths import SHARED_DATASETS

    videos = sorted((SHARED_DATASETS / "msl150-clips").glob("*.mp4"))[:3]
    if len(videos) < 3:
        pytest.skip(f"SKIPPED LOUDLY: needs 3 real clips in {SHARED_DATASETS / 'msl150-clips'}")
    store = ReferenceStore(new_engine(fx), tmp_path / "enrolled.db")
    ids = store.enrol_videos("msl-test", videos)
    assert len(ids) == 3 and [c.source for c in store.list_clips()] == [v.name for v in videos]


def test_a_second_server_process_sees_signs_enrolled_by_the_first(fx, tmp_path):
    """Two stores on one database stand for two uvicorn workers: an enrolment through one is
    recognised by the other on its next request, and a deletion likewise."""
    db = tmp_path / "shared.db"
    first, second = ReferenceStore(new_engine(fx), db), ReferenceStore(new_engine(fx), db)
    assert not second.refresh_if_changed()  # nothing written since it opened
    first.enrol("wave-hello", clips(fx, "hello"))
    assert second.refresh_if_changed()
    assert "wave-hello" in second.engine.references.labels
    assert not second.refresh_if_changed()
    first.delete_sign("wave-hello")
    assert second.refresh_if_changed()
    assert "wave-hello" not in second.engine.references.labels
