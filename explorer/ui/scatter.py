"""The encoded test set as a scatter to draw on, shared by the Latent space, Reconstruct, Draw and
Interpolate pages, a posterior q(z|x) drawn on it as 1- and 2-sigma ellipses, and the close-up of
the map around one test image."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from explorer.evaluate import Projection
from explorer.explore.posterior import deterministic, posterior_ellipses
from explorer.explore.projections import NAMES
from explorer.pictures.edges import at_edge, directions, off_map_words
from explorer.pictures.labels import label_points, star_sizes
from explorer.pictures.latent_plots import fitted_ranges, latent_scatter
from explorer.pictures.overlays import UPLOAD_COLOURS, add_outline, add_points, upload_colour, upload_symbol
from explorer.ui.models import MAP_POINTS, chosen_map


def axis_titles(projection) -> tuple[str, str]:
    """The scatter's axis names: z1, z2, the principal components with their share of variance,
    or a t-SNE or UMAP map's (unitless) axes."""
    if projection.kind in NAMES and projection.kind != "pca":
        return f"{NAMES[projection.kind]} 1", f"{NAMES[projection.kind]} 2"
    if projection.kind == "pca":
        ev = projection.explained
        return f"PC1 ({ev[0]:.0%})", f"PC2 ({ev[1]:.0%})"
    return "z1", "z2"


def base_scatter(path: str, mtime_ns: int, dataset: str, names, count: int = MAP_POINTS, height: int = 460):
    """The encoded test set (first ``count`` images) as a scatter to draw things on, and its
    projection."""
    means, projection, labels = chosen_map(path, mtime_ns, dataset)
    fig = latent_scatter(
        projection(means[:count]).tolist(),
        labels[:count].tolist(),
        names,
        axis_titles(projection),
        height=height,
    )
    return fig, projection


def star_caption(model, projection, whose: str) -> str:
    """What a star on the map is, for ``whose`` ("of one of your images"): the mean of q(z|x) and
    its ellipses for a VAE on a linear map; the code alone for an autoencoder, or on a t-SNE or
    UMAP map (which carries no ellipses)."""
    if not model.config.variational:
        return f"Each star is the code z = f(x) {whose} (an autoencoder: a point, no spread)"
    star = f"Each star is the mean of q(z|x) {whose}"
    if not isinstance(projection, Projection):
        return f"{star}, placed into the {NAMES[projection.kind]} map (no ellipses)"
    return f"{star}; the solid and dashed ellipses hold its 1- and 2-sigma regions"


def draw_posterior(
    fig,
    projection: Projection,
    mu: torch.Tensor,
    sigma: torch.Tensor,
    name: str,
    colour: str,
    label: bool = True,
    size: int = 18,
    symbol: str = "star",
) -> str:
    """The 1- and 2-sigma ellipses of q(z|x) and a marker at its mean, on a latent scatter (an
    autoencoder's code, or a t-SNE or UMAP map, which does not carry a Gaussian: the marker
    alone), named in a box on the map unless ``label`` is False; ``size``: the marker's. The map's
    axes stay the data's: a mean past them is drawn at the edge, a triangle pointing outward,
    without its ellipses. Returns where it lies in words when off the map ("off the map, beyond
    the right edge, at (41.20, -3.05)"), else ""."""
    mean = projection(mu[None]).tolist()
    way = directions(mean, fig.layout.xaxis.range, fig.layout.yaxis.range)[0]
    if not way.any() and not deterministic(sigma) and isinstance(projection, Projection):
        outlines = posterior_ellipses(projection, mu, sigma)
        add_outline(fig, outlines[1.0], f"{name}: 1 sigma", colour, "solid", group=name)
        add_outline(fig, outlines[2.0], f"{name}: 2 sigma", colour, "dash", group=name)
    add_points(fig, mean, [name], colour, symbol, label=label, size=size)  # the star over its ellipses
    return off_map_words(mean[0], way)


