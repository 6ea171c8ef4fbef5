"""Overview: which bundle and dataset are loaded, the trainer's headline numbers and the served answers'."""

from __future__ import annotations

import streamlit as st

from explorer import data, ui

st.title("SignSeek explorer")
bundle, evaluation = ui.load()
records = evaluation.records

left, right = st.columns(2)
with left:
    st.subheader("Bundle")
    st.markdown(f"**{bundle.bundle.model_name}** in `{bundle.directory}`  \n"
                f"{len(bundle.references)} references, {bundle.references['label'].nunique()} labels, "
                f"embedding size {bundle.bundle.embeddings.shape[1]}")
with right:
    st.subheader("Dataset")
    st.markdown(f"`{ui.current_paths()[1]}`  \n{len(records)} clips ({data.CLIP_CHOICES[ui.current_clips()]}), "
                f"{records['label'].nunique()} labels, {records['session'].nunique()} sessions")

st.subheader("Ranking (the trainer's evaluator, closed protocol)")
trainer = ui.trainer_report()
if trainer.metrics:
    columns = st.columns(len(ui.HEADLINE_METRICS))
    for column, (name, title) in zip(columns, ui.HEADLINE_METRICS.items(), strict=True):
        value = trainer.metrics.get(name)
        column.metric(title, "n/a" if value is None else f"{value:.4f}")
    st.caption(f"All {trainer.metrics.get('n_queries')} clips of the file whose label has references "
               f"({trainer.metrics.get('n_skipped', 0)} skipped), whatever the sidebar's clip selection: "
               "the numbers of `python -m trainer evaluate --bundle ... --data ...`.")
else:
    st.warning(f"No trainer metrics: {trainer.note}")

st.subheader("Served answers (the engine with its gates)")
served = data.gate_summary(records, records["accepted"].to_numpy())
columns = st.columns(4)
columns[0].metric("Accepted", f"{served['acceptance']:.4f}")
columns[1].metric("Precision of accepted", f"{served['precision']:.4f}")
columns[2].metric("Right end to end", f"{records['correct'].mean():.4f}",
                  help="The sign accepted, or an idle clip not taken for a sign.")
columns[3].metric("Rejected", f"{int((~records['accepted']).sum())}")

st.subheader("Thresholds in use")
st.dataframe(ui.thresholds_table(bundle), hide_index=True, key="thresholds_table")
st.caption("Source: default (the deployment guide's), bundle (calibrated, model_config.json) or env / .env.")
