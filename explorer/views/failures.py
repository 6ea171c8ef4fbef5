"""Failures: every wrong answer and every rejection, with the engine's reason, filterable."""

from __future__ import annotations

import streamlit as st

from explorer import data, ui

st.title("Failures")
bundle, evaluation = ui.load()
table = data.failures(evaluation.records)
st.caption(f"{len(table)} of {len(evaluation.records)} clips were not answered right: "
           f"{int((table['kind'] == 'error').sum())} wrong answers, {int((table['kind'] == 'rejection').sum())} "
           "rejections. Reasons: " + "; ".join(f"{k}: {v}" for k, v in ui.REASON_HELP.items()))

left, middle, right = st.columns(3)
kinds = left.multiselect("Kind", sorted(table["kind"].unique()), key="fail_kind", placeholder="all kinds")
reasons = middle.multiselect("Reason", sorted(table["reason"].unique()), key="fail_reason",
                             placeholder="all reasons")
labels = right.multiselect("True label", sorted(table["label"].unique()), key="fail_label",
                           placeholder="all labels")
shown = data.filter_failures(table, kinds, reasons, labels)
st.markdown(f"**{len(shown)}** shown.")
st.dataframe(shown.round(4), hide_index=True, key="fail_table")
st.download_button("Download (CSV)", shown.to_csv(index=False), file_name="failures.csv", mime="text/csv",
                   key="fail_download")
if len(shown):
    st.subheader("Look at one")
    choices = shown["query"].tolist()
    linked = ui.linked_clip(choices)
    clip = st.selectbox("Clip", choices, key="fail_clip", index=choices.index(linked) if linked is not None else 0,
                        format_func=lambda q: ui.describe_query(evaluation, q))
    ui.clip_viewer(bundle, evaluation, int(clip), key="fail")
