"""The demo backend without a browser: held-out examples, the gallery, locked and read-only writes."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from demo.ui.backend import DemoBackend, DemoInputError
from demo.ui.examples import HeldOut, sample_examples
from signseek.paths import PROJECT_ROOT, SAMPLE_DATASET


@pytest.fixture(scope="module")
def shipped_service(tmp_path_factory):
    """The service on the shipped bundle (no MediaPipe needed for what is tested here)."""
    from demo.api.service import Service
    from signseek.settings import Settings

    if not (PROJECT_ROOT / "models" / "export_manifest.json").is_file():
        pytest.skip("the shipped bundle (models/) is not there")
    tmp = tmp_path_factory.mktemp("backend")
    return Service.create(Settings(STORE_PATH=tmp / "store.db", _env_file=None))


def test_held_out_never_offers_a_reference_and_prefers_a_new_sitting():
    rows = [{"sample_id": "signs:1", "session": "0"}, {"sample_id": "signs:2", "session": "1"}]
    held = HeldOut(["a", "a", "a", "b"], ["signs:1", "signs:3", "signs:4", None], [0, 0, 5, 2], rows, ["a", "a"])
    assert held.indices == [1, 2]  # sample 0 is a reference; sample 3 cannot be checked (no source row)
    assert held.of("a") == [2, 1]  # session 5: no reference of 'a' comes from it
    assert held.of("b") == [] and "none of its references" in held.describe(2)


def test_examples_of_the_shipped_bundle_are_held_out(shipped_service):
    backend = DemoBackend(shipped_service, feedback=None)
    with open(PROJECT_ROOT / "models" / "embeddings_map.csv", newline="") as handle:
        references = {row["sample_id"] for row in csv.DictReader(handle)}
    with open(SAMPLE_DATASET / "metadata.csv", newline="") as handle:
        source = {int(r["index"]): f"signs:{r['source_index']}" for r in csv.DictReader(handle)
                  if r["file"] == "signs_sample.npz"}
    held = backend.held_out()
    assert held.indices and all(source[i] not in references for i in held.indices)
    examples = sample_examples(held, backend.vocabulary(), ["-"])
    assert {e.expected for e in examples} >= {"hello", "-"}
    assert all(source[e.sample_index] not in references for e in examples)
    outcome = backend.recognise_random_sample()
    assert outcome.error is None and outcome.result["expected"] and "stored clip #" in outcome.source


def test_gallery_draws_every_sign_from_its_references(shipped_service, tmp_path):
    from PIL import Image

    from demo.ui.gallery import Gallery

    gallery = Gallery(shipped_service, None, cache_dir=tmp_path)
    cards = gallery.cards()
    labels = [c.label for c in cards]
    assert len(labels) == len(set(labels)) == len(set(shipped_service.engine.references.labels)) - 1  # no idle
    assert labels[0] == "can"  # words first, then letters, A-Z
    hello = next(c for c in cards if c.label == "hello")
    refs = shipped_service.engine.references
    rows = [i for i, x in enumerate(refs.labels) if x == "hello"]
    assert hello.references == len(rows) and hello.reference_index in rows and not hello.enrolled
    with Image.open(gallery.thumbnail(hello)) as gif:
        assert gif.n_frames == len(refs.features[hello.reference_index])
    assert gallery.thumbnail(hello) == gallery.thumbnail(hello)  # drawn once, then cached
    assert gallery.skeleton_video(hello).suffix in (".mp4", ".webm")


@pytest.mark.parametrize("mode", ["read_only", "key"])
def test_a_locked_or_read_only_deployment_says_why_before_any_clip_is_read(tmp_path, mode):
    from fixtures.bundle_factory import build_fixture_bundle

    from demo.api.service import Service
    from signseek.settings import Settings

    fixture = build_fixture_bundle(tmp_path / "bundle")
    extra = {"READ_ONLY": True} if mode == "read_only" else {"API_KEY": "k-123"}
    service = Service.create(Settings(MODELS_DIR=fixture.directory, STORE_PATH=tmp_path / "store.db",
                                      _env_file=None, **extra))
    backend = DemoBackend(service, feedback=None)
    assert backend.access == mode
    never_read = [str(tmp_path / f"missing{i}.mp4") for i in range(3)]  # would fail if it were read
    with pytest.raises(DemoInputError, match="read-only" if mode == "read_only" else "locked"):
        backend.enrol("new-sign", never_read)
    with pytest.raises(DemoInputError, match="read-only" if mode == "read_only" else "locked"):
        backend.delete("new-sign")
    if mode == "key":
        with pytest.raises(DemoInputError, match="does not match"):
            backend.enrol("new-sign", never_read, key="wrong")
        # With the key the clips are read (and these do not exist): the key was accepted.
        with pytest.raises(DemoInputError, match="Clip 1"):
            backend.enrol("new-sign", never_read, key="k-123")
    assert not np.isin("new-sign", service.engine.references.labels)


def test_examples_and_random_clips_prefer_sittings_no_reference_comes_from():
    rows = [{"sample_id": f"signs:{i}", "session": "0"} for i in range(3)]
    labels = ["a"] * 4 + ["b"] * 2
    held = HeldOut(labels, [f"signs:{i}" for i in range(6)], [0, 0, 0, 0, 0, 7], rows, ["a", "a", "b"])
    assert held.of("a") == [3] and held.of("a", new_sitting_only=True) == []  # #3: same sitting as its refs
    examples = sample_examples(held, ["a", "b"], [])
    assert [e.title for e in examples] == ["b"]  # when any sign has a new-sitting clip, only those are featured
    assert held.random_pool(minimum=1) == [5] and held.random_pool(minimum=5) == [5, 3, 4]


def test_a_decoding_bomb_uploaded_through_the_page_is_refused_from_its_header(tmp_path, monkeypatch):
    """A 0.2 MB clip that is 1080p at 240 fps for 20 s (10 Gpx to decode): the page refuses it with the
    service's own rule (check_clip: MAX_DECODE_MPIX) before MediaPipe or the decoder touch a frame."""
    import shutil

    from fixtures.bundle_factory import build_fixture_bundle

    from benchmarks.bench_hostile import make_bomb_clip
    from demo.api.service import Service
    from signseek.settings import Settings

    if shutil.which("ffmpeg") is None:
        pytest.skip("NO FFMPEG: the hostile clip is made with ffmpeg (make system-deps installs it)")
    bomb = make_bomb_clip(tmp_path / "bomb.mp4")
    fixture = build_fixture_bundle(tmp_path / "bundle")
    service = Service.create(Settings(MODELS_DIR=fixture.directory, STORE_PATH=tmp_path / "store.db", _env_file=None))
    backend = DemoBackend(service, feedback=None)

    def never(*_args, **_kwargs):
        raise AssertionError("the bomb reached the decoder or the landmark graph")

    monkeypatch.setattr("signseek.landmarks.video.VideoReader.__iter__", never)
    monkeypatch.setattr(service, "holistic", never)
    outcome = backend.recognise_clip(bomb)
    assert outcome.result is None and outcome.error, outcome
    assert "bomb.mp4" in outcome.error and "MAX_DECODE_MPIX" in outcome.error, outcome.error
    assert outcome.error.startswith("That file cannot be used")


