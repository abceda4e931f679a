"""Latent space: the encoded test set as a scatter; click a point to see the image, its
reconstruction and its posterior. Second tab: the aggregate posterior against the prior."""

import streamlit as st

from explorer.config import encoder_trained
from explorer.explore.projections import METHODS, MIN_CODES, NAMES
from explorer.ui.beside import companion_picker, describe, scatters_side_by_side
from explorer.ui.latent import test_set_scatter
from explorer.ui.models import (
    MAP_COST,
    MAP_KEY,
    dataset_of,
    latent_map,
    model_key,
    model_or_stop,
    test_images,
)
from explorer.ui.prior_map import show_prior_map
from explorer.ui.share import WIDGET_OF
from explorer.ui.widgets import data_slider

st.set_page_config(page_title="Latent space - VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dataset = dataset_of(config)
key = model_key(choice)
test_count = len(test_images(dataset)[1])
most = min(10_000, test_count)  # a folder may hold only a few test images
least, step = min(1000, most), 1000 if most - min(1000, most) >= 1000 else 1
count = data_slider(st.sidebar, "Test images shown", least, most, min(5000, most), step)
if model.config.latent_dim > 2:
    st.sidebar.radio(
        "Map", METHODS, index=METHODS.index(st.session_state.get(MAP_KEY, "pca")), format_func=NAMES.get,
        key=WIDGET_OF[MAP_KEY], horizontal=True,  # the widget's key: the choice itself lives on in MAP_KEY
        on_change=lambda: st.session_state.update({MAP_KEY: st.session_state[WIDGET_OF[MAP_KEY]]}),
        help=f"How the {model.config.latent_dim}-D codes are drawn in 2-D: PCA (linear: distances and "
        f"ellipses hold), t-SNE (openTSNE) or UMAP (umap-learn), which keep neighbourhoods but not "
        f"distances. t-SNE and UMAP are fitted once per model: {MAP_COST}. New points (uploads, "
        "drawings) are placed into the fitted map.",
    )  # fmt: skip
density = st.sidebar.checkbox(
    "Density contours", key="density", help="The aggregate posterior q(z) drawn over the map"
)
companion = companion_picker(choice, config)
st.title("Latent space")

projection = latent_map(*key, dataset)[1]
asked = st.session_state.get(MAP_KEY, "pca")
nonlinear = model.config.latent_dim > 2 and asked != "pca" and test_count >= MIN_CODES  # else PCA
if model.config.latent_dim == 2 and asked != "pca":
    st.info(
        f"{choice} has a 2-D latent space: the map shows z itself, not a {NAMES[asked]} (a map for "
        "models of more latent dimensions)."
    )
elif model.config.latent_dim > 2:
    ev = projection.explained
    shows = "map of the prior shows" if nonlinear else "pictures show"
    pca_note = f"This model has {model.config.latent_dim} latent dimensions; the {shows} " + (
        f"the first two principal components of the encoded means, which explain {ev[0]:.0%} and "
        f"{ev[1]:.0%} of their variance."
        if sum(ev) > 0
        else "two directions of the latent space: the encoded test images do not vary (one test "
        "image), so there is no variance to explain."
    )
    if not nonlinear:
        st.info(pca_note)
# Only the open tab runs: each draws its own figures (the prior map's densities are stored
# beside the model, explorer.explore.derived; bench/pages.py times both).
names = ["Test set", "Prior vs aggregate posterior"]
if companion is not None:
    names.insert(0, f"Beside {companion[0]}")
tabs = st.tabs(names, key="latent-tab" if companion is None else "latent-tab-beside", on_change="rerun")
if companion is not None and tabs[0].open:
    with tabs[0]:
        if nonlinear:  # the sidebar says t-SNE or UMAP; these maps are PCA planes, and say so
            st.info(
                f"Side by side, each model's codes are drawn in its PCA plane, where the prior's "
                f"circles keep their scale ({NAMES[asked]} keeps none). The {NAMES[asked]} map is on "
                "the Test set tab."
            )
        scatters_side_by_side([(choice, model, config), companion], dataset, count)
first = len(names) - 2
if tabs[first].open:
    with tabs[first]:
        if nonlinear:  # this tab's map only: the prior's tab stays in the PCA plane
            st.info(
                f"This model has {model.config.latent_dim} latent dimensions; the map is a "
                f"{NAMES[asked]} of its codes: neighbourhoods hold, distances and directions do not, "
                "and no ellipses are drawn."
            )
        test_set_scatter(model, config, choice, key, dataset, count, density)
if tabs[first + 1].open:
    with tabs[first + 1]:
        if not encoder_trained(config):  # Monte Carlo EM: q(z|x) is an untrained network's
            st.info(
                f"{choice}'s encoder was never trained (Monte Carlo EM learns the decoder alone), so its "
                "aggregate posterior, its holes and each unit's KL would describe that untrained "
                "network, not the model: they are not drawn. What the model learnt shows in decoded "
                "draws z ~ p(z) (Home, Manifold, Traversals).",
                icon=":material/info:",
            )
        elif model.config.variational:
            if nonlinear:
                st.info(pca_note)
            show_prior_map(key, dataset, projection)
        else:
            st.info(
                f"{choice} is a baseline, {'an' if model.config.model == 'ae' else 'a'} "
                f"{describe(model, config)}: it has no prior and no posterior, so there is no "
                "aggregate posterior to set against N(0, I), and no KL per dimension. To see where "
                "its codes lie against N(0, I), show a VAE beside it (sidebar: *Beside it*).",
                icon=":material/info:",
            )
