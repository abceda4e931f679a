"""Latent space: the encoded test set as a scatter; click a point to see the image, its
reconstruction and its posterior. Second tab: the aggregate posterior against the prior."""

import streamlit as st

from explorer.ui.latent import test_set_scatter
from explorer.ui.models import dataset_of, latent_map, model_key, model_or_stop
from explorer.ui.prior_map import show_prior_map

st.set_page_config(page_title="Latent space - VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dataset = dataset_of(config)
key = model_key(choice)
count = st.sidebar.slider("Test images shown", 1000, 10_000, 5000, step=1000)
st.title("Latent space")

projection = latent_map(*key, dataset)[1]
if projection.kind == "pca":
    ev = projection.explained
    st.info(
        f"This model has {model.config.latent_dim} latent dimensions; the pictures show the first two "
        f"principal components of the encoded means, which explain {ev[0]:.0%} and {ev[1]:.0%} "
        "of their variance."
    )
# Only the open tab runs: the prior map takes seconds the first time a model is shown, the
# scatter well under one (bench/idle.py).
tabs = st.tabs(["Test set", "Prior vs aggregate posterior"], key="latent-tab", on_change="rerun")
if tabs[0].open:
    with tabs[0]:
        test_set_scatter(model, config, choice, key, dataset, count)
if tabs[1].open:
    with tabs[1]:
        show_prior_map(key, dataset, projection)
