"""Calibration: choose the decision rule's parameters for a target precision; save them to a bundle
or a .env. What is written is exactly what the fields show, and only inside the range the data showed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer import backend, data, plots, ui

st.title("Calibration")
bundle, evaluation = ui.load()
records = evaluation.records
proto_check = bool(bundle.thresholds.get("PROTOTYPE_CHECK", True))
decided = records[records["score"].notna() & ~records["rejection_reason"].isin(data.INPUT_REASONS)]
if decided.empty:
    st.warning("No clip of this selection reached a decision (all stopped by the input gates: no hands, or no "
               "motion), so there is nothing to calibrate on.")
    st.stop()
models = sorted(decided["model"].unique(), key=lambda m: (m != "encoder", m))
model = st.radio("Answers of", models, horizontal=True, key="cal_model",
                 help="encoder: clips with a body (similarity and margin gates); a classifier's name: hands-only "
                      "clips (its confidence gate).") if len(models) > 1 else models[0]
searched = decided[decided["model"] == model]
names = backend.rule_parameters(model)
score_name = backend.score_parameter(model)
ranges = {name: data.observed_range(searched, backend.PARAMETER_COLUMNS[name]) for name in names}
ranges = {name: r for name, r in ranges.items() if r is not None}
if backend.MARGIN_PARAMETER in ranges:  # a margin of 0 (no margin gate) is always a choice
    ranges[backend.MARGIN_PARAMETER] = (0.0, ranges[backend.MARGIN_PARAMETER][1])
in_force = {name: float(bundle.thresholds[name]) for name in names}

st.subheader("Score and margin, right vs wrong top-1" if model == "encoder" else "Confidence, right vs wrong top-1")
left, right = st.columns(2)
left.plotly_chart(plots.outcome_histogram(searched, "score", in_force[score_name],
                                          f"score ({score_name} compares with it)"), key="cal_sim_hist")
if model == "encoder":
    right.plotly_chart(plots.outcome_histogram(searched, "margin", in_force[backend.MARGIN_PARAMETER],
                                               f"margin ({backend.MARGIN_PARAMETER})"), key="cal_margin_hist")

st.subheader("Choose the parameters")
target = st.slider("Target precision of accepted answers", 0.5, 1.0, 0.95, 0.01, key="cal_target")
suggestion = data.cached_suggestion(*ui.current_paths(), ui.current_selection().key(), searched, target, in_force,
                                    model, proto_check)
if suggestion is None:
    st.warning(f"No parameters reach {target:.0%} precision on these clips; the fields start at the values in force.")
    suggested = dict(in_force)
else:
    suggested = {name: suggestion[name] for name in names}
    st.info("Suggested for {:.0%}: {} (accepts {:.1%}, precision {:.1%}).".format(
        target, ", ".join(f"{k}={v}" for k, v in suggested.items()), suggestion["acceptance"], suggestion["precision"]))

# The fields' values live in "cal_values" (not in the widgets' own state, which Streamlit drops
# when another page is shown): a second visit shows, and writes, the same values as the first.
# A new target re-suggests; an edit is kept until then.
if st.session_state.get("cal_for") != (model, target, tuple(suggested.items())):
    st.session_state["cal_for"] = (model, target, tuple(suggested.items()))
    st.session_state["cal_values"] = {name: round(float(v), 4) for name, v in suggested.items()}
values: dict = st.session_state["cal_values"]


def _edited(name: str, key: str) -> None:
    st.session_state["cal_values"][name] = round(float(st.session_state[key]), 4)


fields = st.columns(len(names))
widget_keys = {backend.SCORE_PARAMETER: "cal_threshold", backend.MARGIN_PARAMETER: "cal_margin",
               backend.CLASSIFIER_PARAMETER: "cal_classifier"}
for column, name in zip(fields, names, strict=True):
    key = widget_keys.get(name, f"cal_{name}")
    lo, hi = ranges.get(name, (-1.0, 1.0))
    st.session_state[key] = float(values[name])
    column.number_input(f"{name} (seen {lo:.4f} to {hi:.4f})", step=0.005, format="%.4f", key=key,
                        on_change=_edited, args=(name, key))
    values[name] = round(float(st.session_state[key]), 4)

chosen = data.gate_summary(searched, backend.regate(searched, values, proto_check, model))
current = data.gate_summary(searched, searched["accepted"].to_numpy())
cols = st.columns(4)
cols[0].metric("Acceptance (chosen)", f"{chosen['acceptance']:.4f}",
               delta=f"{chosen['acceptance'] - current['acceptance']:+.4f}")
cols[1].metric("Precision (chosen)", f"{chosen['precision']:.4f}")
cols[2].metric("Acceptance (bundle now)", f"{current['acceptance']:.4f}")
cols[3].metric("Precision (bundle now)", f"{current['precision']:.4f}")
curve = data.threshold_curve(searched, values, model=model, prototype_check=proto_check)
st.plotly_chart(plots.acceptance_curve(curve, (chosen["acceptance"], chosen["precision"])), key="cal_curve")

st.subheader("Use them")
st.markdown("These exact values are what the buttons write:")
st.dataframe(pd.DataFrame({"parameter": list(values), "value": [f"{v:.4f}" for v in values.values()],
                           "in force now": [f"{in_force[n]:.4f}" for n in values]}),
             hide_index=True, key="cal_to_write")
problem = ""
try:
    data.check_parameters(values, names, ranges)
except data.ExplorerError as exc:
    problem = str(exc).replace("nothing was written", "these cannot be written")
    st.warning(problem)
st.download_button("Download as .env", data.env_text(values), file_name="signseek-thresholds.env",
                   mime="text/plain", key="cal_env", disabled=bool(problem))
st.caption("Environment variables win over the bundle's values; the bundle's win over the defaults.")
default_out = str(data.default_calibrated_dir(bundle.directory))
out_dir = st.text_input("Write a calibrated copy of the bundle to", value=default_out, key="cal_out")
in_place = st.checkbox("Instead, change this bundle in place (re-signs its manifest)", key="cal_in_place")
if st.button("Write into model_config.json", key="cal_write", disabled=bool(problem)):
    try:
        written = data.write_thresholds(bundle.directory, dict(values), None if in_place else out_dir, names, ranges)
    except data.ExplorerError as exc:
        st.error(str(exc))
    else:
        st.success(f"Wrote {dict(values)} into {written / 'model_config.json'} and re-signed its manifest.")
