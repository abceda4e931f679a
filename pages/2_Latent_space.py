"""Latent space: the encoded test set as a scatter; click a point to see the image, its
reconstruction and its posterior. Second tab: the aggregate posterior against the prior."""

import streamlit as st

from explorer.insight import posterior
from explorer.plots import latent_scatter
from explorer.ui.insight import axis_titles, draw_posterior, samples_picture, show_prior_map
from explorer.ui.models import (
    dataset_of,
    label_names,
    latent_map,
    model_key,
    model_or_stop,
    test_images,
)

st.set_page_config(page_title="Latent space - VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dataset = dataset_of(config)
key = model_key(choice)
count = st.sidebar.slider("Test images shown", 1000, 10_000, 5000, step=1000)
st.title("Latent space")

means, projection, labels = latent_map(*key, dataset)
images = test_images(dataset)[0]
points = projection(means[:count]).tolist()
if projection.kind == "pca":
    ev = projection.explained
    st.info(
        f"This model has {model.config.latent_dim} latent dimensions; the pictures show the first two "
        f"principal components of the encoded means, which explain {ev[0]:.0%} and {ev[1]:.0%} "
        "of their variance."
    )
scatter_tab, prior_tab = st.tabs(["Test set", "Prior vs aggregate posterior"])


def remember_click() -> None:
    picked = st.session_state["scatter"].selection.get("points", [])
    if picked and "customdata" in picked[0]:
        custom = picked[0]["customdata"]
        st.session_state["picked"] = (choice, int(custom[0] if isinstance(custom, list) else custom))


with scatter_tab:
    st.caption(
        "Each dot is a test image placed at the mean of q(z|x). Click a dot to see it and what "
        "the encoder is unsure about; click legend entries to hide classes."
    )
    picked = st.session_state.get("picked")
    if not picked or picked[0] != choice or picked[1] >= count:
        picked = None
    names = label_names(config)
    fig = latent_scatter(points, labels[:count].tolist(), names, axis_titles(projection))
    if picked:
        index = picked[1]
        mu, sigma = (v[0] for v in posterior(model, images[index : index + 1]))
        draw_posterior(fig, projection, mu, sigma, f"#{index}", "black")
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.plotly_chart(fig, on_select=remember_click, selection_mode="points", key="scatter")
    with right:
        if not picked:
            st.info(
                "Click a point in the scatter to see that test image, its reconstruction and its posterior."
            )
        else:
            label = int(labels[index])
            st.subheader(f"Test image #{index}")
            st.write(f"Label: **{names[label] if names else label}**")
            st.image(
                samples_picture(model, images[index], mu, sigma, scale=3),
                caption="input | reconstruction | 8 draws z ~ q(z|x), decoded",
                output_format="PNG",
            )
            coords = ", ".join(f"{v:.3f}" for v in mu.tolist())
            spread = ", ".join(f"{v:.3f}" for v in sigma.tolist())
            st.markdown(f"Posterior mean z = ({coords})  \nstandard deviation = ({spread})")
            st.caption(
                "On the scatter: the 1-sigma (solid) and 2-sigma (dashed) ellipses of q(z|x). "
                "Where the draws differ, the encoder is unsure; a wide ellipse over several "
                "classes means the image could pass for any of them."
            )

with prior_tab:
    show_prior_map(key, dataset, projection)
