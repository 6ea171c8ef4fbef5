"""Calibration: choose the decision rule's parameters for a target precision; save them to a bundle
or a .env. The clips are decided again by the engine's own Ranker (no copy of the rule); what is
written is exactly the table the page shows, and a threshold outside the range the data showed is
refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer import backend, data, plots, ui

st.title("Calibration")
bundle, evaluation = ui.load()
bundle_dir, data_path = ui.current_paths()
records = evaluation.records
decided = records[records["score"].notna() & ~records["rejection_reason"].isin(data.INPUT_REASONS)]
if decided.empty:
    st.warning("No clip of this selection reached a decision (all stopped by the input gates: no hands, or no "
               "motion), so there is nothing to calibrate on.")
    st.stop()
models = sorted(decided["model"].unique(), key=lambda m: (m != "encoder", m))
model = st.radio("Answers of", models, horizontal=True, key="cal_model",
                 help="encoder: clips with a body (the Ranker's rule); a classifier's name: hands-only clips (its "
                      "confidence gate).") if len(models) > 1 else models[0]
clips = decided[decided["model"] == model]
names = backend.rule_parameters(model)
accept_name = backend.accept_parameter(model)
in_force = {name: float(bundle.thresholds[name]) for name in names}

if model == "encoder":
    slot, update = ui.progress_bar("Ranking the clips with the engine's Ranker (cached afterwards)...")
    try:
        scored = data.cached_scored(bundle_dir, data_path, clips.index.to_numpy(), update)
    finally:
        slot.empty()
    engine = data.cached_engine(bundle_dir)
    correct = scored.correct
    known = scored.known

    def decide(params: dict) -> tuple[np.ndarray, np.ndarray]:
        return backend.redecide(engine, scored, params)
else:
    correct = (clips["ranked_top1"] == clips["label"]).to_numpy()
    known = clips["known"].to_numpy()

    def decide(params: dict) -> tuple[np.ndarray, np.ndarray]:
        return (backend.regate_classifier(clips, params[accept_name], model),
                clips["confidence"].to_numpy(dtype=np.float64))

# The fields' values live in "cal_values" (not in the widgets' own state, which Streamlit drops when
# another page is shown): a second visit shows, and writes, the same values as the first. A new
# target re-suggests; an edit is kept until then.
st.subheader("Choose the parameters")
target = st.slider("Target precision of accepted answers", 0.5, 1.0, 0.95, 0.01, key="cal_target")
memo_key = (bundle_dir, data_path, data.file_version(data.resolve(bundle_dir)), data.file_version(data.resolve(data_path)),
            model, hash(clips.index.to_numpy().tobytes()))


def curve_for(params: dict) -> pd.DataFrame:
    """Acceptance / precision as the accept threshold sweeps, memoised per parameters."""
    def compute() -> pd.DataFrame:
        _, confidence = decide(params)
        return data.acceptance_curve(decide, params, accept_name, data.sweep_values(confidence), correct)

    return data.memoised(("curve", *memo_key, tuple(sorted((k, v) for k, v in params.items() if k != accept_name))),
                         compute)


# The curve under the values the fields show and write (4 decimals): a suggestion swept under the
# unrounded ones can fall just outside the range the written values give (confidences move with them).
curve_now = curve_for({name: round(value, 4) for name, value in in_force.items()})
suggestion = data.suggest_threshold(curve_now, target)
suggested = dict(in_force)
if suggestion is None:
    st.warning(f"No {accept_name} reaches {target:.0%} precision on these clips; the fields start at the values "
               "in force.")
else:
    suggested[accept_name] = round(float(suggestion["threshold"]), 4)
    st.info(f"Suggested for {target:.0%}: {accept_name}={suggested[accept_name]} (accepts "
            f"{suggestion['acceptance']:.1%}, precision {suggestion['precision']:.1%}), the other parameters as in force.")
if model == "encoder" and known.any() and (~known).any():
    target_false = st.slider("Or fit the whole rule (signseek.evaluation.fit_decision_rule): unknown clips accepted "
                             "at most", 0.0, 0.5, 0.05, 0.01, key="cal_fit_target")
    if st.button("Fit the rule on these clips", key="cal_fit"):
        from signseek.evaluation import fit_decision_rule

        fitted = fit_decision_rule(scored, engine.settings, target_unknown_accept=target_false,
                                   min_known_precision=target)
        st.session_state["cal_values"] = {name: round(float(fitted["settings"].get(name, in_force[name])), 4)
                                          for name in names}
        st.session_state["cal_for"] = (model, target, tuple(suggested.items()))
        st.success(f"Fitted on {fitted['n_known']} known and {fitted['n_unknown']} unknown clips: "
                   f"{fitted['validation']}")
elif model == "encoder":
    st.caption("Fitting the whole rule needs clips of signs the bundle does not know as well: load a file with "
               "some, or see the Open set page.")
if st.session_state.get("cal_for") != (model, target, tuple(suggested.items())):
    st.session_state["cal_for"] = (model, target, tuple(suggested.items()))
    st.session_state["cal_values"] = {name: round(float(v), 4) for name, v in suggested.items()}
values: dict = st.session_state["cal_values"]
if set(values) != set(names):
    values = st.session_state["cal_values"] = {name: round(float(v), 4) for name, v in suggested.items()}


def _edited(name: str, key: str) -> None:
    st.session_state["cal_values"][name] = round(float(st.session_state[key]), 4)


# The ranges the data showed, under the parameters chosen (the confidences move with them).
accepted_now, confidence_now = decide(values)
observed = {"score": clips["score"], "confidence": pd.Series(confidence_now), "margin": clips["margin"]}
ranges = {}
for name in names:
    column = backend.PARAMETER_COLUMNS.get(name)
    if column is not None:
        found = data.observed_range(pd.DataFrame({column: observed[column].to_numpy()}), column)
        if found is not None:
            ranges[name] = (0.0, found[1]) if name == backend.MARGIN_PARAMETER else found

fields = st.columns(3)
for i, name in enumerate(names):
    key = f"cal_{name}"
    st.session_state[key] = float(values[name])
    label = name + (f" (seen {ranges[name][0]:.4f} to {ranges[name][1]:.4f})" if name in ranges else "")
    fields[i % 3].number_input(label, step=0.005, format="%.4f", key=key, on_change=_edited, args=(name, key))
    values[name] = round(float(st.session_state[key]), 4)
accepted_now, confidence_now = decide(values)

st.subheader("Right and wrong answers")
frame = pd.DataFrame({"score": clips["score"].to_numpy(), "confidence": confidence_now, "top1_correct": correct})
left, right = st.columns(2)
if model == "encoder":
    left.plotly_chart(plots.outcome_histogram(frame, "score", values[backend.SCORE_PARAMETER],
                                              f"unknown-score ({backend.SCORE_PARAMETER}: where P(known) = 0.5)"),
                      key="cal_sim_hist")
right.plotly_chart(plots.outcome_histogram(frame, "confidence", values[accept_name],
                                           f"confidence ({accept_name} accepts at it)"), key="cal_conf_hist")

chosen = data.acceptance_summary(accepted_now, correct)
current = data.acceptance_summary(clips["accepted"].to_numpy(), correct)
cols = st.columns(4)
cols[0].metric("Acceptance (chosen)", f"{chosen['acceptance']:.4f}",
               delta=f"{chosen['acceptance'] - current['acceptance']:+.4f}")
cols[1].metric("Precision (chosen)", f"{chosen['precision']:.4f}")
cols[2].metric("Acceptance (bundle now)", f"{current['acceptance']:.4f}")
cols[3].metric("Precision (bundle now)", f"{current['precision']:.4f}")
curve = curve_for(values)
st.plotly_chart(plots.acceptance_curve(curve, (chosen["acceptance"], chosen["precision"])), key="cal_curve")
st.caption(f"{accept_name} swept over the observed confidences, the other parameters as chosen; every point is the "
           "engine's own decision (signseek.ranker.Ranker.decide) on these clips' rankings." if model == "encoder"
           else f"{accept_name} swept over the observed confidences of the {model} classifier's answers.")

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
