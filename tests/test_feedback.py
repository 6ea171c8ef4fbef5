"""The demo's feedback store: consent, what is kept, the NPZ dataset, bounds, retention, deletion."""

from __future__ import annotations

import numpy as np
import pytest

from signseek.datasets import SignDataset, import_npz
from signseek.feedback import KEPT_POINTS, UNKNOWN_LABEL, FeedbackError, FeedbackStore, main
from signseek.landmarks.schema import FACE
from signseek.paths import SAMPLE_DATASET


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """A real 'hello' clip from the sample dataset, with a face added (the store must drop it)."""
    dataset = import_npz(SAMPLE_DATASET / "signs_sample.npz")
    points = dataset.points([i for i, x in enumerate(dataset.labels) if x == "hello"][0]).copy()
    points[:, FACE] = 0.5
    return points


RESULT = {"label": "thank-you", "accepted": True, "rejection_reason": "none", "confidence": 0.7,
          "model_version": "m@1", "results": [{"label": "thank-you", "similarity": 0.81}]}


def test_a_flag_is_kept_as_a_dataset_without_the_face(clip, tmp_path):
    store = FeedbackStore(tmp_path / "fb", clock=Clock())
    item = store.add(clip, RESULT, "  hello ", consent=True, clip="selfie.mp4")
    assert item.label == "hello" and item.predicted == "thank-you" and item.n_frames == len(clip)
    ds = SignDataset.load(store.dataset_path)  # the container every dataset uses
    assert len(ds) == 1 and ds.labels.tolist() == ["hello"] and ds.ids.tolist() == [item.id]
    assert set(ds.landmark_index.tolist()) == set(KEPT_POINTS.tolist())  # pose and hands only
    kept = ds.points(0)
    assert np.isnan(kept[:, FACE]).all()
    np.testing.assert_allclose(kept[:, KEPT_POINTS], clip[:, KEPT_POINTS])
    assert ds.extra["predicted"][0] == "thank-you" and ds.extra["accepted"][0] == "true"
    assert float(ds.extra["similarity"][0]) == pytest.approx(0.81)
    assert [i.id for i in store.items()] == [item.id]


def test_nothing_is_kept_without_consent(clip, tmp_path):
    store = FeedbackStore(tmp_path / "fb")
    with pytest.raises(FeedbackError, match="nothing was kept") as err:
        store.add(clip, RESULT, "hello", consent=False)
    assert err.value.code == "consent_required"
    assert len(store) == 0 and not store.dataset_path.exists()


def test_unnamed_correction_is_unknown_and_not_enrollable(clip, tmp_path):
    from signseek.store import EnrolmentError, validate_name

    item = FeedbackStore(tmp_path / "fb").add(clip, {"accepted": False}, "", consent=True)
    assert item.label == UNKNOWN_LABEL and item.predicted == ""
    with pytest.raises(EnrolmentError):
        validate_name(UNKNOWN_LABEL)


def test_rate_size_and_frame_bounds(clip, tmp_path):
    clock = Clock()
    store = FeedbackStore(tmp_path / "fb", max_items=3, rate_per_minute=2, max_frames=len(clip), clock=clock)
    store.add(clip, RESULT, "a", consent=True)
    clock.now += 1
    store.add(clip, RESULT, "b", consent=True)
    clock.now += 1
    with pytest.raises(FeedbackError, match="too many") as err:
        store.add(clip, RESULT, "c", consent=True)
    assert err.value.kind == "rate_limited"
    clock.now += 61
    store.add(clip, RESULT, "c", consent=True)
    clock.now += 61
    with pytest.raises(FeedbackError, match="full"):  # new flags refused; old ones never dropped
        store.add(clip, RESULT, "d", consent=True)
    assert [i.label for i in store.items()] == ["a", "b", "c"]
    with pytest.raises(FeedbackError, match="at most"):
        FeedbackStore(tmp_path / "other", max_frames=5).add(clip, RESULT, "x", consent=True)
    with pytest.raises(FeedbackError, match="at most 64"):
        store.add(clip, RESULT, "x" * 65, consent=True)


def test_retention_and_deletion(clip, tmp_path, capsys):
    clock = Clock()
    store = FeedbackStore(tmp_path / "fb", retention_days=1, clock=clock)
    old = store.add(clip, RESULT, "old", consent=True)
    clock.now += 2 * 86400
    new = store.add(clip, RESULT, "new", consent=True)  # adding purges what has expired
    assert [i.id for i in store.items()] == [new.id]
    assert not store.delete(old.id) and not store.delete("../../etc/passwd")
    assert store.delete(new.id)
    assert store.items() == [] and not store.dataset_path.exists()

    store.add(clip, RESULT, "cli", consent=True)
    assert main(["--dir", str(tmp_path / "fb"), "list"]) == 0
    assert "correction='cli'" in capsys.readouterr().out
    assert main(["--dir", str(tmp_path / "fb"), "clear"]) == 0
    assert len(store) == 0
