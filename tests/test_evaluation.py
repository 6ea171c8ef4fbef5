"""Metrics, the decision rule's calibration and the evaluation protocols (signseek.metrics,
signseek.evaluation) on hand-made scores and on the fixture bundle with real sample clips."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.bundle_factory import build_fixture_bundle

from signseek.datasets.clips import load_clips
from signseek.engine.search import ReferenceSet
from signseek.evaluation import Evaluation, decision_metrics, fit_decision_rule, score
from signseek.metrics import auroc, calibration_error, fpr_at_tpr, operating_point, wilson_interval
from signseek.paths import SAMPLE_DATASET
from signseek.ranker import Ranker
from signseek.settings import Settings

DIM = 16


def test_auroc_counts_ties_half_and_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 40).round(1), rng.normal(0, 1, 50).round(1)
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auroc(pos, neg) == pytest.approx(pairwise)
    assert auroc([1, 2], [0, 0]) == 1.0 and auroc([0, 0], [1, 2]) == 0.0


def test_fpr_at_tpr_and_wilson_interval():
    known, unknown = np.linspace(0.5, 1.0, 101), np.linspace(0.0, 0.6, 61)
    threshold = np.quantile(known, 0.05, method="lower")
    assert fpr_at_tpr(known, unknown, 0.95) == pytest.approx(np.mean(unknown >= threshold))
    low, high = wilson_interval(1, 6)
    assert 0.0 < low < 1 / 6 < high < 0.65  # one accept in six clips is anything from ~3% to ~56%
    assert wilson_interval(0, 6)[0] == 0.0 and wilson_interval(0, 6)[1] > 0.3


def test_calibration_error_is_zero_for_calibrated_and_large_for_overconfident():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0, 1, 20000)
    right = rng.uniform(0, 1, 20000) < conf
    ece, bins = calibration_error(conf, right, 15)
    assert ece < 0.02 and len(bins) == 15 and sum(b["weight"] for b in bins) == pytest.approx(1.0)
    assert calibration_error(np.full(1000, 0.99), np.zeros(1000, bool))[0] == pytest.approx(0.99)


def test_operating_point_weights_unknowns_to_a_one_to_one_mix():
    point = operating_point(0.5, np.array([0.9, 0.9, 0.9, 0.1]), np.array([True, True, False, True]),
                            np.array([0.9] + [0.1] * 9))
    assert point.known_accept == pytest.approx(0.5) and point.known_precision == pytest.approx(2 / 3)
    assert point.unknown_accept == pytest.approx(0.1)
    # 1:1 -> tp 0.5, fp 0.25 (known wrong) + 0.1 (unknowns) -> precision 0.5 / 0.85
    assert point.precision == pytest.approx(0.5 / 0.85)


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_fit_decision_rule_separates_known_from_unknown_on_validation_scores():
    """Known queries sit near their sign's references, unknown ones in between: the fitted rule
    accepts most known and at most the target share of unknown queries, on fresh queries too."""
    rng = np.random.default_rng(2)
    centres = _unit(rng.standard_normal((6, DIM)))
    labels = [f"s{i}" for i in range(6)]
    refs = ReferenceSet(_unit(np.repeat(centres, 5, 0) + 0.05 * rng.standard_normal((30, DIM))),
                        np.repeat(labels, 5).tolist())
    base = Settings(_env_file=None, DTW_ENABLED=False, PROTOTYPE_CHECK=False, SIM_MARGIN=0.0)

    def queries(n):
        pick = rng.integers(0, 6, n)
        known = _unit(centres[pick] + 0.12 * rng.standard_normal((n, DIM)))
        unknown = _unit(rng.standard_normal((n, DIM)))  # other signs entirely
        return np.concatenate([known, unknown]), [labels[i] for i in pick] + ["other"] * n

    val_emb, val_truth = queries(300)
    fit = fit_decision_rule(score(Ranker(refs, base), val_emb, None, val_truth), base, target_unknown_accept=0.02)
    values = fit["settings"]
    assert set(values) == {"CONFIDENCE_TEMPERATURE", "MARGIN_WEIGHT", "SIM_THRESHOLD", "UNKNOWN_SCALE",
                           "CATEGORY_SIM_OFFSET", "MIN_CONFIDENCE"}
    assert values["CATEGORY_SIM_OFFSET"].keys() <= {"word"}  # s0..s5 are words; no letter answers to fit
    assert fit["validation"]["unknown_accept"] <= 0.02
    test_emb, test_truth = queries(300)
    metrics = decision_metrics(score(Ranker(refs, base.model_copy(update=values)), test_emb, None, test_truth))
    assert metrics["auroc"] > 0.99 and metrics["known_accept"] > 0.9 and metrics["unknown_accept"] < 0.05
    assert metrics["ece"] < 0.1 and metrics["max_unknown_confidence"] < 0.9


def test_a_category_whose_unknowns_sit_closer_gets_a_higher_threshold():
    """Letters (static handshapes) sit close to each other: an unknown letter is nearer a known
    letter than an unknown word is to a known word. The fitted offset raises the letters' threshold;
    the words' fitted offset is negative and is not applied (never more lenient than the global
    rule); the fitted rule accepts the known queries of both."""
    rng = np.random.default_rng(3)
    centres = _unit(rng.standard_normal((8, DIM)))
    labels = ["a", "b", "c", "d", "w0", "w1", "w2", "w3"]
    refs = ReferenceSet(_unit(np.repeat(centres, 5, 0) + 0.03 * rng.standard_normal((40, DIM))),
                        np.repeat(labels, 5).tolist())
    base = Settings(_env_file=None, DTW_ENABLED=False, PROTOTYPE_CHECK=False, SIM_MARGIN=0.0)
    pick = rng.integers(0, 8, 400)
    known = _unit(centres[pick] + 0.04 * rng.standard_normal((400, DIM)))
    near = np.arange(400) % 4  # unknown letters sit near a known letter, unknown words farther from a word
    unknown_letters = _unit(centres[near] + 0.14 * rng.standard_normal((400, DIM)))
    unknown_words = _unit(centres[4 + near] + 0.30 * rng.standard_normal((400, DIM)))
    emb = np.concatenate([known, unknown_letters, unknown_words])
    truth = [labels[i] for i in pick] + ["z"] * 400 + ["other"] * 400
    fit = fit_decision_rule(score(Ranker(refs, base), emb, None, truth), base, target_unknown_accept=0.05)
    offsets, fitted = fit["settings"]["CATEGORY_SIM_OFFSET"], fit["category_offsets_fitted"]
    assert fitted["letter"] > 0 > fitted["word"], fitted
    assert offsets == {"letter": fitted["letter"]}
    assert fit["validation"]["known_accept"] > 0.9 and fit["validation"]["unknown_accept"] <= 0.05


def test_the_margin_term_is_used_where_unknowns_sit_between_twin_signs():
    """Unknown clips exactly between two twin signs have a cosine as high as a known clip's but no
    margin: searching margin weights, the fit weighs the margin (MARGIN_WEIGHT > 0), and that
    weight's AUROC beats the cosine alone. By default only 0 is searched (MARGIN_WEIGHTS)."""
    rng = np.random.default_rng(4)
    first = _unit(rng.standard_normal((3, DIM)))  # three pairs of twin signs (s0/s1, s2/s3, s4/s5)
    centres = _unit(np.repeat(first, 2, 0) + 0.25 * _unit(rng.standard_normal((6, DIM))))
    labels = [f"s{i}" for i in range(6)]
    refs = ReferenceSet(_unit(np.repeat(centres, 5, 0) + 0.01 * rng.standard_normal((30, DIM))),
                        np.repeat(labels, 5).tolist())
    base = Settings(_env_file=None, DTW_ENABLED=False, PROTOTYPE_CHECK=False, SIM_MARGIN=0.0)
    pick = rng.integers(0, 6, 300)
    known = _unit(centres[pick] + 0.04 * rng.standard_normal((300, DIM)))
    pairs = rng.integers(0, 3, 300) * 2  # halfway between s0/s1, s2/s3 or s4/s5
    between = _unit(centres[pairs] + centres[pairs + 1] + 0.02 * rng.standard_normal((300, DIM)))
    fit = fit_decision_rule(score(Ranker(refs, base), np.concatenate([known, between]), None,
                                  [labels[i] for i in pick] + ["other"] * 300), base, margin_weights=(0.0, 0.5, 1.0, 2.0))
    assert fit_decision_rule(score(Ranker(refs, base), np.concatenate([known, between]), None,
                                   [labels[i] for i in pick] + ["other"] * 300), base)["settings"]["MARGIN_WEIGHT"] == 0.0
    by_weight = {c["MARGIN_WEIGHT"]: c["auroc"] for c in fit["candidates"]}
    assert fit["settings"]["MARGIN_WEIGHT"] > 0 and by_weight[fit["settings"]["MARGIN_WEIGHT"]] > by_weight[0.0] + 0.01


