"""How the demo words and tabulates a recognition result (no server needed)."""

from __future__ import annotations

import html

from demo.ui import views
from signseek.ranker import Reason


def _result(**overrides) -> dict:
    """An InferenceResponse-shaped dict, as demo.api.service.result_to_response writes it."""
    result = {
        "label": "hello", "confidence": 0.81, "accepted": True, "rejection_reason": "none",
        "top_k": 2,
        "results": [
            {"label": "hello", "sentence": "hello", "category": "word", "similarity": 0.9123, "confidence": 0.81,
             "raw_similarity": 0.95, "proto_similarity": 0.9, "prototype_similarity": 0.9, "dtw_distance": 0.25,
             "dtw_score": 0.78},
            {"label": "thank-you", "sentence": "thank-you", "category": "word", "similarity": 0.9051,
             "confidence": 0.19, "raw_similarity": 0.93, "proto_similarity": 0.92, "prototype_similarity": 0.92,
             "dtw_distance": 0.31, "dtw_score": 0.73},
        ],
        "motion": 0.05, "model": "encoder", "timings_ms": {"prepare": 1.0}, "model_version": "m@1",
        "diagnostics": {"margin": 0.0072, "prototype_label": "thank-you", "idle_similarity": 0.4,
                        "hand_frames": 18, "n_frames": 20, "kept": [0, 20]},
    }
    result.update(overrides)
    return result


def _text(markup: str) -> str:
    return html.unescape(markup)


def test_every_result_shape_is_read_the_same_way():
    new = views.read_result(_result())
    old_list = views.read_result({**_result(), "top_k": _result()["results"], "results": None})
    engine = views.read_result({**_result(), "results": None, "top_k": None, "candidates": _result()["results"]})
    for read in (new, old_list, engine):
        assert [c["label"] for c in read["candidates"]] == ["hello", "thank-you"]
        assert read["candidates"][1]["prototype_similarity"] == 0.92
    assert new["margin"] == 0.0072 and new["hand_frames"] == 18


def test_accepted_banner_names_the_sign_its_confidence_and_the_runner_up():
    banner = _text(views.banner_markdown(_result(), {"SIM_THRESHOLD": 0.55}, source="clip.mp4"))
    assert "Recognised: <b>hello</b>" in banner and "confidence 81%" in banner and "clip.mp4" in banner
    assert "ahead of 'thank-you' by 0.007" in banner
    assert views.LEGEND["confidence"] in banner  # the tooltip says what the number is


def test_rejections_use_the_reason_list_and_add_the_numbers():
    ambiguous = _result(label=None, accepted=False, rejection_reason="ambiguous_margin")
    kind, head, detail = views.verdict(ambiguous, {"SIM_MARGIN": 0.03})
    assert (kind, head) == ("unsure", "Not sure")
    assert detail.startswith(Reason.AMBIGUOUS.explain)
    assert "'hello' and 'thank-you' are too close (0.91 vs 0.91, a margin of 0.007; at least 0.03 is needed)" in detail

    unknown = _result(label=None, accepted=False, rejection_reason="unknown_sign")
    kind, head, detail = views.verdict(unknown, {"SIM_THRESHOLD": 0.95})
    assert head == "Not a sign it knows" and detail.startswith(Reason.UNKNOWN_SIGN.explain)
    assert "'hello' is 0.91 similar; at least 0.95 is needed" in detail
    # The decision rule with an unknown-score: P(a known sign) and the confidence needed.
    calibrated = {**unknown, "confidence": 0.12, "diagnostics": {**unknown["diagnostics"], "p_known": 0.2}}
    detail = views.explain_rejection(calibrated, {"MIN_CONFIDENCE": 0.5})
    assert "'hello' (cosine 0.95) makes it 20% likely to be a known sign; confidence 12%, at least 50% is needed" \
        in detail

    proto = views.explain_rejection(_result(accepted=False, rejection_reason="prototype_disagreement"))
    assert "nearest clips say 'hello'" in proto and "closest to 'thank-you'" in proto


