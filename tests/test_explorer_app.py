"""The Streamlit explorer under AppTest: every page runs on the three dataset layouts (pose + hands,
hands only, canonical SignDataset), its widgets interact without exceptions, and the numbers it
shows are the engine's for the same bundle and clips (computed here with `signseek.engine.Engine`,
not with the explorer's code).

The bundle is the shipped one (models/) when it is there, else the engine engineer's fixture
bundle (tests/fixtures/bundle_factory.py: a real ONNX encoder over real sample clips).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from explorer_datasets import HANDS, SIGNS, make_canonical_dataset, negatives_of
from streamlit.testing.v1 import AppTest

from signseek.bundle import BundleError, load_bundle
from signseek.paths import MODELS_DIR, PROJECT_ROOT

APP = PROJECT_ROOT / "explorer" / "app.py"
SAMPLE_DATA = SIGNS
PAGES = ("overview", "embeddings", "prototypes", "confusion", "failures", "sessions", "calibration", "openset",
         "compare", "clips")
RUN_TIMEOUT_S = 180  # the first run evaluates the dataset (memoised for every later run in the process)


_BUNDLE: list[Path] = []


def choose_bundle(tmp_path_factory) -> Path:
    """models/ when it holds a valid bundle, else the fixture bundle (built once per session)."""
    if _BUNDLE:
        return _BUNDLE[0]
    try:
        load_bundle(MODELS_DIR)
        _BUNDLE.append(MODELS_DIR)
    except BundleError as exc:
        print(f"\nexplorer tests: models/ has no valid bundle ({exc}); using the fixture bundle")
        from fixtures.bundle_factory import build_fixture_bundle

        _BUNDLE.append(build_fixture_bundle(tmp_path_factory.mktemp("explorer_bundle") / "bundle").directory)
    return _BUNDLE[0]


@pytest.fixture(scope="session")
def explorer_bundle(tmp_path_factory) -> Path:
    return choose_bundle(tmp_path_factory)


@pytest.fixture(scope="session")
def canonical_data(tmp_path_factory) -> Path:
    """A SignDataset file of real clips: two sample videos through MediaPipe plus 16 signs_sample clips."""
    return make_canonical_dataset(tmp_path_factory.mktemp("explorer_canonical"))


@pytest.fixture(scope="session")
def layouts(canonical_data) -> dict[str, Path]:
    return {"pose_hands": SIGNS, "hands": HANDS, "canonical": canonical_data}


def engine_view(bundle: Path, data: Path):
    """What the engine itself says about every clip of a file (the expected values)."""
    from signseek.datasets import SignDataset, is_dataset_file
    from signseek.datasets.npz import import_npz
    from signseek.engine import Engine

    engine = Engine.from_bundle(bundle)
    dataset = SignDataset.load(data) if is_dataset_file(data) else import_npz(data)
    results = engine.recognize_many([dataset.points(i) for i in range(len(dataset))], top_k=10)
    return engine, dataset, results


@pytest.fixture(scope="module")
def engine_results(explorer_bundle):
    return engine_view(explorer_bundle, SAMPLE_DATA)


def held_out(bundle: Path, dataset) -> list[int]:
    """Clips whose (label, session) no reference comes from (computed from embeddings_map.csv)."""
    with open(Path(bundle) / "embeddings_map.csv", newline="") as fh:
        seen = {(row["label"], row["session"]) for row in csv.DictReader(fh)}
    return [i for i in range(len(dataset)) if (str(dataset.labels[i]), str(dataset.signers[i])) not in seen]


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def new_app(bundle: Path, data: Path, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S)
    at.query_params.update({"bundle": str(bundle), "data": str(data), **(query or {})})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def app(explorer_bundle) -> AppTest:
    return new_app(explorer_bundle, SAMPLE_DATA)


def _go(at: AppTest, page: str, errors_ok: bool = False) -> AppTest:
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    if not errors_ok:
        assert not at.error, [e.value for e in at.error]
    assert at.sidebar.text_input(key="bundle_dir").value, "the entrypoint's sidebar did not run"
    return at


def _table(at: AppTest, *columns: str):
    """The first data frame shown with all these columns (data frames are not widgets: no keys)."""
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns}; have {[list(f.value.columns) for f in at.dataframe]}")


def _metric(at: AppTest, label: str) -> str:
    for metric in at.metric:
        if metric.label == label:
            return metric.value
    raise AssertionError(f"no metric {label!r}; have {[m.label for m in at.metric]}")


def _texts(at: AppTest) -> str:
    return " ".join(str(x.value) for x in [*at.markdown, *at.caption, *at.warning, *at.info, *at.error, *at.success])


# ---------------------------------------------------------------------------- every page, every layout


@pytest.mark.parametrize(("layout", "clips"), [("pose_hands", "all"), ("hands", "unseen"), ("canonical", "all")])
def test_every_page_runs_on_every_dataset_layout(layout, clips, layouts, explorer_bundle):
    """Hands-only data crashed 4 of 6 pages (KeyError: -1 opening a clip answered by the hands-only
    classifier, IndexError in calibration); a SignDataset file could not be opened at all."""
    data = layouts[layout]
    at = new_app(explorer_bundle, data, {"clips": clips})
    for page in PAGES:
        _go(at, page)
        if page in ("embeddings", "failures") and at.get("selectbox"):
            clip_box = next((s for s in at.selectbox if s.key in ("emb_clip", "fail_clip")), None)
            if clip_box is not None and clip_box.options:
                for show in at.radio:
                    if show.key and show.key.endswith("_view"):
                        from explorer.ui import VIEWS

                        for view in [v for v, text in VIEWS.items() if text in show.options]:
                            at.radio(key=show.key).set_value(view).run()
                            assert not at.exception, [e.value for e in at.exception]
                        break
    overview = _go(at, "overview")
    assert any(name in _texts(overview) for name in ("pose + hands", "hands only", "SignSeek dataset"))


def test_hands_only_clips_open_beside_the_classifiers_ranking(explorer_bundle):
    engine, dataset, results = engine_view(explorer_bundle, HANDS)
    at = new_app(explorer_bundle, HANDS, {"clips": "all"})
    at = _go(at, "failures")
    answered = [i for i, r in enumerate(results) if r.candidates and not (r.accepted and r.label == dataset.labels[i])]
    if not answered:
        pytest.skip("every hands-only clip is answered right: no failure to open")
    at.selectbox(key="fail_clip").set_value(answered[0]).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = _table(at, "label", "similarity")
    assert shown["label"].tolist() == [c.label for c in results[answered[0]].candidates]
    assert results[answered[0]].model != "encoder"


# ---------------------------------------------------------------------------- numbers


def test_overview_numbers_are_the_engines_on_the_clips_shown(app, engine_results, explorer_bundle):
    """One basis: every number over the same (held-out) clips, straight from the engine's results."""
    engine, dataset, results = engine_results
    chosen = held_out(explorer_bundle, dataset)
    at = _go(app, "overview")
    assert at.title[0].value == "SignSeek explorer"
    accepted = [i for i in chosen if results[i].accepted]
    right = [i for i in accepted if results[i].label == dataset.labels[i]]
    assert float(_metric(at, "Accepted")) == pytest.approx(len(accepted) / len(chosen), abs=5e-5)
    if accepted:
        assert float(_metric(at, "Precision of accepted")) == pytest.approx(len(right) / len(accepted), abs=5e-5)
    known = [i for i in chosen if dataset.labels[i] in set(engine.labels) - engine.idle_labels]
    top1 = [i for i in known if results[i].candidates and results[i].candidates[0].label == dataset.labels[i]]
    assert float(_metric(at, "Top-1")) == pytest.approx(len(top1) / len(known), abs=5e-5)
    assert f"{len(chosen)} of {len(dataset)} clips: held-out sittings" in _texts(at)


