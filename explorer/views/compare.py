"""Compare: two bundles on the same clips, side by side."""

from __future__ import annotations

import streamlit as st

from explorer import compare, data, plots, ui

st.title("Compare bundles")
bundle, evaluation = ui.load()
bundle_dir, data_path = ui.current_paths()
st.text_input("Bundle B (A is the sidebar's bundle)", key="compare_dir", placeholder="e.g. artifacts/models-calibrated")
other = (st.session_state.get("compare_dir") or "").strip()
if not other:
    st.info("Give a second bundle folder to compare with A on these clips.")
    st.stop()
try:
    bundle_b = data.cached_bundle(other)
    records_b = ui.evaluation_for(other, data_path).records
except data.ExplorerError as exc:
    st.error(f"Bundle B: {exc}")
    st.stop()
a = evaluation.records
b = records_b.loc[a.index]  # the same clips (the sidebar's selection, decided with A's references)
st.caption(f"A: `{bundle.directory}` ({bundle.bundle.model_name}); B: `{bundle_b.directory}` "
           f"({bundle_b.bundle.model_name}); {len(a)} clips of `{data_path}`.")

st.subheader("Metrics")
deltas = compare.metric_deltas(a, b)
cols = st.columns(len(deltas))
for col, row in zip(cols, deltas.itertuples(index=False), strict=True):
    col.metric(f"{row.metric} (B)", f"{row.B:.4f}", delta=f"{row._3:+.4f}")
st.dataframe(deltas.round(4), hide_index=True, key="cmp_metrics")

fixed, introduced = compare.changed_clips(a, b)
left, right = st.columns(2)
with left:
    st.subheader(f"Fixed by B: {len(fixed)}")
    st.dataframe(fixed.round(4), hide_index=True, key="cmp_fixed")
with right:
    st.subheader(f"Introduced by B: {len(introduced)}")
    st.dataframe(introduced.round(4), hide_index=True, key="cmp_introduced")

st.subheader("Per sign")
per_sign = compare.per_sign_deltas(a, b)
st.plotly_chart(plots.per_sign_delta(per_sign), key="cmp_per_sign")
st.dataframe(per_sign.round(4), hide_index=True, key="cmp_per_sign_table")
st.download_button("Download the per-sign deltas (CSV)", per_sign.to_csv(index=False), file_name="per_sign_deltas.csv",
                   mime="text/csv", key="cmp_download")
