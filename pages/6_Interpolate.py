"""Interpolate: walk through latent space from one image to another, in a straight line or
along a great circle, and see each step decoded."""

import streamlit as st
import torch

from explorer.errors import ImageError
from explorer.images import make_grid, png_bytes, upscale
from explorer.insight import gif_bytes, interpolate, posterior
from explorer.latent import decode_mean
from explorer.plots import add_path
from explorer.preprocess import UPLOAD_TYPES, preprocess_image
from explorer.ui.insight import base_scatter, verdict_line
from explorer.ui.models import dataset_of, label_names, model_key, model_or_stop, test_images

st.set_page_config(page_title="Interpolate - VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dataset, names = dataset_of(config), label_names(config)
key = model_key(choice)
images, labels = test_images(dataset)
steps = st.sidebar.slider("Steps", 3, 24, 10)
methods = st.sidebar.multiselect(
    "Paths",
    ["linear", "spherical"],
    default=["linear", "spherical"],
    help="linear: a straight line between the two posterior means. spherical (slerp): along the "
    "great circle, with the norm changing linearly, which stays where the prior has its mass.",
)
st.title("Interpolate")
st.caption(
    "Pick two images; their posterior means are joined by a path in latent space and each step "
    "is decoded. The ends of each strip are the decoded means, not the inputs."
)

SOURCES = ["test image", "upload", "drawing"]


def endpoint(column, label: str, default_index: int):
    """(image (C, H, W), caption) for one end, shown with its ELBO and stranger verdict, or None
    with a message shown."""
    with column:
        st.subheader(label)
        available = SOURCES if "drawing" in st.session_state else SOURCES[:2]
        source = st.radio(f"{label} from", available, horizontal=True, key=f"src-{label}")
        chosen = None
        if source == "test image":
            index = st.number_input(
                "Test index",
                0,
                len(images) - 1,
                default_index,
                key=f"idx-{label}",
                help="Any image of the test set, e.g. one you clicked on the Latent space page",
            )
            k = int(labels[index])
            chosen = images[index], f"test #{index} ({names[k] if names else k})"
        elif source == "drawing":
            chosen = st.session_state["drawing"], "your drawing"
        else:
            upload = st.file_uploader("An image", type=UPLOAD_TYPES, key=f"up-{label}")
            if upload is None:
                st.info("Upload an image for this end.")
                return None
            try:
                chosen = preprocess_image(upload.getvalue(), dataset), upload.name
            except ImageError as exc:
                st.error(f"{upload.name}: {exc}")
                return None
        st.image(png_bytes(make_grid(chosen[0][None], 1), scale=3), caption=chosen[1], output_format="PNG")
        verdict_line(model, chosen[0], key, dataset)
        return chosen


cols = st.columns(2)
a = endpoint(cols[0], "A", 0)
b = endpoint(cols[1], "B", 1)
if a is None or b is None:
    st.stop()
if not methods:
    st.info("Choose at least one path in the sidebar.")
    st.stop()

mu, _ = posterior(model, torch.stack([a[0], b[0]]))
fig, projection = base_scatter(*key, dataset, names)
colours = {"linear": "black", "spherical": "#d62728"}
for method in methods:
    path = interpolate(mu[0], mu[1], steps, method)
    decoded = decode_mean(model, path)
    st.markdown(f"**{method.capitalize()}** path, {steps} steps")
    strip = make_grid(decoded, steps)
    st.image(png_bytes(strip, scale=3), output_format="PNG")
    d1, d2, _ = st.columns([1, 1, 3])
    stem = f"interpolation-{method}-{steps}"
    d1.download_button(f"PNG strip ({method})", png_bytes(strip, scale=3), f"{stem}.png", "image/png")
    frames = [upscale(make_grid(img[None], 1, pad=0), 4) for img in decoded]
    d2.download_button(f"Animated GIF ({method})", gif_bytes(frames), f"{stem}.gif", "image/gif")
    add_path(fig, projection(path).tolist(), f"{method} path", colours[method])
st.plotly_chart(fig, key="interp-map")
st.caption(
    "The paths on the map, from A to B over 2,000 encoded test images. For models with more "
    "than two latent dimensions the map shows the paths projected onto its principal components."
)
