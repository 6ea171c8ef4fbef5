"""Embeddings: a 2-D projection of the query embeddings; pick a clip to watch it beside its nearest reference."""

from __future__ import annotations

import streamlit as st

from explorer import data, plots, ui

st.title("Embeddings")
bundle, evaluation = ui.load()
bundle_dir, data_path = ui.current_paths()
n_queries = len(evaluation.records)

controls = st.columns(4)
method = controls[0].radio("Projection", ["PCA", "UMAP", "t-SNE"], horizontal=True, key="emb_method",
                           help="PCA is instant; UMAP and t-SNE take seconds to a minute on thousands of points.")
colour_by = controls[1].selectbox("Colour by", ["label", "session", "outcome"], key="emb_colour",
                                  format_func=lambda c: "right / wrong" if c == "outcome" else c)
sample = controls[2].slider("Points shown (random sample)", min_value=min(n_queries, 10), max_value=n_queries,
                            value=min(n_queries, 5000), key="emb_sample") if n_queries > 10 else n_queries
seed = controls[3].number_input("Sample seed", min_value=0, value=0, step=1, key="emb_seed")

try:
    points = data.cached_projection(bundle_dir, data_path, ui.current_clips(), method, int(sample), int(seed))
except data.ExplorerError as exc:
    st.error(str(exc))
    st.stop()
st.caption(f"{len(points)} of {n_queries} clips, {method} of the engine's {evaluation.embeddings.shape[1]}-d "
           "embeddings. Click a point (or pick a clip below) to watch it.")
event = st.plotly_chart(plots.embedding_scatter(points, colour_by), key="emb_chart", on_select="rerun",
                        selection_mode=("points", "box", "lasso"))

# A click on the chart picks the clip; the select box below is the same choice, by keyboard.
selected = event.selection.points if event and event.selection else []
if selected:
    clicked = int(selected[0]["customdata"][0])
    if st.session_state.get("emb_last_click") != clicked:
        st.session_state["emb_last_click"] = clicked
        st.session_state["emb_clip"] = clicked
choices = points["query"].tolist()
if st.session_state.get("emb_clip") not in choices:  # start on a wrong answer, else an accepted sign
    shown = evaluation.records.loc[choices]
    wrong = shown.index[shown["outcome"] == "wrong"].tolist()
    st.session_state["emb_clip"] = (wrong or shown.index[shown["accepted"]].tolist() or choices)[0]
query = st.selectbox("Clip", choices, key="emb_clip", format_func=lambda q: ui.describe_query(evaluation, q))
ui.clip_viewer(bundle, evaluation, int(query), key="emb")