def test_reference_sittings_are_excluded_by_default_and_flagged_when_included(app, engine_results, explorer_bundle):
    """The old default ("all clips") scored reference clips against themselves (1.000) with no warning."""
    _, dataset, _ = engine_results
    at = _go(app, "failures")
    assert at.sidebar.radio(key="clips").value == "unseen"
    chosen = set(held_out(explorer_bundle, dataset))
    assert set(_table(at, "kind", "reason")["query"]) <= chosen
    try:
        at.sidebar.radio(key="clips").set_value("all").run()
        assert any("Includes references" in w.value for w in at.warning)
    finally:
        at.sidebar.radio(key="clips").set_value("unseen").run()


def test_embeddings_page_projects_colours_highlights_and_opens_a_clip(app, engine_results):
    at = _go(app, "embeddings")
    assert at.radio(key="emb_method").value == "PCA"
    for colour in ("session", "outcome", "label"):
        at.selectbox(key="emb_colour").set_value(colour).run()
        assert not at.exception
    at.multiselect(key="highlight").set_value(["can"]).run()
    assert not at.exception
    assert at.query_params.get("highlight") in (["can"], "can")
    _, dataset, results = engine_results
    options = at.selectbox(key="emb_clip").options
    queries = [int(o.split()[0][1:]) for o in options]
    query = next(q for q in queries if results[q].candidates)
    at.selectbox(key="emb_clip").set_value(query).run()
    assert not at.exception
    table = _table(at, "reference", "similarity")
    expected = results[query].candidates
    assert table["label"].tolist()[: len(expected)] == [c.label for c in expected]
    np.testing.assert_allclose(table["similarity"][: len(expected)], [round(c.similarity, 4) for c in expected],
                               atol=1e-4)
    assert at.query_params.get("clip") in ([str(query)], str(query))  # the URL names the clip opened
    at.multiselect(key="highlight").set_value([]).run()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["t-SNE", "UMAP"])
