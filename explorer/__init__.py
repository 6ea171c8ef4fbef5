"""SignSeek explorer: a Streamlit app over a bundle and a dataset (`streamlit run explorer/app.py`)."""
