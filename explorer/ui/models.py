"""Cached model loading and the model picker shared by the app's pages."""

from __future__ import annotations

import streamlit as st

from explorer.checkpoints import MODEL_FILE, load_checkpoint, pretrained_names, read_config, resolve
from explorer.errors import ExplorerError
from explorer.model import VAE


@st.cache_resource(show_spinner="Loading model...", max_entries=8)
def _load(path: str, mtime_ns: int) -> VAE:  # mtime in the key: a retrained run reloads
    return load_checkpoint(path)


def load_model(name: str) -> tuple[VAE, dict]:
    """The model and its config.json; raises ExplorerError with a message for the page."""
    folder = resolve(name)
    model = _load(str(folder), (folder / MODEL_FILE).stat().st_mtime_ns)
    return model, read_config(folder)


def model_picker() -> str | None:
    """Sidebar select box of the shipped models, remembered across pages; None if there are none."""
    names = pretrained_names()
    if not names:
        st.sidebar.error("No models found in pretrained/. Train one with `vae-explorer train`.")
        return None
    default = "mnist-z2" if "mnist-z2" in names else names[0]
    current = st.session_state.get("model", default)
    index = names.index(current) if current in names else names.index(default)
    choice = st.sidebar.selectbox("Model", names, index=index, key="model_picker")
    st.session_state["model"] = choice
    return choice


def show_error(exc: ExplorerError) -> None:
    st.error(str(exc))
