"""The Streamlit explorer under AppTest: every page runs, its widgets interact without exceptions,
and the numbers it shows are the engine's and the trainer's for the same bundle and data.

The bundle is the shipped one (models/) when it is there, else the engine engineer's fixture
bundle (tests/fixtures/bundle_factory.py: a real ONNX encoder over real sample clips). The data
is sample_dataset/signs_sample.npz (132 real clips). The expected numbers are computed here
with `signseek.engine.Engine` and `trainer.evaluate`, not with the explorer's code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from signseek.bundle import BundleError, load_bundle
from signseek.paths import MODELS_DIR, PROJECT_ROOT, SAMPLE_DATASET

APP = PROJECT_ROOT / "explorer" / "app.py"
SAMPLE_DATA = SAMPLE_DATASET / "signs_sample.npz"
PAGES = ("embeddings", "prototypes", "confusion", "failures", "calibration")
RUN_TIMEOUT_S = 120  # the first run evaluates the dataset (cached for every later run)


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


@pytest.fixture(scope="module")
def engine_results(explorer_bundle):
    """What the engine itself says about every clip of the sample file (the expected values)."""
    from signseek.datasets.npz import import_npz
    from signseek.engine import Engine

    engine = Engine.from_bundle(explorer_bundle)
    dataset = import_npz(SAMPLE_DATA)
    results = engine.recognize_many([dataset.points(i) for i in range(len(dataset))])
    return engine, dataset, results


@pytest.fixture(scope="module")
def app(explorer_bundle, monkeypatch_module) -> AppTest:
    monkeypatch_module.setenv("SIGNSEEK_EXPLORER_BUNDLE", str(explorer_bundle))
    monkeypatch_module.setenv("SIGNSEEK_EXPLORER_DATA", str(SAMPLE_DATA))
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
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


# ---------------------------------------------------------------------------- pages


def test_overview_shows_the_bundle_and_the_evaluators_numbers(app, explorer_bundle):
    from explorer.ui import HEADLINE_METRICS
    from trainer.evaluate import run_evaluation

    at = _go(app, "overview")
    assert at.title[0].value == "SignSeek explorer"
    expected = run_evaluation(bundle_dir=str(explorer_bundle), data=str(SAMPLE_DATA), with_dtw=False, quiet=True)
    shown = 0
    for name, title in HEADLINE_METRICS.items():
        if name in expected:
            assert float(_metric(at, title)) == pytest.approx(expected[name], abs=5e-5), name
            shown += 1
    assert shown >= 3, f"the overview shows too few of the evaluator's metrics: {sorted(expected)}"


def test_embeddings_page_projects_colours_and_opens_a_clip(app, engine_results):
    at = _go(app, "embeddings")
    assert at.radio(key="emb_method").value == "PCA"
    for colour in ("session", "outcome"):
        at.selectbox(key="emb_colour").set_value(colour).run()
        assert not at.exception
    at.slider(key="emb_sample").set_value(60).run()
    assert not at.exception
    clips = at.selectbox(key="emb_clip").options
    assert len(clips) == 60
    # Picking a clip shows its ranked references with the engine's similarities.
    _, dataset, results = engine_results
    query = next(i for i, r in enumerate(results) if r.candidates and i in
                 [int(o.split()[0][1:]) for o in at.selectbox(key="emb_clip").options])
    at.selectbox(key="emb_clip").set_value(query).run()
    assert not at.exception
    table = _table(at, "reference", "similarity")
    expected = results[query].candidates  # the engine's top DEFAULT_TOP_K; the page shows more
    assert table["label"].tolist()[: len(expected)] == [c.label for c in expected]
    np.testing.assert_allclose(table["similarity"][: len(expected)], [round(c.similarity, 4) for c in expected],
                               atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["t-SNE", "UMAP"])
def test_embeddings_nonlinear_projections(app, method):
    """Slow: t-SNE imports a lot of scikit-learn, UMAP compiles its numba code on first use (~1 min)."""
    at = _go(app, "embeddings")
    at.radio(key="emb_method").set_value(method).run(timeout=RUN_TIMEOUT_S)
    assert not at.exception and not at.error
    assert method in at.caption[0].value


def test_prototypes_page_matches_the_bundle(app, explorer_bundle):
    bundle = load_bundle(explorer_bundle)
    at = _go(app, "prototypes")
    sims = bundle.prototypes @ bundle.prototypes.T
    np.fill_diagonal(sims, -np.inf)
    i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
    caption = " ".join(c.value for c in at.caption)
    assert f"{sims[i, j]:.3f}" in caption and bundle.prototype_labels[i] in caption
    summary = _table(at, "count", "mean", "min")
    assert int(summary["count"].sum()) == len(bundle.labels)
    for choice in ("dataset clips", "bundle references"):
        at.radio(key="proto_members").set_value(choice).run()
        assert not at.exception
    at.slider(key="proto_iqr").set_value(0.5).run()
    assert not at.exception


def test_confusion_page_counts_and_report_match_the_engine_and_trainer(app, engine_results, explorer_bundle,
                                                                          tmp_path):
    engine, dataset, results = engine_results
    at = _go(app, "confusion")
    # A cell of the served answers: clips of one label the engine rejected.
    rejected = [i for i, r in enumerate(results) if not r.accepted]
    true = str(dataset.labels[rejected[0]])
    at.selectbox(key="conf_true").set_value(true).run()
    at.selectbox(key="conf_pred").set_value("(rejected)").run()
    assert not at.exception
    n = sum(1 for i in rejected if dataset.labels[i] == true)
    assert any(f"**{n}** clips of **{true}** predicted **(rejected)**" in m.value for m in at.markdown)
    at.toggle(key="conf_served").set_value(False).run()
    assert not at.exception and not at.error
    # The per-label report is the trainer's, for the same bundle and data.
    import pandas as pd

    from trainer.evaluate import run_evaluation

    run_evaluation(bundle_dir=str(explorer_bundle), data=str(SAMPLE_DATA), with_dtw=False, quiet=True,
                   out_dir=tmp_path)
    expected = pd.read_csv(tmp_path / "per_class.csv", keep_default_na=False)
    shown = _table(at, "precision", "recall", "f1")
    assert shown["label"].tolist() == expected["label"].tolist()
    assert shown["support"].tolist() == expected["support"].tolist()
    for column in ("precision", "recall", "f1"):
        np.testing.assert_allclose(shown[column], expected[column].round(4), atol=1e-4)
    # Without gates, the diagonal of the matrix counts the trainer's top-1 hits.
    confusion = pd.read_csv(tmp_path / "confusion.csv", index_col=0, keep_default_na=False)
    label = expected["label"].iloc[0]
    at.selectbox(key="conf_true").set_value(label).run()
    at.selectbox(key="conf_pred").set_value(label).run()
    assert any(f"**{int(confusion.loc[label, label])}** clips of **{label}**" in m.value for m in at.markdown)
    assert at.get("download_button")


def test_failures_page_lists_every_error_and_rejection(app, engine_results):
    engine, dataset, results = engine_results
    idle = engine.idle_labels
    wrong = [i for i, r in enumerate(results) if not ((r.accepted and r.label == dataset.labels[i])
                                                      or (dataset.labels[i] in idle and not r.accepted))]
    at = _go(app, "failures")
    assert any(f"**{len(wrong)}** shown." in m.value for m in at.markdown)
    table = _table(at, "kind", "reason")
    assert sorted(table["query"].tolist()) == wrong
    # Filter by a reason the engine gave (or, with no rejection among the failures, by kind).
    reasons = sorted({results[i].rejection_reason for i in wrong if not results[i].accepted})
    if reasons:
        at.multiselect(key="fail_reason").set_value([reasons[0]]).run()
        expected = sum(1 for i in wrong if not results[i].accepted and results[i].rejection_reason == reasons[0])
    else:
        at.multiselect(key="fail_kind").set_value(["error"]).run()
        expected = len(wrong)
    assert not at.exception
    assert len(_table(at, "kind", "reason")) == expected


def test_calibration_page_matches_the_engine_and_writes_a_bundle(app, engine_results, tmp_path):
    engine, dataset, results = engine_results
    at = _go(app, "calibration")
    accepted = [r for r in results if r.accepted]
    right = sum(1 for i, r in enumerate(results) if r.accepted and r.label == dataset.labels[i])
    assert float(_metric(at, "Acceptance (bundle now)")) == pytest.approx(len(accepted) / len(results), abs=5e-5)
    assert float(_metric(at, "Precision (bundle now)")) == pytest.approx(right / len(accepted), abs=5e-5)
    at.slider(key="cal_target").set_value(0.8).run()
    assert not at.exception
    at.number_input(key="cal_threshold").set_value(0.5).run()
    at.number_input(key="cal_margin").set_value(0.02).run()
    assert not at.exception and not at.error

    out = tmp_path / "calibrated"
    at.text_input(key="cal_out").set_value(str(out)).run()
    at.button(key="cal_write").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.success, "no confirmation after writing"
    written = load_bundle(out)  # the re-signed manifest verifies
    assert written.config["thresholds"]["SIM_THRESHOLD"] == 0.5
    assert written.config["thresholds"]["SIM_MARGIN"] == 0.02
    from signseek.engine import Engine

    calibrated = Engine.from_bundle(out)
    assert calibrated.settings.SIM_THRESHOLD == 0.5 and calibrated.setting_sources["SIM_THRESHOLD"] == "bundle"


def test_unseen_sittings_selection_runs_every_page(app, engine_results, explorer_bundle):
    """Sidebar 'sittings not in the references': pages run on clips whose (label, session) no
    reference shares, and the failures are the engine's failures among exactly those clips."""
    import csv

    engine, dataset, results = engine_results
    with open(Path(explorer_bundle) / "embeddings_map.csv", newline="") as fh:
        seen = {(row["label"], row["session"]) for row in csv.DictReader(fh)}
    unseen = [i for i in range(len(dataset)) if (str(dataset.labels[i]), str(dataset.signers[i])) not in seen]
    idle = engine.idle_labels
    wrong = [i for i in unseen if not ((results[i].accepted and results[i].label == dataset.labels[i])
                                       or (dataset.labels[i] in idle and not results[i].accepted))]
    at = _go(app, "overview")
    try:
        at.sidebar.radio(key="clips").set_value("unseen").run()
        assert not at.exception
        if not unseen:
            assert at.warning, "an empty selection must say so"
            return
        for page in PAGES:
            _go(at, page)
        assert sorted(_table(_go(at, "failures"), "kind", "reason")["query"].tolist()) == wrong
        # The suggested thresholds are searched on the selected clips and reach the target there.
        at = _go(at, "calibration")
        at.slider(key="cal_target").set_value(0.9).run()
        chosen = float(_metric(at, "Precision (chosen)"))
        assert np.isnan(chosen) or chosen >= 0.9 or any("No thresholds reach" in w.value for w in at.warning)
    finally:
        at.sidebar.radio(key="clips").set_value("all").run()


