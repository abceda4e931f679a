"""Theory: from EM to AEVB, each idea a live experiment checked by its numbers. The first three
tabs need no model; the last two run on the model picked in the sidebar."""

import streamlit as st

from explorer.ui.models import dataset_of, model_key, model_or_stop
from explorer.ui.theory import (
    TAB_KEY,
    TABS,
    em_ui,
    follow_tab_address,
    keep_tab_in_address,
    kl_ui,
    mean_field_ui,
)
from explorer.ui.theory_model import identity_ui, reparam_ui

st.set_page_config(page_title="Theory - VAE Explorer", layout="wide")
follow_tab_address()  # a Home page link, or a shared address, names the tab
choice, model, config = model_or_stop(stop=False)  # (a model refused: the first three tabs need none)
st.title("From EM to AEVB")
st.caption(
    "The ideas behind the VAE, each as an experiment you can change, with the exact numbers beside the "
    "picture. The last two tabs run on the model chosen in the sidebar."
)
tabs = st.tabs(list(TABS), key=TAB_KEY, on_change="rerun")
keep_tab_in_address()
if tabs[0].open:
    with tabs[0]:
        em_ui()
if tabs[1].open:
    with tabs[1]:
        kl_ui()
if tabs[2].open:
    with tabs[2]:
        mean_field_ui()
if model is None:  # the sidebar's model cannot be shown (said above): the tabs that run on it say so
    for tab in tabs[3:]:
        if tab.open:
            tab.info(f"This tab runs on the model chosen in the sidebar, and {choice!r} cannot be shown.")
else:
    if tabs[3].open:
        with tabs[3]:
            identity_ui(choice, model, model_key(choice), dataset_of(config), config)
    if tabs[4].open:
        with tabs[4]:
            reparam_ui(model, model_key(choice), dataset_of(config), config)