def draw_uploads(fig, projection, placed: list[tuple[str, torch.Tensor, torch.Tensor]]) -> str:
    """Your images ``placed`` ((name, mu, sigma) each) on one map: each its own colour (none of the
    classes'), its posterior's ellipses and star, and its number (1, 2, ...) in a box placed clear
    of every star and every other box, however close the images lie. The map's axes stay the
    test set's: an image whose code lies past them is drawn at the edge (``draw_posterior``) and
    the key says where it lies. Returns the key to the numbers, one line to show under the map."""
    means = [projection(mu[None]).tolist()[0] for _, mu, _ in placed]
    layout = fig.layout
    drawn, _ = at_edge(means, layout.xaxis.range, layout.yaxis.range)  # where the stars and boxes go
    sizes = star_sizes(drawn, layout.xaxis.range, layout.yaxis.range, layout.height or 460)
    where = [  # "" on the map, else where it lies
        draw_posterior(fig, projection, mu, sigma, name, upload_colour(i), False, size, upload_symbol(i))
        for i, ((name, mu, sigma), size) in enumerate(zip(placed, sizes))
    ]
    numbers = [str(i + 1) for i in range(len(placed))]
    label_points(fig, drawn.tolist(), numbers, [upload_colour(i) for i in range(len(placed))])
    words = [  # "magenta", and past ten images "magenta diamond"
        UPLOAD_COLOURS[upload_colour(i)] + ("" if upload_symbol(i) == "star" else f" {upload_symbol(i)}")
        for i in range(len(placed))
    ]
    plain = [name.replace("\\", "\\\\").replace("_", "\\_").replace("*", "\\*") for name, _, _ in placed]
    key = " · ".join(
        f"**{n}** {name} ({word}{'; ' + off if off else ''})"
        for n, name, word, off in zip(numbers, plain, words, where)
    )
    notes = [" (a triangle at the edge points to an image past the test set's dots)" if any(where) else ""]
    if len(set(sizes)) > 1:  # star_sizes: a mark drawn over earlier ones is smaller, their tips showing
        notes.append(" (a smaller mark lies over a larger one: images that close together on the map)")
    return key + "".join(notes)


CLOSE_UP = 0.03  # the close-up's half-width at least, as a share of the map's width


def close_up(
    points: np.ndarray, labels, names, projection, mu: torch.Tensor, sigma: torch.Tensor, index: int,
    titles: tuple[str, str],
):  # fmt: skip
    """The map around test image ``index``: the dots of ``points`` (N, 2, the map's plane; labels
    (N,)) near the mean of its q(z|x) (mu, sigma: (z,)), and its 1- and 2-sigma ellipses where the
    plane carries them. A figure of its own beside the map, so that the map's figure stays the same
    whatever is clicked (a changed figure is a new chart: the user's zoom gone, a second run)."""
    points = np.asarray(points, dtype=float)
    centre = np.asarray(projection(mu[None]), dtype=float)[0]
    xr, yr = fitted_ranges(points)
    half = CLOSE_UP * max(xr[1] - xr[0], yr[1] - yr[0])
    if not deterministic(sigma) and isinstance(projection, Projection):
        outer = posterior_ellipses(projection, mu, sigma, radii=(2.0,))[2.0]
        half = max(half, 2.5 * float(np.abs(outer - centre).max()))  # the ellipse, and its neighbourhood
    near = np.flatnonzero((np.abs(points - centre) <= 1.5 * half).all(axis=1))
    fig = latent_scatter(points[near].tolist(), np.asarray(labels)[near].tolist(), names, titles, height=300)
    for trace in fig.data:  # hover names the test image, not its place among the near dots
        trace.customdata = [int(near[k]) for k in trace.customdata]
    fig.update_layout(
        showlegend=False, dragmode=False, margin={"l": 40, "r": 10, "t": 10, "b": 40},
        xaxis_range=[float(centre[0] - half), float(centre[0] + half)],
        yaxis_range=[float(centre[1] - half), float(centre[1] + half)],
    )  # fmt: skip
    # no name in a box: on a close-up it covered the star and the 2-sigma ellipse (the caption
    # under it says which image the star is)
    draw_posterior(fig, projection, mu, sigma, f"#{index}", "black", label=False)
    # SVG, not WebGL: a few dozen dots, and a WebGL chart made anew on every click cost the
    # browser a new WebGL context each time (bench/pages.py: the click).
    data = [{**trace.to_plotly_json(), "type": "scatter"} for trace in fig.data]
    return go.Figure({"data": data, "layout": fig.layout}, _validate=False)