def test_embeddings_nonlinear_projections(app, method):
    """Slow: t-SNE imports a lot of scikit-learn, UMAP compiles its numba code on first use (~1 min)."""
    at = _go(app, "embeddings")
    at.sidebar.radio(key="clips").set_value("all").run()
    at.radio(key="emb_method").set_value(method).run(timeout=RUN_TIMEOUT_S)
    assert not at.exception and not at.error
    assert any(method in c.value for c in at.caption)
    at.radio(key="emb_method").set_value("PCA").run()
    at.sidebar.radio(key="clips").set_value("unseen").run()


def test_prototypes_page_matches_the_bundle_and_opens_outliers(app, explorer_bundle):
    bundle = load_bundle(explorer_bundle)
    at = _go(app, "prototypes")
    sims = bundle.prototypes @ bundle.prototypes.T
    np.fill_diagonal(sims, -np.inf)
    i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
    caption = " ".join(c.value for c in at.caption)
    assert f"{sims[i, j]:.3f}" in caption and bundle.prototype_labels[i] in caption
    summary = _table(at, "count", "mean", "min")
    assert int(summary["count"].sum()) == len(bundle.labels)
    at.slider(key="proto_iqr").set_value(0.5).run()
    assert not at.exception
    assert at.selectbox(key="proto_outlier").options, "no outlier to open at a fence of 0.5 IQR"
    assert not at.exception
    at.radio(key="proto_members").set_value("dataset clips").run()
    assert not at.exception and not at.error


def test_confusion_page_counts_match_the_engine_and_is_readable(app, engine_results, explorer_bundle):
    engine, dataset, results = engine_results
    at = _go(app, "confusion")
    at.sidebar.radio(key="clips").set_value("all").run()
    try:
        rejected = [i for i, r in enumerate(results) if not r.accepted and dataset.labels[i] not in engine.idle_labels]
        true = str(dataset.labels[rejected[0]])
        at.selectbox(key="conf_true").set_value(true).run()
        at.selectbox(key="conf_pred").set_value("(rejected)").run()
        n = sum(1 for i in rejected if dataset.labels[i] == true)
        assert any(f"**{n}** clips of **{true}** predicted **(rejected)**" in m.value for m in at.markdown)
        # The ranked table of mistakes: no right answer (diagonal, idle rejected) in it.
        top = _table(at, "true", "predicted", "clips")
        assert not ((top["true"] == top["predicted"]) | top["true"].isin(engine.idle_labels)).any()
        for toggle in ("conf_normalise", "conf_log", "conf_hide_diagonal", "conf_served"):
            at.toggle(key=toggle).set_value(not at.toggle(key=toggle).value).run()
            assert not at.exception and not at.error
        # Ranking without gates: a label's diagonal counts its clips whose top-1 is right.
        label = next(str(x) for x in dataset.labels if str(x) not in engine.idle_labels)
        at.selectbox(key="conf_true").set_value(label).run()
        at.selectbox(key="conf_pred").set_value(label).run()
        hits = sum(1 for i, r in enumerate(results) if dataset.labels[i] == label and r.candidates
                   and r.candidates[0].label == label)
        assert any(f"**{hits}** clips of **{label}**" in m.value for m in at.markdown)
        report = _table(at, "precision", "recall", "f1")
        assert label in report["label"].tolist()
    finally:
        for toggle, value in (("conf_normalise", True), ("conf_log", False), ("conf_hide_diagonal", False),
                              ("conf_served", True)):
            at.toggle(key=toggle).set_value(value).run()
        at.sidebar.radio(key="clips").set_value("unseen").run()


