"""The Latent space page's first tab: the encoded test set as a scatter, and what a click on a
dot shows (the image, its reconstruction, its posterior as ellipses on a close-up of the map, and
draws). The map's figure does not change when a dot is clicked: a changed figure is a new chart in
Streamlit, which forgets the user's zoom and selection and runs the page a second time."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from explorer.evaluate import Projection
from explorer.explore.posterior import posterior
from explorer.model import VAE
from explorer.pictures.edges import include_points
from explorer.pictures.latent_plots import latent_scatter, select_points
from explorer.ui.explore import neighbours_panel, selected_indices, selection_panel, test_set_downloads
from explorer.ui.image_report import posterior_bars, samples_picture
from explorer.ui.models import chosen_map, encoded_test_set, label_names, test_images
from explorer.ui.scatter import axis_titles, close_up
from explorer.ui.share import PICKED, forget_point
from explorer.ui.view_keeper import keep_view
from explorer.ui.widgets import chart

DECADES = 3.0  # density contours: from the peak of log10 q(z) down this far
SELECTED = "selected"  # session state: (model choice, [test indices]) of a box or lasso selection
DRAWN = "map-drawn"  # session state: (the map as drawn, the test index its figure marks)


def _marked(drawn: tuple, picked: int | None) -> int | None:
    """The test image the map's own figure marks: the chosen one when the map is drawn afresh (a
    link, another model or map, a return to the page), then kept while the chart lives, so that a
    click, which the chart marks itself, leaves the figure as it was."""
    last = st.session_state.get(DRAWN)
    if last is None or last[0] != drawn or "scatter" not in st.session_state:
        last = st.session_state[DRAWN] = (drawn, picked)
    return last[1]


def _remember_click(choice: str) -> None:
    """The scatter's selection callback: keep the clicked dot, or the box or lasso selection (in
    session state: the pages below the map read them, and a new map starts without a selection)."""
    selection = st.session_state["scatter"].selection
    many = selected_indices(selection)
    if many is not None:
        st.session_state[SELECTED] = (choice, many)
        st.toast(f"Selected {len(many):,} test images: their gallery is below the map.")
        return
    picked = selection.get("points", [])
    if picked and "customdata" in picked[0]:
        custom = picked[0]["customdata"]
        st.session_state[PICKED] = (choice, int(custom[0] if isinstance(custom, list) else custom))
        # on a phone the panel is under the map, off the screen: a tap seemed to do nothing
        st.toast(f"Test image #{st.session_state[PICKED][1]}: beside the map (under it on a phone).")


# Where the contours go when they are off: the same number of traces either way, so that plotly
# keeps a zoom across the switch (a trace added or taken away reset it to the whole map).
_PLACEHOLDER = {"x": [], "y": [], "visible": False, "showlegend": False, "hoverinfo": "skip"}


def add_density(
    fig, key: tuple[str, int], dataset: str, projection, points: torch.Tensor, variational: bool,
    shown: bool = True,
) -> None:  # fmt: skip
    """Contours of the aggregate posterior over the scatter: the exact mixture of the test set's
    q(z|x) in a PCA or latent plane (``explorer.explore.density``), or, for an autoencoder's codes and
    for t-SNE and UMAP maps (which carry no Gaussians), a smoothed histogram of the points
    (``code_density``), with lines at the same levels of log10 density. The
    axes take in the outermost contour whether or not it is ``shown``, so that the map holds still
    (and keeps a zoom) when the contours are switched on or off."""
    if variational and isinstance(projection, Projection):
        from explorer.ui.prior_map import aggregate_density

        # The stored grid reaches past the farthest code (explorer.explore.density.contour_reach: no contour
        # is cut flat at its edge), and the lines span DECADES below the peak: further down they
        # piled into a black band.
        dmap = aggregate_density(*key, dataset, whole_map=True)
        log_q = np.log10(np.maximum(dmap.aggregate, 1e-12))
        top = float(log_q.max())
        rows, cols = np.nonzero(log_q >= top - DECADES)  # the outermost line: on the map, not cut
        if len(rows):
            include_points(
                fig, [[dmap.xs[cols.min()], dmap.ys[rows.min()]], [dmap.xs[cols.max()], dmap.ys[rows.max()]]]
            )
        if not shown:
            fig.add_trace(_PLACEHOLDER | {"type": "contour"})
            return
        trace = {"type": "contour", "x": dmap.xs.tolist(), "y": dmap.ys.tolist(),
                 "z": log_q.round(3).tolist(), "autocontour": False, "name": "q(z), log10",
                 "contours": {"start": top - DECADES, "end": top - 0.25, "size": 0.5}}  # fmt: skip
    elif shown and (drawn := code_density(points)) is not None:
        xs, ys, log_q = drawn
        top = float(log_q.max())
        trace = {"type": "contour", "x": xs.tolist(), "y": ys.tolist(), "z": log_q.round(3).tolist(),
                 "autocontour": False, "name": "density of the codes, log10",
                 "contours": {"start": top - DECADES, "end": top - 0.25, "size": 0.5}}  # fmt: skip
    else:
        fig.add_trace(_PLACEHOLDER | {"type": "contour"})
        return
    grey = [[0, "#444444"], [1, "#444444"]]  # one dark grey: lines that show over any dots
    trace.update(colorscale=grey, showscale=False, hoverinfo="skip", line={"width": 1.2}, showlegend=False)
    trace["contours"] = {**trace.get("contours", {}), "coloring": "lines"}
    fig.add_trace(trace)


BINS = 60  # histogram bins across the codes' central 98% and a quarter of it each side, each axis


def code_density(points) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A density drawn from the points themselves, for an autoencoder's codes and a t-SNE or UMAP
    map (which carry no Gaussians): a histogram of ``points`` (N, 2) over BINS x BINS cells
    spanning their 1st to 99th percentiles and a quarter of that span each side, smoothed by a
    Gaussian of one cell; returns the cells' centres xs (BINS,), ys (BINS,) and log10 of the
    density (BINS, BINS; rows along y; per unit area), or None for fewer than 2 points. plotly's
    own histogram contours spanned every point with levels of linear counts: mnist-ae-z2's codes
    reach +-100 while most lie within +-5, and its contours were one blot under the dots."""
    from scipy.ndimage import gaussian_filter

    points = np.asarray(points, dtype=float)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) < 2:
        return None
    low, high = np.percentile(points, [1, 99], axis=0)
    span = np.maximum(high - low, 1e-6)
    low, high = low - span / 4, high + span / 4
    counts, xedges, yedges = np.histogram2d(
        points[:, 0], points[:, 1], bins=BINS, range=[[low[0], high[0]], [low[1], high[1]]]
    )
    area = (xedges[1] - xedges[0]) * (yedges[1] - yedges[0])
    density = gaussian_filter(counts.T, 1.0) / (len(points) * area)
    centres = lambda edges: (edges[:-1] + edges[1:]) / 2  # noqa: E731
    return centres(xedges), centres(yedges), np.log10(np.maximum(density, 1e-12))


