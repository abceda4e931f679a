"""The training-job registry shared by every session of the app."""

import streamlit as st

from explorer.train.jobs import JobRegistry
from explorer.train.runfolder import runs_root


@st.cache_resource
def _registry(root: str) -> JobRegistry:
    from pathlib import Path

    return JobRegistry(Path(root))


def job_registry() -> JobRegistry:
    """One registry per runs folder for the whole server (its lock guards Start)."""
    return _registry(str(runs_root()))