def test_failures_page_lists_every_error_and_rejection(app, engine_results, explorer_bundle):
    engine, dataset, results = engine_results
    idle = engine.idle_labels
    chosen = held_out(explorer_bundle, dataset)
    wrong = [i for i in chosen if not ((results[i].accepted and results[i].label == dataset.labels[i])
                                       or (dataset.labels[i] in idle and not results[i].accepted))]
    at = _go(app, "failures")
    assert any(f"**{len(wrong)}** shown." in m.value for m in at.markdown)
    assert sorted(_table(at, "kind", "reason")["query"].tolist()) == wrong
    if wrong:
        at.multiselect(key="fail_kind").set_value(["rejection"]).run()
        assert not at.exception
        expected = [i for i in wrong if not results[i].accepted]
        assert sorted(_table(at, "kind", "reason")["query"].tolist()) == expected
        at.multiselect(key="fail_kind").set_value([]).run()


def test_sessions_page_and_filter(app, engine_results):
    _, dataset, results = engine_results
    at = _go(app, "sessions")
    at.sidebar.radio(key="clips").set_value("all").run()
    try:
        table = _table(at, "session", "clips", "top1")
        sessions = sorted({str(s) for s in dataset.signers.tolist()})
        assert sorted(table["session"].astype(str)) == sessions
        counts = dict(zip(table["session"].astype(str), table["clips"], strict=True))
        assert counts == {s: int(sum(str(x) == s for x in dataset.signers.tolist())) for s in sessions}
        # The sidebar's filter narrows every page; it is in the URL.
        at.sidebar.multiselect(key="sessions").set_value([sessions[0]]).run()
        assert _table(at, "session", "clips")["session"].astype(str).tolist() == [sessions[0]]
        assert at.query_params.get("sessions") in ([sessions[0]], sessions[0])
        _go(at, "failures")
        assert set(_table(at, "session", "kind")["session"].astype(str)) <= {sessions[0]}
    finally:
        at.sidebar.multiselect(key="sessions").set_value([]).run()
        at.sidebar.radio(key="clips").set_value("unseen").run()


# ---------------------------------------------------------------------------- calibration


def _shown_parameters(at: AppTest) -> dict[str, float]:
    table = _table(at, "parameter", "value")
    return {row.parameter: float(row.value) for row in table.itertuples(index=False)}


RULE = ("MIN_CONFIDENCE", "SIM_THRESHOLD", "UNKNOWN_SCALE", "MARGIN_WEIGHT", "SIM_MARGIN", "CONFIDENCE_TEMPERATURE")


def _fields(at: AppTest) -> dict[str, float]:
    return {name: at.number_input(key=f"cal_{name}").value for name in RULE}


def test_calibration_second_visit_keeps_and_writes_exactly_what_it_shows(explorer_bundle, tmp_path):
    """The bug: on a second visit SIM_THRESHOLD reset to -1.0 (the number field's minimum) while the
    info box still said the suggestion, and Write wrote -1.0 into the bundle. Now: the decision
    rule's parameters (signseek.ranker), the same on every visit, written exactly as shown."""
    from signseek.engine import Engine

    at = new_app(explorer_bundle, SAMPLE_DATA, {"clips": "all"})
    at = _go(at, "calibration")
    at.slider(key="cal_target").set_value(0.99).run()
    first = _fields(at)
    _go(at, "overview")
    _go(at, "confusion")
    at = _go(at, "calibration")
    second = _fields(at)
    assert second == first, f"the fields changed between visits: {first} -> {second}"
    shown = _shown_parameters(at)
    assert shown == pytest.approx(first)
    out = tmp_path / "calibrated"
    at.text_input(key="cal_out").set_value(str(out)).run()
    at.button(key="cal_write").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.success, "no confirmation after writing"
    engine = Engine.from_bundle(out)
    for name, value in shown.items():
        assert getattr(engine.settings, name) == value, name
        assert engine.setting_sources[name] in ("bundle", "env", ".env")


