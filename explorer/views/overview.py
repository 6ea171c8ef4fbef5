"""Overview: which bundle and dataset are loaded, and how the engine does on the clips shown."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer import backend, data, ui

st.title("SignSeek explorer")
bundle, evaluation = ui.load()
records = evaluation.records
b = bundle.bundle

left, right = st.columns(2)
with left:
    st.subheader("Bundle")
    classifiers = ", ".join(f"{name} ({len(labels)} labels, hands-only clips)"
                            for name, labels in bundle.classifier_labels.items()) or "none"
    st.markdown(f"**{b.model_name}** in `{bundle.directory}`  \n"
                f"{len(bundle.references)} references, {bundle.references['label'].nunique()} labels, "
                f"embedding size {b.embeddings.shape[1]}  \nhands-only classifiers: {classifiers}")
with right:
    st.subheader("Dataset")
    st.markdown(f"`{ui.current_paths()[1]}`  \n{data.LAYOUT_NAMES.get(evaluation.layout, evaluation.layout)}  \n"
                f"{len(records)} clips shown, {records['label'].nunique()} labels, "
                f"{records['session'].nunique()} sessions; {int(records['known'].sum())} clips of signs the "
                f"bundle knows, {int((~records['known']).sum())} of others")

st.subheader("On the clips shown")
st.caption("Every number below is over the same clips (the selection above), answered by the serving engine "
           "with the bundle's settings. Ranking: the answering model's order before the gates, over clips of "
           "signs the bundle knows. Served: what a user gets after the gates.")
ranking = backend.ranking_metrics(records)
served = data.served_summary(records)
columns = st.columns(7)
columns[0].metric("Top-1", f"{ranking['top1']:.4f}", help=f"{ranking['n']} clips of known signs")
columns[1].metric("Top-5", f"{ranking['top5']:.4f}")
columns[2].metric("MRR", f"{ranking['mrr']:.4f}")
columns[3].metric("Accepted", f"{served['acceptance']:.4f}")
columns[4].metric("Precision of accepted", f"{served['precision']:.4f}")
columns[5].metric("Right end to end", f"{served['right']:.4f}",
                  help="The sign accepted, or an idle clip not taken for a sign.")
columns[6].metric("Rejected", f"{served['rejected']}")

st.subheader("By the model that answered")
rows = []
for model, part in records.groupby("model", sort=True):
    r, s = backend.ranking_metrics(part), data.served_summary(part)
    rows.append({"model": model, "clips": len(part), "top1": r["top1"], "top5": r["top5"], "mrr": r["mrr"],
                 "accepted": s["acceptance"], "precision": s["precision"], "right": s["right"]})
st.dataframe(pd.DataFrame(rows).round(4), hide_index=True, key="overview_models")
st.caption("encoder: clips with a body (retrieval over the references); a classifier's name: clips with hands "
           "but no torso, answered by that hands-only classifier.")

st.subheader("Settings in use")
st.dataframe(ui.thresholds_table(bundle), hide_index=True, key="thresholds_table")
st.caption("Source: default (the deployment guide's), bundle (calibrated, model_config.json) or env / .env.")
