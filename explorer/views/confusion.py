"""Confusion: which signs are taken for which; click a cell to see its clips beside their nearest reference."""

from __future__ import annotations

import streamlit as st

from explorer import data, plots, ui

st.title("Confusion")
bundle, evaluation = ui.load()
records = evaluation.records

served = st.toggle("Served answers (rejections in their own column)", value=True, key="conf_served",
                   help="On: what the engine answers after its gates. Off: the top-1 of the ranking without "
                        "gates, which is what the trainer's top-1 and per-class report score.")
matrix, rows, columns = data.confusion(records, evaluation.labels, served)
event = st.plotly_chart(plots.confusion_heatmap(matrix, rows, columns), key="conf_chart",
                        on_select="rerun", selection_mode="points")

# A click on a cell picks (true, predicted); the two select boxes are the same choice, by keyboard.
selected = event.selection.points if event and event.selection else []
if selected and selected[0].get("customdata"):
    cell = tuple(selected[0]["customdata"])
    if st.session_state.get("conf_last_click") != cell:
        st.session_state["conf_last_click"] = cell
        st.session_state["conf_true"], st.session_state["conf_pred"] = cell
# Start on the biggest real confusion (an idle clip rejected is the right answer, not one).
idle = set(bundle.bundle.idle_labels)
errors = [(t, p) for t, p in data.confusion_errors(matrix, rows, columns)
          if not (t in idle and p in (data.REJECTED_COLUMN, *idle))]
if st.session_state.get("conf_true") not in rows:
    st.session_state["conf_true"] = errors[0][0] if errors else rows[0]
if st.session_state.get("conf_pred") not in columns:
    st.session_state["conf_pred"] = errors[0][1] if errors else columns[0]
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
trainer = ui.trainer_report() if ui.current_clips() == "all" else None
if trainer is not None and trainer.report is not None:
    report = trainer.report
    st.caption("The trainer's per-class report (trainer.evaluate, closed protocol: top-1 of the ranking, "
               "queries whose label the bundle knows).")
else:
    report = data.per_label_report(records, evaluation.labels)
    why = trainer.note if trainer is not None else f"{data.CLIP_CHOICES[ui.current_clips()]} only"
    st.caption(f"scikit-learn on the ranking's top-1 of the clips shown ({why}).")
st.dataframe(report.round(4), hide_index=True, key="conf_report")
st.download_button("Download the report (CSV)", report.to_csv(index=False), file_name="per_label_report.csv",
                   mime="text/csv", key="conf_download")
