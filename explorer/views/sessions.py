"""Sessions: the engine's numbers per session (signer), to see who it works for and who it does not."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from explorer import data, ui

st.title("Sessions")
bundle, evaluation = ui.load()
table = data.session_table(evaluation.records)
st.caption("One row per session (the dataset's session or signer column); narrow every page to some of them "
           "with the sidebar's Sessions filter.")
st.dataframe(table.round(4), hide_index=True, key="sess_table")
fig = go.Figure()
for column, name in (("top1", "top-1 (ranking)"), ("right", "right end to end (served)")):
    fig.add_trace(go.Bar(x=table["session"].astype(str), y=table[column], name=name))
fig.update_layout(barmode="group", height=360, xaxis={"type": "category", "title": "session"},
                  yaxis={"range": [0, 1.02], "tickformat": ".0%"}, margin={"l": 10, "r": 10, "t": 30, "b": 10})
st.plotly_chart(fig, key="sess_chart")
st.download_button("Download (CSV)", table.to_csv(index=False), file_name="sessions.csv", mime="text/csv",
                   key="sess_download")