def test_calibration_refuses_a_threshold_outside_the_observed_range(explorer_bundle, tmp_path):
    at = new_app(explorer_bundle, SAMPLE_DATA, {"clips": "all"})
    at = _go(at, "calibration")
    label = at.number_input(key="cal_MIN_CONFIDENCE").label  # "MIN_CONFIDENCE (seen 0.4 to 1.0)"
    lo, hi = (float(x) for x in label.split("seen ")[1].rstrip(")").split(" to "))
    outside = round(max(0.0, lo - 0.1), 4) if lo > 0.0 else 1.5
    at.number_input(key="cal_MIN_CONFIDENCE").set_value(outside).run()
    assert at.number_input(key="cal_MIN_CONFIDENCE").value == outside, "the field must show what was typed"
    assert any("outside the range" in w.value for w in at.warning), label
    assert at.button(key="cal_write").disabled
    from explorer import data

    with pytest.raises(data.ExplorerError, match="outside the range"):
        data.write_thresholds(explorer_bundle, {"MIN_CONFIDENCE": 0.2}, tmp_path / "x",
                              ranges={"MIN_CONFIDENCE": (0.5, 1.0)})
    with pytest.raises(data.ExplorerError, match="not valid settings"):
        data.write_thresholds(explorer_bundle, {"UNKNOWN_SCALE": -1.0}, tmp_path / "x")
    assert not (tmp_path / "x").exists(), "a refused write must leave nothing behind"
    # An edit inside the range is written as typed.
    inside = round((lo + hi) / 2, 4)
    at.number_input(key="cal_MIN_CONFIDENCE").set_value(inside).run()
    at.text_input(key="cal_out").set_value(str(tmp_path / "ok")).run()
    at.button(key="cal_write").click().run()
    assert at.success, [e.value for e in at.error]
    assert load_bundle(tmp_path / "ok").config["thresholds"]["MIN_CONFIDENCE"] == inside


def test_calibration_on_hands_only_calibrates_the_classifiers_gate(explorer_bundle, tmp_path):
    at = new_app(explorer_bundle, HANDS, {"clips": "all"})
    at = _go(at, "calibration")
    shown = _shown_parameters(at)
    assert list(shown) == ["CLASSIFIER_MIN_CONFIDENCE"]
    at.text_input(key="cal_out").set_value(str(tmp_path / "hands")).run()
    at.button(key="cal_write").click().run()
    assert at.success, [e.value for e in at.error]
    from signseek.engine import Engine

    assert Engine.from_bundle(tmp_path / "hands").settings.CLASSIFIER_MIN_CONFIDENCE == shown[
        "CLASSIFIER_MIN_CONFIDENCE"]


def test_deciding_again_at_the_bundles_values_gives_the_engines_verdicts(explorer_bundle):
    """The calibration curves come from the Ranker deciding the same rankings again: at the values
    in force that is exactly what the engine answered; a stricter MIN_CONFIDENCE only takes answers away."""
    from explorer import backend, data

    engine, dataset, results = engine_view(explorer_bundle, SAMPLE_DATA)
    evaluation = data.evaluate(explorer_bundle, SAMPLE_DATA)
    records = evaluation.records
    searched = records[(records["model"] == "encoder") & ~records["rejection_reason"].isin(data.INPUT_REASONS)]
    scored = backend.score_clips(engine, dataset, searched.index.to_numpy())
    s = engine.settings
    in_force = {name: getattr(s, name) for name in backend.RULE_PARAMETERS}
    accepted, confidence = backend.redecide(engine, scored, in_force)
    assert accepted.tolist() == [results[q].accepted for q in searched.index]
    # float32 encoder batches of another size: the same up to ~1e-6
    np.testing.assert_allclose(confidence, [results[q].confidence for q in searched.index], atol=1e-4)
    stricter, _ = backend.redecide(engine, scored, {**in_force, "MIN_CONFIDENCE": min(1.0, s.MIN_CONFIDENCE + 0.2)})
    assert not (stricter & ~accepted).any()
    # The hands-only classifier's gate, likewise.
    engine, dataset, results = engine_view(explorer_bundle, HANDS)
    records = data.evaluate(explorer_bundle, HANDS).records
    again = backend.regate_classifier(records, s.CLASSIFIER_MIN_CONFIDENCE, "fingerspelling")
    assert again.tolist() == [r.accepted for r in results]


def test_write_thresholds_in_place_re_signs_the_manifest(explorer_bundle, tmp_path):
    from explorer import data

    copy = tmp_path / "bundle"
    shutil.copytree(explorer_bundle, copy)
    data.write_thresholds(copy, {"SIM_THRESHOLD": 0.61, "SIM_MARGIN": 0.03})
    bundle = load_bundle(copy)
    assert bundle.config["thresholds"]["SIM_THRESHOLD"] == 0.61
    assert json.loads((copy / "export_manifest.json").read_text())["files"]["model_config.json"]["bytes"] == (
        copy / "model_config.json").stat().st_size
    assert data.env_text({"SIM_THRESHOLD": 0.61, "SIM_MARGIN": 0.03}) == "SIM_THRESHOLD=0.61\nSIM_MARGIN=0.03\n"
    with pytest.raises(data.ExplorerError, match="not empty"):
        data.write_thresholds(copy, {"SIM_THRESHOLD": 0.5}, out_dir=copy.parent)
    with pytest.raises(data.ExplorerError, match="no parameter"):
        data.write_thresholds(copy, {"SIM_THRESHOLDS": 0.5}, out_dir=tmp_path / "typo")


