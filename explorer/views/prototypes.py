"""Prototypes: how far apart the signs' prototypes are, how tightly each sign's clips gather, and
the outliers, each of which opens."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import data, plots, ui

st.title("Prototypes")
bundle, evaluation = ui.load()
b = bundle.bundle
if b.prototypes is None or not len(b.prototype_labels):
    st.warning("This bundle has no prototypes.npz: re-export it with the trainer.")
    st.stop()
labels = list(b.prototype_labels)
similarity = b.prototypes @ b.prototypes.T

st.subheader("Prototype-to-prototype cosine similarity")
off_diagonal = np.where(np.eye(len(labels), dtype=bool), -np.inf, similarity)
i, j = np.unravel_index(int(np.argmax(off_diagonal)), similarity.shape)
st.caption(f"{len(labels)} prototypes (mean reference embedding per label). Closest pair: "
           f"**{labels[i]}** and **{labels[j]}** ({similarity[i, j]:.3f}).")
st.plotly_chart(plots.similarity_heatmap(similarity, labels), key="proto_heatmap")

st.subheader("Spread: each member's similarity to its prototype")
members = st.radio("Members", ["bundle references", "dataset clips"], horizontal=True, key="proto_members",
                   help="References are what the engine searches; dataset clips are the loaded file's clips shown.")
records = evaluation.records
if members == "bundle references":
    spread = data.label_spread(b.embeddings, b.labels, labels, b.prototypes)
    spread["sample_id"] = bundle.references.loc[spread["member"], "sample_id"].to_numpy()
else:
    vectors = ui.embeddings()
    spread = data.label_spread(vectors[records.index], records["label"], labels, b.prototypes)
    spread["member"] = records.index.to_numpy()[spread["member"]]  # the clip's position in the file
    spread["sample_id"] = records.loc[spread["member"], "sample_id"].to_numpy()
if spread.empty:
    st.info("No member has a label with a prototype in this bundle.")
    st.stop()
st.plotly_chart(plots.spread_box(spread), key="proto_spread")
summary = (spread.groupby("label")["similarity"].agg(["count", "mean", "min"]).round(4)
           .sort_values("mean").reset_index())
st.dataframe(summary, hide_index=True, key="proto_summary")

st.subheader("Outliers")
factor = st.slider("Fence (IQR below the first quartile)", 0.5, 3.0, 1.5, 0.25, key="proto_iqr")
outliers = data.spread_outliers(spread, factor)
st.caption(f"{len(outliers)} members below Q1 - {factor} x IQR of their own label. Pick one to open it.")
st.dataframe(outliers.round(4), hide_index=True, key="proto_outliers")
if len(outliers):
    pick = st.selectbox("Open an outlier", outliers["member"].tolist(), key="proto_outlier",
                        format_func=lambda m: f"#{m} {outliers.set_index('member').loc[m, 'label']} "
                                              f"({outliers.set_index('member').loc[m, 'similarity']:.3f} to its prototype)")
    if members == "dataset clips":
        ui.clip_viewer(bundle, evaluation, int(pick), key="proto")
    else:
        ref = bundle.references.loc[int(pick)]
        st.markdown(f"**reference #{int(pick)}: {ref['label']}** (session {ref.get('session', '')}, "
                    f"{ref.get('sample_id', '')})")
        same = int((bundle.references["label"].astype(str) == str(ref["label"])).sum())
        st.plotly_chart(plots.skeleton_animation(
            [(f"reference #{int(pick)}: {ref['label']}", b.reference_features[int(pick)])], b.feature_config),
            key="proto_reference_skeleton")
        st.caption(f"One of {same} references of {ref['label']}, among the least like their mean.")
