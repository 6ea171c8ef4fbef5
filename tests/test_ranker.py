"""The decision rule (signseek.ranker): pure numpy on hand-made embeddings, no encoder.

Three signs, each a tight cluster of reference embeddings around its own direction; queries are
placed at chosen cosines, so every reason and every probability can be checked exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from signseek.engine.search import ReferenceSet
from signseek.ranker import REASONS, Ranker, Reason, sigmoid, softmax
from signseek.settings import Settings

DIM = 16


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def axis(i, dim=DIM):
    e = np.zeros(dim, np.float32)
    e[i] = 1.0
    return e


def toward(i, cos, other=DIM - 1):
    """A unit vector at cosine ``cos`` to axis i (the rest of it along an unused axis)."""
    return unit(cos * axis(i) + np.sqrt(max(0.0, 1 - cos**2)) * axis(other))


@pytest.fixture
def references():
    rng = np.random.default_rng(0)
    embeddings, labels = [], []
    for i, label in enumerate(("hello", "thanks", "-")):
        for _ in range(4):
            embeddings.append(unit(axis(i) + 0.01 * rng.standard_normal(DIM)))
            labels.append(label)
    return ReferenceSet(np.stack(embeddings), labels)


def ranker(references, **values):
    base = {"SIM_THRESHOLD": 0.8, "UNKNOWN_SCALE": 0.02, "MIN_CONFIDENCE": 0.6, "CONFIDENCE_TEMPERATURE": 0.05,
            "SIM_MARGIN": 0.0, "PROTOTYPE_CHECK": False, "DTW_ENABLED": False}
    return Ranker(references, Settings(_env_file=None, **{**base, **values}), idle_labels=("-",))


def test_reasons_are_one_enum_with_plain_words():
    assert REASONS == tuple(r.value for r in Reason) and "none" in REASONS
    assert all(r.explain for r in Reason)
    assert Reason("unknown_sign") is Reason.UNKNOWN_SIGN and Reason.NONE == "none"
    assert Reason.NO_HANDS.is_input_gate and not Reason.UNKNOWN_SIGN.is_input_gate


def test_a_close_query_is_accepted_with_a_calibrated_confidence(references):
    r = ranker(references)
    ranking = r.rank(toward(0, 0.97))
    decision = r.decide(ranking)
    assert ranking.labels[0] == "hello" and decision.accepted and decision.reason is Reason.NONE
    expected_known = sigmoid((ranking.cosine[0] - 0.8) / 0.02)
    assert decision.p_known == pytest.approx(expected_known)
    share = softmax(ranking.refined, 0.05)[0]
    assert decision.confidence == pytest.approx(expected_known * share)
    assert np.isclose(decision.probabilities.sum(), decision.p_known)


def test_a_category_offset_moves_the_threshold_for_that_category_only(references):
    """CATEGORY_SIM_OFFSET raises the bar for one category: the same cosine is known for a word
    and unknown for a sign of the raised category."""
    query = toward(0, 0.83)
    plain = ranker(references)
    as_word = ranker(references, CATEGORY_SIM_OFFSET={"letter": 0.05})
    raised = Ranker(references, as_word.settings, idle_labels=("-",), categories={"hello": "letter"})
    assert plain.decide(plain.rank(query)).accepted and as_word.decide(as_word.rank(query)).accepted
    decision = raised.decide(raised.rank(query))
    assert not decision.accepted and decision.reason is Reason.UNKNOWN_SIGN
    assert decision.p_known == pytest.approx(sigmoid((raised.rank(query).cosine[0] - 0.85) / 0.02))


def test_a_loose_enrolled_sign_gets_no_density_bonus(references):
    """The density offset discounts tight signs; a sign enrolled from 3 clips that sit far apart
    (a hesitant take, two signs under one name) is not boosted, so it cannot steal the query of a
    shipped sign it is only loosely near."""
    loose = ReferenceSet(np.stack([toward(0, 0.9, other=3), unit(axis(4)), unit(axis(5))]), ["loose"] * 3)
    r = ranker(references.concat(loose), DENSITY_WEIGHT=1.0)
    ranking = r.rank(toward(0, 0.97))
    assert ranking.labels[0] == "hello"
    assert ranking.density_offset.min() >= 0.0
    assert r.density["loose"] < r.median_density  # loose indeed: before the fix this earned a bonus


def test_a_sign_with_fewer_references_gains_by_count_not_by_looseness(references):
    """FEW_REFS_WEIGHT x ln(median count / count): one clip of a new sign a little farther from the
    query (cosine 0.703) than a 4-clip sign (0.711) wins only with the bonus; the bonus depends on
    the count alone, not on how loose the clips are."""
    new = ReferenceSet(toward(3, 1.0)[None], ["new"])
    query = unit(0.96 * axis(0) + 0.95 * axis(3))
    plain = ranker(references.concat(new))
    bonus = ranker(references.concat(new), FEW_REFS_WEIGHT=0.02)
    assert plain.rank(query).labels[0] == "hello"
    ranking = bonus.rank(query)
    assert ranking.labels[0] == "new"
    assert bonus.few_refs == {"new": pytest.approx(np.log(4.0))}  # every other sign has 4 references


def test_a_far_query_is_an_unknown_sign_and_never_shows_high_confidence(references):
    r = ranker(references)
    decision = r.decide(r.rank(toward(0, 0.6)))
    assert not decision.accepted and decision.reason is Reason.UNKNOWN_SIGN
    assert decision.confidence < 0.01 and decision.p_known < 0.01


def test_between_two_signs_is_ambiguous_not_unknown(references):
    r = ranker(references)
    query = unit(axis(0) + axis(1))  # cosine ~0.707 to both: known-looking only with a low threshold
    decision = ranker(references, SIM_THRESHOLD=0.5).decide(ranker(references, SIM_THRESHOLD=0.5).rank(query))
    assert not decision.accepted and decision.reason is Reason.AMBIGUOUS
    assert r.decide(r.rank(query)).reason is Reason.UNKNOWN_SIGN  # with the stricter threshold


def test_idle_on_top_is_idle(references):
    r = ranker(references)
    decision = r.decide(r.rank(toward(2, 0.99)))
    assert decision.reason is Reason.IDLE and decision.label is None


def test_accepted_answers_always_outrank_rejected_ones_in_confidence(references):
    """One number decides: no accepted answer shows less confidence than a rejected one."""
    r = ranker(references)
    decisions = [r.decide(r.rank(toward(i, c))) for i in (0, 1) for c in np.linspace(0.5, 1.0, 26)]
    accepted = [d.confidence for d in decisions if d.accepted]
    rejected = [d.confidence for d in decisions if d.reason in (Reason.UNKNOWN_SIGN, Reason.AMBIGUOUS)]
    assert accepted and rejected and min(accepted) >= max(rejected)


def test_margin_weight_raises_a_clear_winner_and_lowers_a_crowded_one(references):
    clear, crowded = toward(0, 0.85), unit(0.85 * axis(0) + 0.5 * axis(1))
    plain = ranker(references)
    weighted = ranker(references, MARGIN_WEIGHT=1.0)
    for query in (clear, crowded):
        a, b = plain.rank(query), weighted.rank(query)
        score_plain, margin = plain.unknown_score(a)
        score_weighted, _ = weighted.unknown_score(b)
        assert score_weighted == pytest.approx(score_plain + margin)
    assert weighted.unknown_score(weighted.rank(clear))[1] > weighted.unknown_score(weighted.rank(crowded))[1]


def test_an_enrolled_sign_with_one_clip_follows_the_same_rule(references):
    new = references.concat(ReferenceSet(toward(3, 1.0)[None], ["akwaaba"]))
    r = ranker(new)
    decision = r.decide(r.rank(toward(3, 0.97)))
    assert decision.accepted and r.rank(toward(3, 0.97)).labels[0] == "akwaaba"
    assert r.decide(r.rank(toward(3, 0.6))).reason is Reason.UNKNOWN_SIGN


def test_precomputed_dtw_distances_blend_into_the_order(references):
    feats = [np.zeros((8, 4), np.float32)] * len(references)
    refs = ReferenceSet(references.embeddings, references.labels, features=feats)
    r = ranker(refs, DTW_ENABLED=True, DTW_WEIGHT=0.5, DTW_SCALE=0.25, DTW_TOP_N=3)
    query = unit(axis(0) + 0.9 * axis(1))  # cosine prefers hello
    distances = np.full(len(refs), 1.0)
    distances[[i for i, label in enumerate(refs.labels) if label == "thanks"]] = 0.0  # DTW prefers thanks
    ranking = r.rank(query, dtw_distances=distances)
    assert ranking.labels[0] == "thanks" and ranking.cosine[0] < ranking.cosine[1]
    assert np.isnan(ranking.dtw_distance).sum() == 0 and ranking.dtw_score[0] == pytest.approx(1.0)