def test_set_scatter(
    model: VAE,
    config: dict,
    choice: str,
    key: tuple[str, int],
    dataset: str,
    count: int,
    density: bool = False,
) -> None:
    """The first ``count`` encoded test images as a scatter to click (beside it: the image, its
    reconstruction, posterior and nearest neighbours) or to select from with the box or lasso
    (below: the selection's gallery, figures and downloads); ``density``: the aggregate
    posterior's contours over it."""
    means, projection, labels = chosen_map(*key, dataset)
    names = label_names(config)
    variational = model.config.variational
    st.caption(
        "Each dot is a test image placed at the mean of q(z|x). Click a dot to see it and what "
        "the encoder is unsure about; click legend entries to hide classes."
        if variational
        else "Each dot is a test image placed at its code z = f(x) (an autoencoder: one point, no "
        "spread). Click a dot to see it and its reconstruction; click legend entries to hide classes."
    )
    picked = st.session_state.get(PICKED)
    if picked and picked[0] == choice and picked[1] >= len(labels):
        st.warning(
            f"There is no test image #{picked[1]}: the test images run from #0 to #{len(labels) - 1:,}."
        )
        forget_point()  # and out of the address, which must not share it on
    if not picked or picked[0] != choice or picked[1] >= len(labels):
        picked = None  # (an image past the dots shown is still shown: a link may name any)
    points = projection(means[:count])
    fig = latent_scatter(points.tolist(), labels[:count].tolist(), names, axis_titles(projection))
    add_density(fig, key, dataset, projection, points, variational, shown=density)
    marked = _marked((choice, projection.kind, density, count), picked[1] if picked else None)
    if marked is not None and marked < count:
        select_points(fig, [marked])
    left, right = st.columns([3, 2], gap="medium")
    with left:
        select = ("points", "box", "lasso")
        chart(st, fig, on_select=lambda: _remember_click(choice), selection_mode=select, key="scatter")
        keep_view(st, "scatter", f"{choice}|{projection.kind}|{count}")  # the density toggle redraws it
        st.caption("Click a dot, or pick the box or lasso in the chart's toolbar to select a region.")
    _below_map(model, choice, key, dataset, names)
    with right:
        _beside_map(model, key, dataset, picked[1] if picked else None, (points, labels[:count], names))


