"""The Streamlit dashboard: plate view, per-well probability over time, onsets, alerts."""