# ---------------------------------------------------------------------------- open set, compare


def test_open_set_page_on_unknown_labels_and_a_negatives_file(explorer_bundle, canonical_data):
    """Unknowns from labels the bundle lacks (the canonical file's video clips: 'hoy', 'selfie') and
    from a negatives file (that same file given as negatives to the signs sample)."""
    from sklearn.metrics import roc_auc_score

    engine, dataset, results = engine_view(explorer_bundle, canonical_data)
    at = new_app(explorer_bundle, canonical_data, {"clips": "all"})
    at = _go(at, "openset")
    known_labels = set(engine.labels) - engine.idle_labels
    rows = [(dataset.labels[i] not in known_labels, r.unknown_score)  # the engine's own unknown-score
            for i, r in enumerate(results) if r.model == "encoder" and dataset.labels[i] not in engine.idle_labels]
    rows = [(u, s) for u, s in rows if s is not None]
    assert any(u for u, _ in rows) and not all(u for u, _ in rows)
    expected = roc_auc_score([int(u) for u, _ in rows], [-s for _, s in rows])
    assert float(_metric(at, "AUROC (known vs unknown)")) == pytest.approx(expected, abs=5e-5)
    unknown = [i for i, r in enumerate(results) if dataset.labels[i] not in known_labels | engine.idle_labels]
    false_accepts = sum(results[i].accepted for i in unknown)
    assert _metric(at, "Unknown false accepts (served)") == f"{false_accepts} of {len(unknown)}"

    negatives = negatives_of(canonical_data)
    at = new_app(explorer_bundle, SAMPLE_DATA, {"clips": "unseen", "negatives": str(negatives)})
    at = _go(at, "openset")
    n_negatives = len(data_module().load_dataset(negatives))
    assert f"({n_negatives} from the negatives file)" in _texts(at)
    assert at.get("plotly_chart")
    # A negatives file that holds signs the bundle knows is used as asked, with a warning.
    at = new_app(explorer_bundle, SAMPLE_DATA, {"clips": "unseen", "negatives": str(canonical_data)})
    at = _go(at, "openset")
    assert any("labels the bundle knows" in w.value for w in at.warning)


def data_module():
    from explorer import data

    return data


def test_compare_two_bundles(explorer_bundle, tmp_path):
    """B = the bundle with a stricter MIN_CONFIDENCE: the deltas, and which clips it fixes or breaks,
    are the two engines' own verdicts."""
    from explorer import data
    from signseek.engine import Engine

    strict = tmp_path / "strict"
    data.write_thresholds(explorer_bundle, {"MIN_CONFIDENCE": 0.95}, strict)
    at = new_app(explorer_bundle, SAMPLE_DATA, {"clips": "all", "compare": str(strict)})
    at = _go(at, "compare")
    metrics = _table(at, "metric", "A", "B")
    dataset = data.load_dataset(SAMPLE_DATA)
    points = [dataset.points(i) for i in range(len(dataset))]
    a = Engine.from_bundle(explorer_bundle).recognize_many(points)
    b = Engine.from_bundle(strict).recognize_many(points)
    acc = dict(zip(metrics["metric"], metrics["B"], strict=True))
    assert acc["acceptance"] == pytest.approx(sum(r.accepted for r in b) / len(b), abs=5e-5)
    idle = set(load_bundle(explorer_bundle).idle_labels)

    def right(r, i):
        return (r.accepted and r.label == dataset.labels[i]) or (dataset.labels[i] in idle and not r.accepted)

    introduced = sorted(i for i in range(len(dataset)) if right(a[i], i) and not right(b[i], i))
    fixed = sorted(i for i in range(len(dataset)) if not right(a[i], i) and right(b[i], i))
    tables = [t.value for t in at.dataframe if "answer_b" in t.value.columns]
    assert sorted(tables[0]["query"]) == fixed and sorted(tables[1]["query"]) == introduced
    assert introduced, "a stricter MIN_CONFIDENCE should reject some clips that were right"
    per_sign = _table(at, "label", "right_a", "right_b", "delta")
    assert (per_sign["delta"] <= 1e-9).all()


