"""How the demo words and tabulates a recognition result (no server needed)."""

from __future__ import annotations

from demo.ui import views


def _result(**overrides) -> dict:
    """An InferenceResponse-shaped dict, as demo.api.service.result_to_response writes it."""
    result = {
        "label": "hello", "confidence": 0.81, "accepted": True, "rejection_reason": "none",
        "top_k": [
            {"label": "hello", "category": "word", "similarity": 0.9123, "confidence": 0.81,
             "raw_similarity": 0.95, "prototype_similarity": 0.9, "dtw_distance": 0.25, "dtw_score": 0.78},
            {"label": "thank-you", "category": "word", "similarity": 0.9051, "confidence": 0.19,
             "raw_similarity": 0.93, "prototype_similarity": 0.92, "dtw_distance": 0.31, "dtw_score": 0.73},
        ],
        "motion": 0.05, "model": "encoder", "timings_ms": {"prepare": 1.0}, "model_version": "m@1",
    }
    result.update(overrides)
    return result


def test_accepted_banner_names_the_sign_and_its_confidence():
    banner = views.banner_markdown(_result(), {"SIM_THRESHOLD": 0.55}, source="clip.mp4")
    assert "Recognised" in banner and "<b>hello</b>" in banner and "81%" in banner and "clip.mp4" in banner


def test_ambiguous_margin_is_explained_with_both_signs():
    banner = views.banner_markdown(_result(label=None, accepted=False, rejection_reason="ambiguous_margin"))
    assert "Not sure" in banner
    assert "&#x27;hello&#x27; and &#x27;thank-you&#x27; are too close" in banner


def test_unknown_sign_quotes_the_threshold_in_force():
    text = views.explain_rejection(_result(accepted=False, rejection_reason="unknown_sign"),
                                   {"SIM_THRESHOLD": 0.7})
    assert text == "the best match 'hello' is only 0.91 similar; at least 0.7 is needed"


def test_prototype_disagreement_names_the_prototypes_choice():
    text = views.explain_rejection(_result(accepted=False, rejection_reason="prototype_disagreement"))
    assert "'hello'" in text and "'thank-you'" in text  # thank-you has the higher prototype similarity


def test_no_hands_is_no_sign_with_advice():
    banner = views.banner_markdown(_result(label=None, accepted=False, rejection_reason="no_hands", top_k=[]))
    assert "No sign" in banner and "hands in view" in banner


def test_unknown_reason_code_is_shown_readably_not_dropped():
    assert views.explain_rejection({"rejection_reason": "new_gate_x"}) == "new gate x"


def test_ranked_table_has_every_diagnostic_best_first():
    table = views.ranked_table(_result())
    assert list(table.columns) == views.RANKED_COLUMNS
    assert table["sign"].tolist() == ["hello", "thank-you"]
    assert table.loc[0, "similarity"] == 0.912 and table.loc[1, "DTW distance"] == 0.31
    assert views.ranked_table(None).empty


def test_chart_has_a_bar_per_candidate_and_the_threshold():
    fig = views.candidates_figure(_result(), {"SIM_THRESHOLD": 0.55})
    bars = fig.data[0]
    assert list(bars.y) == ["thank-you", "hello"]  # best at the top of a horizontal bar chart
    assert any(shape.x0 == 0.55 for shape in fig.layout.shapes)


def test_timings_add_up_to_a_total():
    table = views.timings_table({"landmarks": 100.04, "engine: embed": 2.0})
    assert table["stage"].tolist() == ["landmarks", "engine: embed", "total"]
    assert table["ms"].tolist()[-1] == 102.0
