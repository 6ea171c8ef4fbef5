"""SignSeek explorer: embeddings, prototypes, confusions, failures, sessions, calibration, open set,
bundle comparison, and clips to export or enrol.

    streamlit run explorer/app.py                      # models/ on sample_dataset/signs_sample.npz
    SIGNSEEK_EXPLORER_DATA=../shared/datasets/traduttore-asl/signs.npz streamlit run explorer/app.py

The sidebar picks the bundle and the dataset; every page evaluates the dataset with the engine
(cached per bundle and file version) and shows one view of the result.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run explorer/app.py` puts explorer/ on sys.path, not the project root.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from explorer import ui  # noqa: E402
from explorer.compat import fix_media_gzip  # noqa: E402

fix_media_gzip()  # images and zips from /media answer 500 without it (explorer/compat.py)

st.set_page_config(page_title="SignSeek explorer", page_icon=":material/sign_language:", layout="wide")

# The page scripts live in views/, not pages/: a folder named pages/ next to the entrypoint switches
# Streamlit into its legacy multipage mode, which runs a page's script without this file (so without
# the sidebar) when the page is opened directly or switched to in AppTest.
_PAGES = Path(__file__).parent / "views"
navigation = st.navigation({
    "Results": [
        st.Page(_PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(_PAGES / "embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
        st.Page(_PAGES / "prototypes.py", title="Prototypes", icon=":material/hub:"),
        st.Page(_PAGES / "confusion.py", title="Confusion", icon=":material/grid_on:"),
        st.Page(_PAGES / "failures.py", title="Failures", icon=":material/error:"),
        st.Page(_PAGES / "sessions.py", title="Sessions", icon=":material/groups:"),
    ],
    "Decisions": [
        st.Page(_PAGES / "calibration.py", title="Calibration", icon=":material/tune:"),
        st.Page(_PAGES / "openset.py", title="Open set", icon=":material/help:", url_path="openset"),
        st.Page(_PAGES / "compare.py", title="Compare bundles", icon=":material/compare_arrows:", url_path="compare"),
    ],
    "Data": [
        st.Page(_PAGES / "clips.py", title="Clips: export and enrol", icon=":material/video_library:",
                url_path="clips"),
    ],
})
ui.sidebar()
navigation.run()