# ---------------------------------------------------------------------------- data, source, URL


def test_text_files_and_folders_get_a_clear_message(explorer_bundle, tmp_path):
    """Today: numpy's "allow_pickle" message for a text file, "does not exist" for a folder."""
    text = tmp_path / "notes.npz"
    text.write_text("label,session\nhello,1\n")
    at = new_app(explorer_bundle, text)
    assert at.error and "not a .npz file" in at.error[0].value
    folder = tmp_path / "clips"
    folder.mkdir()
    at = new_app(explorer_bundle, folder)
    assert at.error and "is a folder, not a dataset file" in at.error[0].value
    broken = tmp_path / "arrays.npz"
    np.savez(broken, something=np.zeros(3))
    at = new_app(explorer_bundle, broken)
    assert at.error and "lacks" in at.error[0].value and "landmarks [N, T, V]" in at.error[0].value


def test_a_missing_bundle_is_a_message_not_a_traceback(tmp_path):
    at = new_app(tmp_path / "no-such-bundle", SAMPLE_DATA)
    assert at.error and "does not exist" in at.error[0].value
    at.button(key="reload").click().run()  # clears the caches; the message stays, no traceback
    assert not at.exception and "does not exist" in at.error[0].value


def test_a_link_reopens_the_same_view(explorer_bundle, engine_results):
    """URL query parameters carry bundle, dataset, clips, sessions and the clip opened."""
    _, dataset, results = engine_results
    query = next(i for i, r in enumerate(results) if r.candidates and r.accepted)
    session = str(dataset.signers[query])
    at = new_app(explorer_bundle, SAMPLE_DATA, {"clips": "all", "sessions": session, "clip": str(query)})
    at = _go(at, "embeddings")
    assert at.sidebar.radio(key="clips").value == "all"
    assert at.sidebar.multiselect(key="sessions").value == [session]
    assert at.selectbox(key="emb_clip").value == query
    params = at.query_params
    assert params["data"] in ([str(SAMPLE_DATA)], str(SAMPLE_DATA)) and params["clip"] in ([str(query)], str(query))


def test_a_clip_opens_on_its_source_video_frames(explorer_bundle, canonical_data):
    from explorer import data

    dataset = data.load_dataset(canonical_data)
    video = next(i for i, p in enumerate(dataset.extra["path"]) if p)
    at = new_app(explorer_bundle, canonical_data, {"clips": "all", "clip": str(video)})
    at = _go(at, "embeddings")
    assert at.selectbox(key="emb_clip").value == video
    assert at.radio(key="emb_view").value == "video"
    assert at.get("image"), "no video frame shown"
    at.slider(key="emb_frame").set_value(0).run()
    assert not at.exception
    at.radio(key="emb_view").set_value("image").run()
    assert not at.exception and at.get("plotly_chart")


def test_feedback_file_opens_and_a_selection_is_enrolled_and_exported(explorer_bundle, tmp_path):
    """The demo's "wrong answer?" flags (signseek.feedback.FeedbackStore: a SignDataset whose labels
    are the users' corrections) open like any dataset; picked clips enrol into a reference store
    under the correction, and export as a dataset file."""
    from explorer import data, exports
    from signseek.datasets import SignDataset
    from signseek.engine import Engine
    from signseek.feedback import FeedbackStore
    from signseek.store import ReferenceStore

    signs = data.load_dataset(SAMPLE_DATA)
    engine = Engine.from_bundle(explorer_bundle)
    flags = FeedbackStore(tmp_path / "feedback")
    for i in [i for i, label in enumerate(signs.labels) if label == "coffee"][:3]:
        result = engine.recognize(signs.points(i))
        flags.add(signs.points(i), {"label": result.label, "accepted": result.accepted,
                                    "rejection_reason": str(result.rejection_reason),
                                    "results": [{"label": c.label, "similarity": c.similarity}
                                                for c in result.candidates]}, "kofi", consent=True)
    store = tmp_path / "enrolled.db"
    at = new_app(explorer_bundle, flags.dataset_path)
    at = _go(at, "clips")
    assert any("feedback file" in i.value for i in at.info)
    assert "demo answered" in _table(at, "query", "label").columns
    at.button(key="clips_pick_all").click().run()
    assert any("**3** clips picked." in m.value for m in at.markdown)
    assert at.text_input(key="clips_enrol_label").value == "kofi"
    at.text_input(key="clips_enrol_store").set_value(str(store)).run()
    at.button(key="clips_enrol").click().run()
    assert at.success, [e.value for e in at.error]
    check = ReferenceStore(Engine.from_bundle(explorer_bundle), store, watch=False)
    try:
        enrolled = {s.label: s.n_clips for s in check.list_signs()}
    finally:
        check.close()
    assert enrolled == {"kofi": 3}
    (tmp_path / "back.npz").write_bytes(exports.dataset_bytes(data.load_dataset(flags.dataset_path), [0, 2]))
    back = SignDataset.load(tmp_path / "back.npz")
    assert len(back) == 2 and back.labels.tolist() == ["kofi", "kofi"]
    # Every other page opens on it too (no session column, clips without a face).
    for page in ("overview", "embeddings", "failures", "openset"):
        _go(at, page)


