"""Confusion: which signs are taken for which; readable at 33+ labels; click a cell to see its clips."""

from __future__ import annotations

import streamlit as st

from explorer import data, plots, ui

st.title("Confusion")
bundle, evaluation = ui.load()
records = evaluation.records
idle = set(bundle.bundle.idle_labels)

controls = st.columns(4)
served = controls[0].toggle("Served answers (rejections in their own column)", value=True, key="conf_served",
                            help="On: what the engine answers after its gates. Off: the top-1 of the ranking "
                                 "without gates.")
normalise = controls[1].toggle("Normalise rows (share of the true sign's clips)", value=True, key="conf_normalise")
log = controls[2].toggle("Log colour scale", value=False, key="conf_log")
hide = controls[3].toggle("Hide right answers (the diagonal)", value=False, key="conf_hide_diagonal",
                          help="Right answers are the diagonal and idle clips rejected.")
matrix, rows, columns = data.confusion(records, evaluation.labels, served)
values, top = data.confusion_display(matrix, rows, columns, idle, normalise, log, hide)
what = ("log10(1 + %)" if normalise else "log10(1 + clips)") if log else ("share" if normalise else "clips")
st.caption(f"Colour: {what}; the scale tops at the largest mistake ({top:.3g}), so right answers (the idle -> "
           "rejected cell above all) never wash the mistakes out. Numbers in cells are clip counts.")
event = st.plotly_chart(plots.confusion_heatmap(values, matrix, rows, columns, top, what), key="conf_chart",
                        on_select="rerun", selection_mode="points")

st.subheader("Top confusions")
ranked = data.top_confusions(matrix, rows, columns, idle)
if ranked.empty:
    st.success("No mistakes among these clips.")
else:
    st.dataframe(ranked.round(4), hide_index=True, key="conf_top")

# A click on a cell picks (true, predicted); the two select boxes are the same choice, by keyboard.
selected = event.selection.points if event and event.selection else []
if selected and selected[0].get("customdata"):
    cell = tuple(selected[0]["customdata"])
    if st.session_state.get("conf_last_click") != cell:
        st.session_state["conf_last_click"] = cell
        st.session_state["conf_true"], st.session_state["conf_pred"] = cell
# Start on the biggest real confusion (an idle clip rejected is the right answer, not one).
errors = data.confusion_errors(matrix, rows, columns, idle)
if st.session_state.get("conf_true") not in rows:
    st.session_state["conf_true"] = errors[0][0] if errors else rows[0]
if st.session_state.get("conf_pred") not in columns:
    st.session_state["conf_pred"] = errors[0][1] if errors else columns[0]
st.subheader("A cell's clips")
left, right = st.columns(2)
true = left.selectbox("True label", rows, key="conf_true")
pred = right.selectbox("Predicted", columns, key="conf_pred")
cell_records = data.cell_queries(records, true, pred, served)
st.markdown(f"**{len(cell_records)}** clips of **{true}** predicted **{pred}**.")
if len(cell_records):
    clip = st.selectbox("Clip", cell_records["query"].tolist(), key="conf_clip",
                        format_func=lambda q: ui.describe_query(evaluation, q))
    ui.clip_viewer(bundle, evaluation, int(clip), key="conf")

st.subheader("Per-label precision, recall, F1")
report = data.per_label_report(records, evaluation.labels)
st.caption("scikit-learn on the ranking's top-1 (before the gates) of the clips shown.")
st.dataframe(report.round(4), hide_index=True, key="conf_report")
st.download_button("Download the report (CSV)", report.to_csv(index=False), file_name="per_label_report.csv",
                   mime="text/csv", key="conf_download")
