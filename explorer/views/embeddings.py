"""Embeddings: a 2-D projection of the clips' embeddings; pick or lasso clips, open one, export them."""

from __future__ import annotations

import streamlit as st

from explorer import data, exports, plots, ui

st.title("Embeddings")
bundle, evaluation = ui.load()
bundle_dir, data_path = ui.current_paths()
records = evaluation.records
n_queries = len(records)

controls = st.columns(4)
method = controls[0].radio("Projection", ["PCA", "UMAP", "t-SNE"], horizontal=True, key="emb_method",
                           help="PCA is instant; UMAP and t-SNE take seconds (UMAP's first use compiles numba code: "
                                "up to a minute, with progress shown).")
colour_by = controls[1].selectbox("Colour by", ["label", "session", "outcome"], key="emb_colour",
                                  format_func=lambda c: "right / wrong" if c == "outcome" else c)
sample = controls[2].slider("Points shown (random sample)", min_value=min(n_queries, 10), max_value=n_queries,
                            value=min(n_queries, 5000), key="emb_sample") if n_queries > 10 else n_queries
seed = controls[3].number_input("Sample seed", min_value=0, value=0, step=1, key="emb_seed")
highlight = ui.label_highlight(sorted(records["label"].astype(str).unique()))

vectors = ui.embeddings()
chosen = records.index.to_numpy()[data.sample_queries(n_queries, int(sample), int(seed))]
slot, update = ui.progress_bar(f"{method} of {len(chosen)} clips...")
try:
    xy = data.cached_projection(bundle_dir, data_path, chosen, method, int(seed), update)
except data.ExplorerError as exc:
    st.error(str(exc))
    st.stop()
finally:
    slot.empty()
points = data.projection_frame(records, chosen, xy)
st.caption(f"{len(points)} of {n_queries} clips, {method} of the engine's {vectors.shape[1]}-d embeddings. "
           "Click a point (or pick a clip below) to watch it; draw a lasso or a box to select many.")
event = st.plotly_chart(plots.embedding_scatter(points, colour_by, highlight), key="emb_chart", on_select="rerun",
                        selection_mode=("points", "box", "lasso"))

selected = event.selection.points if event and event.selection else []
picked = sorted({int(p["customdata"][0]) for p in selected if p.get("customdata")})
if len(picked) == 1 and st.session_state.get("emb_last_click") != picked[0]:
    st.session_state["emb_last_click"] = picked[0]
    st.session_state["emb_clip"] = picked[0]

st.subheader("Selection")
if len(picked) > 1:
    st.session_state["emb_selection"] = picked
selection = [q for q in st.session_state.get("emb_selection", []) if q in records.index]
if selection:
    table = exports.selection_table(records, selection)
    st.markdown(f"**{len(selection)}** clips selected (every one of them is in the exports below).")
    st.dataframe(table, hide_index=True, key="emb_selection_table", height=220)
    left, right = st.columns(2)
    left.download_button("Download the selection (CSV)", table.to_csv(index=False), file_name="selection.csv",
                         mime="text/csv", key="emb_selection_csv")
    right.download_button("Download the selection's clips (SignSeek dataset .npz)",
                          lambda: exports.dataset_bytes(data.cached_dataset(data_path), selection),
                          file_name="selection.npz", mime="application/octet-stream", key="emb_selection_npz")
    if st.button("Clear the selection", key="emb_selection_clear"):
        st.session_state["emb_selection"] = []
        st.rerun()
else:
    st.caption("Lasso or box-select points on the chart to select clips.")

st.download_button("Export embeddings + metadata (TensorBoard projector, .zip)",
                   lambda: exports.projector_zip(vectors[records.index.to_numpy()], records),
                   file_name="signseek-projector.zip", mime="application/zip", key="emb_projector",
                   help="tensors.tsv, metadata.tsv and projector_config.pbtxt for the clips shown: unzip into a "
                        "TensorBoard log folder, or load both TSVs at projector.tensorflow.org.")

st.subheader("One clip")
choices = points["query"].tolist()
linked = ui.linked_clip(choices)
if linked is not None and "emb_clip" not in st.session_state:
    st.session_state["emb_clip"] = linked
if st.session_state.get("emb_clip") not in choices:  # start on a wrong answer, else an accepted sign
    shown = records.loc[choices]
    wrong = shown.index[shown["outcome"] == "wrong"].tolist()
    st.session_state["emb_clip"] = (wrong or shown.index[shown["accepted"]].tolist() or choices)[0]
query = st.selectbox("Clip", choices, key="emb_clip", format_func=lambda q: ui.describe_query(evaluation, q))
ui.clip_viewer(bundle, evaluation, int(query), key="emb")
