"""Streamlit helpers shared by the pages. The only part of ``explorer`` that imports Streamlit."""