def test_new_clips_close_to_a_shipped_sign_get_a_warning_naming_it(shipped_service):
    """Three held-out clips of 'coffee' added under another name: the warning names 'coffee' (their raw cosine
    to it reaches SIM_THRESHOLD), says how close in words and numbers; added to 'coffee' itself, nothing else
    is that close: no warning. Resting clips never name the idle label."""
    from signseek.landmarks.layouts import flat_to_canonical

    backend = DemoBackend(shipped_service, feedback=None)
    samples = shipped_service.samples()
    held = backend.held_out()

    def clips_of(label):
        return [flat_to_canonical(samples.landmarks[i], samples.layout)[0] for i in held.of(label)[:3]]

    coffee = clips_of("coffee")
    assert len(coffee) == 3, "the sample dataset should hold 3 held-out clips of 'coffee'"
    warning = backend._closeness_warning("my-drink", coffee)
    assert warning.startswith("Careful: these clips sit close to 'coffee' (a shipped sign): 3 of 3 are "), warning
    assert any(words in warning for words in ("almost exactly the same movement as 'coffee'",  # how close, in words
                                              "as close to 'coffee' as its own reference clips are to each other",
                                              "close enough to 'coffee' that one sign could be taken for the other"))
    cosines = [float(x) for x in warning.split("cosine to it ")[1].split(";")[0].split(", ")]
    assert len(cosines) == 3 and min(cosines) >= shipped_service.settings.SIM_THRESHOLD
    assert "Visitors signing 'my-drink' may get 'coffee'" in warning
    assert backend._closeness_warning("coffee", coffee) == ""
    resting = clips_of("-")
    assert resting and backend._closeness_warning("my-rest", resting) == ""
