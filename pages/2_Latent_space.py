"""Latent space: the encoded test set as a scatter; click a point to see the image and its
reconstruction."""

import streamlit as st
import torch

from explorer.images import make_grid, png_bytes
from explorer.latent import decode_mean
from explorer.plots import latent_scatter
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
count = st.sidebar.slider("Test images shown", 1000, 10_000, 5000, step=1000)
st.title("Latent space")
st.caption(
    "Each dot is a test image placed at the mean of q(z|x). Click a dot to see it; "
    "click legend entries to hide classes."
)

means, projection, labels = latent_map(*model_key(choice), dataset)
images = test_images(dataset)[0]
points = projection(means[:count]).tolist()
if projection.kind == "pca":
    ev = projection.explained
    st.info(
        f"This model has {model.config.latent_dim} latent dimensions; the scatter shows the first two "
        f"principal components of the encoded means, which explain {ev[0]:.0%} and {ev[1]:.0%} "
        "of their variance."
    )
    axes = (f"PC1 ({ev[0]:.0%})", f"PC2 ({ev[1]:.0%})")
else:
    axes = ("z1", "z2")


def remember_click() -> None:
    picked = st.session_state["scatter"].selection.get("points", [])
    if picked and "customdata" in picked[0]:
        custom = picked[0]["customdata"]
        st.session_state["picked"] = (choice, int(custom[0] if isinstance(custom, list) else custom))


left, right = st.columns([3, 1], gap="medium")
with left:
    fig = latent_scatter(points, labels[:count].tolist(), label_names(config), axes)
    st.plotly_chart(fig, on_select=remember_click, selection_mode="points", key="scatter")
with right:
    picked = st.session_state.get("picked")
    if not picked or picked[0] != choice or picked[1] >= count:
        st.info("Click a point in the scatter to see that test image and its reconstruction.")
    else:
        index = picked[1]
        x = images[index : index + 1]
        recon = decode_mean(model, means[index : index + 1])
        names = label_names(config)
        label = int(labels[index])
        st.subheader(f"Test image #{index}")
        st.write(f"Label: **{names[label] if names else label}**")
        st.image(
            png_bytes(make_grid(torch.cat([x, recon]), 2), scale=5),
            caption="input | reconstruction",
            output_format="PNG",
        )
        coords = ", ".join(f"{v:.3f}" for v in means[index].tolist())
        st.write(f"Posterior mean z = ({coords})")