def test_a_missing_bundle_is_a_message_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("SIGNSEEK_EXPLORER_BUNDLE", str(tmp_path / "no-such-bundle"))
    monkeypatch.setenv("SIGNSEEK_EXPLORER_DATA", str(SAMPLE_DATA))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert at.error and "does not exist" in at.error[0].value
    at.button(key="reload").click().run()  # clears the caches; the message stays, no traceback
    assert not at.exception and "does not exist" in at.error[0].value


# ---------------------------------------------------------------------------- data API


def test_regate_at_the_bundles_thresholds_gives_the_engines_verdicts(explorer_bundle, engine_results):
    from explorer import data

    engine, _, results = engine_results
    evaluation = data.evaluate(explorer_bundle, SAMPLE_DATA)
    s = engine.settings
    again = data.regate(evaluation.records, s.SIM_THRESHOLD, s.SIM_MARGIN, s.PROTOTYPE_CHECK)
    assert again.tolist() == [r.accepted for r in results]
    # Raising the threshold can only take answers away.
    stricter = data.regate(evaluation.records, s.SIM_THRESHOLD + 0.2, s.SIM_MARGIN, s.PROTOTYPE_CHECK)
    assert not (stricter & ~again).any()


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
    fig = plots.embedding_scatter(points, "label")
    assert {type(t).__name__ for t in fig.data} == {"Scattergl"}
    assert sum(len(t.x) for t in fig.data) == 6000
    shown = sorted(int(q) for t in fig.data for q in np.asarray(t.customdata)[:, 0])
    assert shown == list(range(6000))
    assert len(data.sample_queries(6000, 5000, seed=1)) == 5000
