"""The encoded test set as a scatter to draw on, shared by the Latent space, Reconstruct, Draw and
Interpolate pages, and a posterior q(z|x) drawn on it as 1- and 2-sigma ellipses."""

from __future__ import annotations

import torch

from explorer.latent import Projection
from explorer.latent_plots import add_outline, add_points, latent_scatter
from explorer.posterior import deterministic, posterior_ellipses
from explorer.ui.models import MAP_POINTS, latent_map


def axis_titles(projection: Projection) -> tuple[str, str]:
    """The scatter's axis names: z1, z2, or the principal components with their share of variance."""
    if projection.kind == "pca":
        ev = projection.explained
        return f"PC1 ({ev[0]:.0%})", f"PC2 ({ev[1]:.0%})"
    return "z1", "z2"


def base_scatter(path: str, mtime_ns: int, dataset: str, names, count: int = MAP_POINTS, height: int = 460):
    """The encoded test set (first ``count`` images) as a scatter to draw things on, and its
    projection."""
    means, projection, labels = latent_map(path, mtime_ns, dataset)
    fig = latent_scatter(
        projection(means[:count]).tolist(),
        labels[:count].tolist(),
        names,
        axis_titles(projection),
        height=height,
    )
    return fig, projection


def draw_posterior(
    fig, projection: Projection, mu: torch.Tensor, sigma: torch.Tensor, name: str, colour: str
) -> None:
    """The 1- and 2-sigma ellipses of q(z|x) and a marker at its mean, on a latent scatter (an
    autoencoder's code: the marker alone)."""
    if deterministic(sigma):
        add_points(fig, projection(mu[None]).tolist(), [name], colour)
        return
    outlines = posterior_ellipses(projection, mu, sigma)
    add_outline(fig, outlines[1.0], f"{name}: 1 sigma", colour, "solid", group=name)
    add_outline(fig, outlines[2.0], f"{name}: 2 sigma", colour, "dash", group=name)
    add_points(fig, projection(mu[None]).tolist(), [name], colour)