def test_resting_with_hands_in_view_says_why():
    idle = _result(label=None, accepted=False, rejection_reason="idle")
    kind, head, detail = views.verdict(idle)
    assert (kind, head) == ("none", "No sign")
    assert detail.startswith(Reason.IDLE.explain)
    assert "Hands were seen in 18 of 20 frames" in detail and "resting (no sign) clips at 0.40" in detail
    no_hands = views.banner_markdown(_result(label=None, accepted=False, rejection_reason="no_hands", results=[],
                                             diagnostics={"hand_frames": 0, "n_frames": 20}))
    assert "No sign" in no_hands and "of 20 frames" in no_hands and "hands in view" in no_hands


def test_unknown_reason_code_is_shown_readably_not_dropped():
    assert views.explain_rejection({"rejection_reason": "new_gate_x"}) == "new gate x"


def test_a_confidence_is_shown_for_rejected_answers_only_when_the_engine_gives_one():
    rejected = _result(label=None, accepted=False, rejection_reason="ambiguous_margin")
    assert "confidence 40%" in views.banner_markdown({**rejected, "confidence": 0.4})
    assert "confidence" not in views.banner_markdown({**rejected, "confidence": 0.0}).split("ss-why")[0]


def test_examples_say_what_they_should_give_and_whether_they_did():
    ok = _text(views.banner_markdown({**_result(), "expected": "hello"}))
    assert "Should give: <b>'hello'</b>" in ok and "as expected" in ok
    wrong = _text(views.banner_markdown({**_result(), "expected": "reject"}))
    assert "rejected (not a sign it knows)" in wrong and "not what it should give" in wrong
    resting = _text(views.banner_markdown({**_result(label=None, accepted=False, rejection_reason="idle"),
                                           "expected": "-"}))
    assert "no sign (resting)" in resting and "as expected" in resting


def test_explained_table_has_a_tooltip_for_every_number_and_a_compact_view():
    table = _text(views.ranked_html(_result(), {"SIM_THRESHOLD": 0.55}))
    assert table.count("<tr") == 3 and "hello" in table and "0.91" in table
    for name in ("similarity", "raw similarity", "prototype similarity", "DTW distance"):
        assert f"title='{views.LEGEND[name]}'" in table
    assert "threshold 0.55 (cosine)" in table and "margin 0.007" in table
    assert "ss-wide" in table  # the columns a 390 px screen hides
    assert "No candidates" in views.ranked_html(None)


def test_all_scores_table_has_every_diagnostic_best_first():
    table = views.ranked_table(_result())
    assert list(table.columns) == views.RANKED_COLUMNS
    assert table["sign"].tolist() == ["hello", "thank-you"]
    assert table.loc[0, "similarity"] == 0.912 and table.loc[1, "DTW distance"] == 0.31
    assert table.loc[1, "prototype similarity"] == 0.92
    assert views.ranked_table(None).empty


def test_chart_has_a_bar_per_candidate_and_the_threshold():
    fig = views.candidates_figure(_result(), {"SIM_THRESHOLD": 0.55})
    bars = fig.data[0]
    assert list(bars.y) == ["thank-you", "hello"]  # best at the top of a horizontal bar chart
    assert any(shape.x0 == 0.55 for shape in fig.layout.shapes)
    # The threshold is named in the legend, not by a label drawn over the bars.
    assert "threshold 0.55 (cosine)" in [trace.name for trace in fig.data] and not fig.layout.annotations
    assert "similarity" in fig.layout.xaxis.title.text
    assert views.candidates_figure(None, {"SIM_THRESHOLD": 0.55}) is None  # nothing compared: no empty axes


def test_a_sign_dtw_did_not_recheck_says_so():
    result = _result()
    result["results"][1]["dtw_distance"] = None
    table = _text(views.ranked_html(result, {"SIM_THRESHOLD": 0.55}))
    assert "?" not in table and f"title='{views.NOT_RECHECKED}'>–</td>" in table


def test_timings_add_up_to_a_total():
    table = views.timings_table({"landmarks": 100.04, "engine: embed": 2.0})
    assert table["stage"].tolist() == ["landmarks", "engine: embed", "total"]
    assert table["ms"].tolist()[-1] == 102.0