# ---------------------------------------------------------------------------- pieces


def test_projector_export_and_selection_keep_every_row():
    import io
    import zipfile

    import pandas as pd

    from explorer import exports

    rng = np.random.default_rng(0)
    n = 40
    records = pd.DataFrame({"label": rng.choice(["a", "b\tc"], n), "pred": "a", "outcome": "right", "session": 1,
                            "model": "encoder", "query": np.arange(n), "sample_id": [f"s:{i}" for i in range(n)],
                            "answer": "a", "accepted": True, "rejection_reason": "", "score": 0.9, "margin": 0.1})
    vectors = rng.standard_normal((n, 8)).astype(np.float32)
    archive = zipfile.ZipFile(io.BytesIO(exports.projector_zip(vectors, records)))
    tensors = np.loadtxt(io.StringIO(archive.read("tensors.tsv").decode()), delimiter="\t")
    np.testing.assert_allclose(tensors, vectors, rtol=1e-5, atol=1e-6)
    meta = archive.read("metadata.tsv").decode().splitlines()
    assert meta[0].split("\t") == exports.METADATA_COLUMNS and len(meta) == n + 1
    assert all(len(line.split("\t")) == len(exports.METADATA_COLUMNS) for line in meta)
    assert 'tensor_path: "tensors.tsv"' in archive.read("projector_config.pbtxt").decode()
    lasso = list(range(0, n, 3))
    assert exports.selection_table(records, lasso)["query"].tolist() == lasso


def test_every_label_gets_its_own_colour_and_the_idle_rejections_do_not_set_the_scale():
    from explorer import data, plots

    labels = [f"sign{i}" for i in range(80)]
    colours = plots.label_colours(labels)
    assert len(set(colours.values())) == 80
    rows = ["-", "a", "b"]
    columns = ["-", "a", "b", data.REJECTED_COLUMN]
    matrix = np.array([[0, 0, 0, 402], [0, 20, 3, 1], [0, 5, 15, 0]])
    values, top = data.confusion_display(matrix, rows, columns, {"-"}, normalise=False, log=False,
                                         hide_diagonal=False)
    assert top == 5
    values, top = data.confusion_display(matrix, rows, columns, {"-"}, normalise=True, log=False, hide_diagonal=True)
    assert np.isnan(values[0, 3]) and np.isnan(values[1, 1]) and top == pytest.approx(0.25)
    ranked = data.top_confusions(matrix, rows, columns, {"-"})
    assert ranked[["true", "predicted", "clips"]].values.tolist() == [["b", "a", 5], ["a", "b", 3],
                                                                      ["a", data.REJECTED_COLUMN, 1]]


def test_embedding_scatter_is_webgl_and_keeps_every_sampled_point():
    """6,000 points: WebGL traces (go.Scattergl), one per colour group, each point naming its clip."""
    import pandas as pd

    from explorer import data, plots

    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((6000, 256)).astype(np.float32)
    xy = data.project(embeddings, "PCA")
    points = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "query": np.arange(6000),
                           "label": rng.choice(list("abcdefgh"), 6000), "session": "0",
                           "outcome": rng.choice(["right", "wrong"], 6000), "pred": "a"})
    for highlight in ((), ("a", "b")):
        fig = plots.embedding_scatter(points, "label", highlight)
        assert {type(t).__name__ for t in fig.data} == {"Scattergl"}
        shown = sorted(int(q) for t in fig.data for q in np.asarray(t.customdata)[:, 0])
        assert shown == list(range(6000))
    assert len(data.sample_queries(6000, 5000, seed=1)) == 5000
