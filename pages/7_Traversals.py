"""Traversals: one latent dimension at a time, which true factor each follows, attribute vectors
between label means, and analogies (White 2016)."""

import streamlit as st

from explorer.ui.models import dataset_of, model_key, model_or_stop
from explorer.ui.traversals import analogy_tab, attribute_tab, base_point, traversal_tab

st.set_page_config(page_title="Traversals - VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dataset = dataset_of(config)
key = model_key(choice)
st.title("Traversals and attribute vectors")
base, base_name = base_point(model, choice, key, dataset)
tabs = st.tabs(["Traversals", "Attribute vectors", "Analogies"], key="traversal-tab", on_change="rerun")
if tabs[0].open:
    with tabs[0]:
        traversal_tab(model, config, key, dataset, base, base_name)
if tabs[1].open:
    with tabs[1]:
        attribute_tab(model, config, key, dataset, base, base_name)
if tabs[2].open:
    with tabs[2]:
        analogy_tab(model, config, key, dataset)
