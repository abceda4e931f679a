"""Interpolate: walk through latent space from one image to another, in a straight line or
along a great circle, and see each step decoded."""

import streamlit as st
import torch

from explorer.explore.latent import decode_mean, interpolate
from explorer.explore.posterior import posterior
from explorer.pictures.images import gif_bytes, make_grid, png_bytes, upscale
from explorer.pictures.overlays import add_path
from explorer.ui.ends import interpolation_end
from explorer.ui.models import dataset_of, label_names, map_points_words, model_key, model_or_stop
from explorer.ui.scatter import base_scatter
from explorer.ui.widgets import chart

st.set_page_config(page_title="Interpolate - VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dataset, names = dataset_of(config), label_names(config)
key = model_key(choice)
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
    f"Pick two images; their {'posterior means' if model.config.variational else 'codes'} are joined "
    "by a path in latent space and each step is decoded. The ends of each strip are the decoded means, "
    "not the inputs."
)

cols = st.columns(2)
a = interpolation_end(cols[0], "A", 0, model, key, dataset, names, config)
b = interpolation_end(cols[1], "B", 1, model, key, dataset, names, config)
if a is None or b is None:
    st.stop()
if not methods:
    st.info("Choose at least one path in the sidebar.")
    st.stop()

mu, _ = posterior(model, torch.stack([a[0], b[0]]))
fig, projection = base_scatter(*key, dataset, names)
colours = {"linear": "black", "spherical": "#d62728"}
off = ""  # an end past the map's axes, in words
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
    off = add_path(fig, projection(path).tolist(), f"{method} path", colours[method]) or off
on_map, beside = st.columns([3, 2], gap="medium")  # the page's width would stretch z1 (one scale)
chart(on_map, fig, key="interp-map")
beside.caption(
    f"The paths on the map, from A to B over {map_points_words(dataset)}"
    + (f"; {off}: the triangle at the edge points to it, and the path runs off the map. " if off else ". ")
    + "For models with more than two latent dimensions the map shows the paths projected onto its "
    "principal components."
)