@pytest.fixture(scope="module")
def fixture_eval(tmp_path_factory):
    fx = build_fixture_bundle(tmp_path_factory.mktemp("bundle"))
    return Evaluation.from_bundle(fx.directory)


def test_openset_on_real_sample_clips_reports_every_metric(fixture_eval):
    ev = fixture_eval
    clips = load_clips(SAMPLE_DATASET / "signs_sample.npz", ev.feature_config)
    unknown_labels = ["hello", "thank-you"]
    refs_mask = ~np.isin(ev.references.labels, unknown_labels)
    refs = ReferenceSet(ev.references.embeddings[refs_mask], np.asarray(ev.references.labels)[refs_mask].tolist(),
                        features=[f for f, keep in zip(ev.references.features, refs_mask, strict=True) if keep])
    known = clips.subset(np.flatnonzero(~np.isin(clips.labels, unknown_labels)))
    unknown = clips.subset(np.flatnonzero(np.isin(clips.labels, unknown_labels)))
    metrics, scored = ev.openset(known, unknown, references=refs)
    for key in ("auroc", "fpr_at_95_tpr", "known_accept", "known_precision", "precision", "unknown_accept", "ece"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["n_unknown"] == len(unknown) and metrics["unknown_groups"]["unknown_labels"]["n"] == len(unknown)
    assert len(scored) == len(known) + len(unknown)
    with pytest.raises(ValueError, match="labels the references have"):
        ev.openset(known, known.subset(np.arange(3)), references=refs)  # a "known" label passed as unknown
