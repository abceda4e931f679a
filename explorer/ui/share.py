"""Shareable views: the model, the model beside it, the map, the density toggle and the clicked
test image live in the page's address (``st.query_params``), so a link opens exactly that view.
The address is read once, when a session starts, and rewritten on every run after that."""

from __future__ import annotations

import streamlit as st

RESTORED = "_view_restored"  # session state: the address has been read
CHOSEN_MODEL = "model"
BESIDE = "beside"
MAP = "map"
DENSITY = "density"
PICKED = "picked"
MAPS = ("pca", "tsne", "umap")


def restore_view() -> None:
    """Copy a view from the address into the session state, once per session: ``model``,
    ``beside``, ``map`` (pca, tsne, umap), ``density`` (1) and ``point`` (a test-set index). Values
    that do not parse are ignored; a model that does not exist is refused by the picker."""
    if st.session_state.get(RESTORED):
        return
    st.session_state[RESTORED] = True
    params = st.query_params
    wrong = [
        f"{name}={params[name]!r}"
        for name, ok in (
            ("map", lambda v: v in MAPS),
            ("point", str.isdigit),
            ("density", lambda v: v in ("0", "1")),
        )
        if name in params and not ok(params[name])
    ]
    if wrong:
        st.warning(
            f"Ignored in the address: {', '.join(wrong)} (map: pca, tsne or umap; point: a test "
            "image's number; density: 1)."
        )
    model = params.get("model")
    if model:
        st.session_state[CHOSEN_MODEL] = model
    if params.get("beside"):
        st.session_state[BESIDE] = params["beside"]
    if params.get("map") in MAPS:
        st.session_state[MAP] = params["map"]
    if params.get("density") == "1":
        st.session_state[DENSITY] = True
    point = params.get("point", "")
    if model and point.isdigit():
        st.session_state[PICKED] = (model, int(point))


def publish_view(choice: str) -> None:
    """Write the current view into the address (only what differs from the defaults)."""
    view = {"model": choice}
    beside = st.session_state.get(BESIDE)
    if beside and beside != "(none)":
        view["beside"] = beside
    if st.session_state.get(MAP, "pca") != "pca":
        view["map"] = st.session_state[MAP]
    if st.session_state.get(DENSITY):
        view["density"] = "1"
    picked = st.session_state.get(PICKED)
    if picked and picked[0] == choice:
        view["point"] = str(picked[1])
    if dict(st.query_params) != view:
        st.query_params.from_dict(view)