def _beside_map(model: VAE, key: tuple[str, int], dataset: str, index: int | None, dots) -> None:
    """Beside the map: the clicked test image, its reconstruction and draws, the map around it with
    its posterior's ellipses, its posterior and its nearest neighbours (or how to click one)."""
    if index is None:
        st.info(
            "Click a point in the scatter to see that test image, its reconstruction, its "
            f"{'posterior' if model.config.variational else 'code'} and its nearest neighbours."
        )
        return
    means, projection, _ = chosen_map(*key, dataset)
    images = test_images(dataset)[0]
    sigma = posterior(model, images[index : index + 1])[1][0]
    mu = means[index]  # the very code the map placed (a t-SNE map keeps its place for it)
    _clicked(model, dataset, index, (mu, sigma), dots[2])
    _close_up(model, dots, projection, (mu, sigma), index)
    posterior_bars(mu, sigma, f"test-{index}")
    code = encoded_test_set(*key, dataset)[index]
    neighbours_panel(model, key, dataset, images[index], code, index, dots[2])


def _below_map(model: VAE, choice: str, key: tuple[str, int], dataset: str, names) -> None:
    """Under the map: the box or lasso selection's panel, and the downloads of every code."""
    selected = st.session_state.get(SELECTED)
    labels = test_images(dataset)[1]
    if selected and selected[0] == choice and selected[1]:
        with st.container(key="selection"):
            selection_panel(model, key, dataset, [i for i in selected[1] if i < len(labels)], names)
    with st.expander("Download the codes of the whole test set"):
        test_set_downloads(key, dataset, names)


def _clicked(model: VAE, dataset: str, index: int, posterior_of, names) -> None:
    """The clicked test image: its label, its reconstruction and draws from its posterior."""
    images, labels = test_images(dataset)
    mu, sigma = posterior_of
    variational = model.config.variational
    label = int(labels[index])
    st.subheader(f"Test image #{index}")
    st.write(f"Label: **{names[label] if names else label}**")
    st.image(
        samples_picture(model, images[index], mu, sigma, scale=3),
        caption="input | reconstruction | 8 draws z ~ q(z|x), decoded (in two rows)"
        if variational
        else "input | reconstruction",
        output_format="PNG",
    )


def _close_up(model: VAE, dots, projection, posterior_of, index: int) -> None:
    """The map around the clicked image, with its posterior's ellipses."""
    points, labels, names = dots
    mu, sigma = posterior_of
    titles = axis_titles(projection)
    fig = close_up(np.asarray(points), labels.tolist(), names, projection, mu, sigma, index, titles)
    chart(st, fig, key="close-up", config={"displayModeBar": False})
    st.caption(_close_up_caption(model, projection, index, shown=index < len(points)))


def _close_up_caption(model: VAE, projection, index: int, shown: bool) -> str:
    """What the close-up shows: the ellipses of q(z|x) on a linear map; the code alone else;
    ``shown``: whether the image is among the map's dots (a link may name one past them)."""
    dot = "its dot is marked on the map too" if shown else "past the images the map shows"
    where = f"The map around #{index} (the star; {dot})"
    if not model.config.variational:
        return f"{where}: an autoencoder's code, a point with no spread."
    if not isinstance(projection, Projection):
        return f"{where}: a t-SNE or UMAP map carries no ellipses (switch the map to PCA to see them)."
    return (
        f"{where}: the 1-sigma (solid) and 2-sigma (dashed) ellipses of q(z|x). A wide ellipse over "
        "several classes means the image could pass for any of them."
    )
