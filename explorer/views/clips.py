"""Clips: browse the dataset (the demo's "wrong answer?" feedback file opens like any dataset), pick
clips, export them, or enrol them as a sign into a reference store."""

from __future__ import annotations

import streamlit as st

from explorer import data, enrol, exports, ui

st.title("Clips: export and enrol")
bundle, evaluation = ui.load(with_warning=False)
records = evaluation.records
_, data_path = ui.current_paths()
feedback = bool(records["demo_answer"].astype(bool).any())
if feedback:
    st.info("This is the demo's feedback file (\"wrong answer?\" flags): each clip's label is the user's "
            "correction, \"demo answered\" what the demo said. Pick the clips to enrol under a sign, or export them.")

left, middle, right = st.columns(3)
labels = left.multiselect("Label", sorted(records["label"].astype(str).unique()), key="clips_label",
                          placeholder="all labels")
outcomes = middle.multiselect("Outcome", sorted(records["outcome"].unique()), key="clips_outcome",
                              placeholder="all outcomes")
shown = records
if labels:
    shown = shown[shown["label"].astype(str).isin(labels)]
if outcomes:
    shown = shown[shown["outcome"].isin(outcomes)]
table = exports.selection_table(shown, shown.index)
if feedback:
    table.insert(2, "demo answered", shown["demo_answer"].to_numpy())
table.insert(0, "pick", False)
edited = st.data_editor(table, hide_index=True, key="clips_editor", disabled=[c for c in table.columns if c != "pick"],
                        height=320)
picked = [int(q) for q in edited.loc[edited["pick"], "query"]]
if right.button("Pick every clip shown", key="clips_pick_all"):
    st.session_state["clips_picked"] = shown.index.tolist()
picked = sorted(set(picked) | set(st.session_state.get("clips_picked", [])) & set(shown.index.tolist()))
st.markdown(f"**{len(picked)}** clips picked.")
if not picked:
    st.caption("Tick clips in the table (or pick every clip shown) to export or enrol them.")
    st.stop()

st.subheader("Export")
st.download_button("Download the picked clips (SignSeek dataset .npz)",
                   lambda: exports.dataset_bytes(data.cached_dataset(data_path), picked), file_name="clips.npz",
                   mime="application/octet-stream", key="clips_export")
st.download_button("Download their table (CSV)", exports.selection_table(records, picked).to_csv(index=False),
                   file_name="clips.csv", mime="text/csv", key="clips_export_csv")

st.subheader("Enrol as a sign")
default_label = enrol.default_label(records.loc[picked])
st.text_input("Sign name", value=default_label, key="clips_enrol_label")
st.text_input("Reference store (a SQLite file or postgresql://...; the demo's store by default)",
              value=enrol.default_store(),
              key="clips_enrol_store")
if st.button("Enrol the picked clips", key="clips_enrol"):
    try:
        result = enrol.enrol_clips(bundle.directory, data.cached_dataset(data_path), picked,
                                   st.session_state["clips_enrol_label"], st.session_state["clips_enrol_store"])
    except enrol.EnrolError as exc:
        st.error(str(exc))
    else:
        st.success(f"Enrolled {result['added']} clips as '{result['label']}' in {result['store']} "
                   f"({result['references']} references of it there now).")
