"""Manifold: the paper's Figure 4 grid, and sliders that decode one latent point."""

import streamlit as st

from explorer.config import encoder_trained
from explorer.explore.latent import grid_extent
from explorer.explore.traversals import informative_order
from explorer.pictures.plots import manifold_figure
from explorer.ui.beside import companion_picker, grid_values, grids_side_by_side, samples_side_by_side
from explorer.ui.live import live_decoder, runs_in_browser, server_decoder
from explorer.ui.manifold_grid import manifold_png, manifold_png_at
from explorer.ui.models import (
    dataset_of,
    latent_activity,
    latent_map,
    map_points_words,
    model_key,
    model_or_stop,
    scatter_picture,
    slider_reach,
)
from explorer.ui.widgets import chart, phone_first, phone_square

DECODER = "decode-any-point"

st.set_page_config(page_title="Manifold - VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dims = model.config.latent_dim
dataset = dataset_of(config)
key = model_key(choice)
kl, variance, active = latent_activity(*key, dataset)
if not encoder_trained(config):  # Monte Carlo EM: "inactive" would be the untrained encoder's word
    active = [True] * dims
variational = model.config.variational
n = st.sidebar.slider("Grid resolution", 5, 30, 20)
spans = ("the prior's quantiles", "the encoded test set")
span = st.sidebar.radio(
    "Grid spans", spans, index=0 if variational else 1, key=f"span-{choice}",
    help="The prior's quantiles: the paper's grid, where a VAE's samples come from. The encoded test "
    "set: from the 1st to the 99th percentile of the codes along each axis, where an autoencoder's "
    "decoder was trained.",
)  # fmt: skip
lo, hi = st.sidebar.slider(
    "Range on the unit square",
    0.01,
    0.99,
    (0.05, 0.95),
    step=0.01,
    help="mapped through the inverse Gaussian CDF, as in the paper",
    disabled=span != spans[0],
)
companion = companion_picker(choice, config)
axis_a, axis_b = 0, min(1, dims - 1)  # a 2-D model's grid reads like its map: z1 across, z2 up
if dims > 2:
    informative = informative_order(kl, variance)  # by KL; an autoencoder's by the codes' spread
    measure = lambda j: f"KL {kl[j]:.2f} nats" if variational else f"variance {variance[j]:.2f}"  # noqa: E731
    name = lambda j: f"z{j + 1} ({measure(j)}{'' if active[j] else ', inactive'})"  # noqa: E731
    axis_a = st.sidebar.selectbox(
        "Grid: horizontal dimension", informative, 0, format_func=name, key=f"ax-{choice}"
    )
    axis_b = st.sidebar.selectbox(
        "Grid: vertical dimension", informative, 1, format_func=name, key=f"ay-{choice}"
    )
    st.sidebar.caption("Ordered by KL: inactive units carry nothing, so a grid along one shows one image.")
st.title("Manifold")
on_map = "; the star shows where it lies" + (
    ", the dashed outline where the grid lies" if runs_in_browser(model) else ""
)
st.caption(
    "Decoded images over a grid of latent points (Kingma & Welling, Figure 4); the other "
    f"dimensions stay at 0. Beside the grid (above it on a phone): drag the sliders to decode any "
    f"point{on_map}."
)
phone_first(DECODER)  # on a phone the decoder comes first: its picture on the first screen
bad_range = span == spans[0] and lo >= hi  # the grid needs a range; the sliders on the right do not
values, corners = (None, None) if bad_range else grid_extent(n, lo, hi, (axis_a, axis_b), dims)
me = (choice, model, config)
if span == spans[1]:  # over the codes: the same values for the companion's grid below
    xs, ys = grid_values([me], dataset, [(axis_a, axis_b)], n, None)
    corners = [[xs[i] if j == axis_a else ys[k] if j == axis_b else 0.0 for j in range(dims)]
               for i, k in ((0, 0), (-1, 0), (-1, -1), (0, -1))]  # fmt: skip
else:
    xs = ys = values

left, right = st.columns([1, 1], gap="large")
with left:
    if bad_range:
        st.error("The range's low end must be below its high end; move the sliders apart.")
    elif dims > 1 and axis_a == axis_b:
        st.warning(
            f"Both axes are z{axis_a + 1}: such a grid only varies along one direction. Choose two "
            "different dimensions in the sidebar."
        )
    else:
        titles = (f"z{axis_a + 1}", f"z{axis_b + 1}" if dims > 1 else "")
        png = (
            manifold_png(*key, n, lo, hi, axis_a, axis_b)
            if span == spans[0]
            else manifold_png_at(*key, tuple(xs), tuple(ys), axis_a, axis_b)
        )
        phone_square("manifold-grid", margins=60)  # the chart's top and bottom margins, in px
        chart(st.container(key="manifold-grid"), manifold_figure(png, xs, ys, titles), key="grid")
        st.caption(f"{n} x {n} grid, z{axis_a + 1} across, z{axis_b + 1} up; the axes give z at the tiles")

projection = latent_map(*key, dataset)[1]
axes = "z1 across, z2 up" if projection.kind == "identity" else "PC1 across, PC2 up"
with right.container(key=DECODER):
    st.markdown("**Decode any point**")
    if runs_in_browser(model):
        live_decoder(
            key,
            dataset,
            key=f"live-{choice}",
            caption="Drag a slider: the point is decoded in your browser as you move it. Beside the image: "
            f"where it lies among {map_points_words(dataset)}, coloured by label ({axes}, "
            f"-{scatter_picture(*key, dataset).lim:g} to {scatter_picture(*key, dataset).lim:g}).",
            grid=corners,
        )
    else:
        server_decoder(
            model,
            informative_order(kl, variance),
            key=f"server-{choice}",
            reach=slider_reach(*key, dataset),
            on_map=(scatter_picture(*key, dataset), projection, axes),
            caption="the decoder's mean at this z (a convolutional decoder runs on the server: each "
            "slider move decodes once)",
        )

if companion is not None and not bad_range and not (dims > 1 and axis_a == axis_b):
    other = companion[1].config.latent_dim
    if other == dims:
        other_axes = (axis_a, axis_b)
    else:  # the companion's own two most informative dimensions
        o_kl, o_var, _ = latent_activity(*model_key(companion[0]), dataset)
        other_axes = tuple(informative_order(o_kl, o_var)[:2])
    st.divider()
    st.subheader(f"Beside {companion[0]}")
    axes_pair = [(axis_a, axis_b), other_axes]
    grids_side_by_side([me, companion], dataset, axes_pair, n, values if span == spans[0] else None)
    samples_side_by_side([me, companion])
