"""Calibration: pick SIM_THRESHOLD and SIM_MARGIN for a target precision; save them to a bundle or a .env."""

from __future__ import annotations

import streamlit as st

from explorer import data, plots, ui

st.title("Calibration")
bundle, evaluation = ui.load()
records = evaluation.records
proto_check = bool(bundle.thresholds["PROTOTYPE_CHECK"])
searched = records[records["top1_sim"].notna()]
if searched.empty:
    st.warning("No clip of this dataset reached the search (all stopped by the input gates).")
    st.stop()

st.subheader("Top-1 similarity and margin, right vs wrong top-1")
left, right = st.columns(2)
left.plotly_chart(plots.outcome_histogram(searched, "top1_sim", bundle.thresholds["SIM_THRESHOLD"]),
                  key="cal_sim_hist")
right.plotly_chart(plots.outcome_histogram(searched, "margin", bundle.thresholds["SIM_MARGIN"]),
                   key="cal_margin_hist")

st.subheader("Choose thresholds")
target = st.slider("Target precision of accepted answers", 0.5, 1.0, 0.95, 0.01, key="cal_target")
suggestion = data.cached_suggestion(*ui.current_paths(), ui.current_clips(), target, proto_check)
if suggestion is None:
    st.warning(f"No thresholds reach {target:.0%} precision on this dataset; the fields keep the bundle's values.")
    suggestion = {"SIM_THRESHOLD": float(bundle.thresholds["SIM_THRESHOLD"]),
                  "SIM_MARGIN": float(bundle.thresholds["SIM_MARGIN"])}
else:
    st.info(f"Suggested for {target:.0%}: SIM_THRESHOLD={suggestion['SIM_THRESHOLD']}, "
            f"SIM_MARGIN={suggestion['SIM_MARGIN']} (accepts {suggestion['acceptance']:.1%}, "
            f"precision {suggestion['precision']:.1%}).")
# The fields follow the suggestion until the user edits them (a new target re-suggests).
if st.session_state.get("cal_for_target") != (target, suggestion["SIM_THRESHOLD"], suggestion["SIM_MARGIN"]):
    st.session_state["cal_for_target"] = (target, suggestion["SIM_THRESHOLD"], suggestion["SIM_MARGIN"])
    st.session_state["cal_threshold"] = float(suggestion["SIM_THRESHOLD"])
    st.session_state["cal_margin"] = float(suggestion["SIM_MARGIN"])
left, right = st.columns(2)
threshold = left.number_input("SIM_THRESHOLD", -1.0, 1.0, step=0.005, format="%.4f", key="cal_threshold")
margin = right.number_input("SIM_MARGIN", 0.0, 2.0, step=0.005, format="%.4f", key="cal_margin")

chosen = data.gate_summary(records, data.regate(records, threshold, margin, proto_check))
current = data.gate_summary(records, records["accepted"].to_numpy())
cols = st.columns(4)
cols[0].metric("Acceptance (chosen)", f"{chosen['acceptance']:.4f}",
               delta=f"{chosen['acceptance'] - current['acceptance']:+.4f}")
cols[1].metric("Precision (chosen)", f"{chosen['precision']:.4f}")
cols[2].metric("Acceptance (bundle now)", f"{current['acceptance']:.4f}")
cols[3].metric("Precision (bundle now)", f"{current['precision']:.4f}")
curve = data.threshold_curve(records, margin, proto_check)
st.plotly_chart(plots.acceptance_curve(curve, (chosen["acceptance"], chosen["precision"])), key="cal_curve")

st.subheader("Use them")
values = {"SIM_THRESHOLD": round(float(threshold), 4), "SIM_MARGIN": round(float(margin), 4)}
st.download_button("Download as .env", data.env_text(values), file_name="signseek-thresholds.env",
                   mime="text/plain", key="cal_env")
st.caption("Environment variables win over the bundle's values; the bundle's win over the defaults.")
default_out = str(data.default_calibrated_dir(bundle.directory))
out_dir = st.text_input("Write a calibrated copy of the bundle to", value=default_out, key="cal_out")
in_place = st.checkbox("Instead, change this bundle in place (re-signs its manifest)", key="cal_in_place")
if st.button("Write thresholds into model_config.json", key="cal_write"):
    try:
        written = data.write_thresholds(bundle.directory, values, None if in_place else out_dir)
    except data.ExplorerError as exc:
        st.error(str(exc))
    else:
        st.success(f"Wrote {values} into {written / 'model_config.json'} and re-signed its manifest.")
