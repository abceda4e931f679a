"""The Latent space page's second tab: the aggregate posterior against the prior, its holes, and
the KL of each latent dimension with the active units."""

from __future__ import annotations

import streamlit as st

from explorer.evaluate import ACTIVE_UNIT_THRESHOLD, Projection
from explorer.explore.density import DENSITY_IMAGES, HOLE_RADIUS, HOLE_RATIO
from explorer.pictures.latent_plots import prior_vs_posterior
from explorer.pictures.plots import kl_bars
from explorer.ui.models import derived_figures, test_images
from explorer.ui.scatter import axis_titles
from explorer.ui.widgets import chart


def aggregate_density(path: str, mtime_ns: int, dataset: str, whole_map: bool = False):
    """The aggregate posterior of DENSITY_IMAGES test images and the prior in the map's plane
    (``explorer.explore.density.density_map``), stored beside the model
    (``explorer.explore.derived``): over the prior's 4 sigma (the Prior tab), or ``whole_map`` over
    every code of the scatter."""
    return derived_figures(path, mtime_ns, "densities").densities["map" if whole_map else "prior"]


def prior_map(path: str, mtime_ns: int, dataset: str):
    """(density map, KL per dimension, variance of the means per dimension) for the model."""
    figures = derived_figures(path, mtime_ns, "units")
    return aggregate_density(path, mtime_ns, dataset), figures.kl.tolist(), figures.variance.tolist()


def show_prior_map(key: tuple[str, int], dataset: str, projection: Projection) -> None:
    """The aggregate posterior against the prior, the holes, and KL per dimension with active
    units: the Latent space page's second tab."""
    dmap, kl, variance = prior_map(*key, dataset)
    averaged = min(DENSITY_IMAGES, len(test_images(dataset)[1]))  # a smaller test set: all of it
    st.caption(
        "Blue: the aggregate posterior q(z), the average of q(z|x) over "
        f"{averaged:,} test images (log scale), each widened to the spacing of its neighbours' "
        "codes, so that gaps only more images would fill are not taken for holes. Black circles: "
        "the prior N(0, I) at 1, 2 and 3 sigma. Red: holes, where the prior puts mass but the data "
        f"almost none (q(z) < {HOLE_RATIO:g} p(z) inside {HOLE_RADIUS:g} sigma). Samples drawn from "
        "the prior in a hole decode to images unlike the data."
    )
    left, right = st.columns([3, 2], gap="medium")
    with left:
        chart(st, prior_vs_posterior(dmap, axis_titles(projection)), key="prior-map")
    with right:
        st.metric(
            "Prior mass in holes",
            f"{dmap.hole_mass:.1%}",
            help="Probability that z ~ N(0, I) lands in a red region of the map",
        )
        active = sum(v > ACTIVE_UNIT_THRESHOLD for v in variance)
        inactive = [f"z{j + 1}" for j, v in enumerate(variance) if v <= ACTIVE_UNIT_THRESHOLD]
        st.metric(
            "Active units",
            f"{active} of {len(kl)}",
            help=f"Var over x of E[z_j] above {ACTIVE_UNIT_THRESHOLD} (Burda et al.)",
        )
        chart(st, kl_bars(kl, variance, ACTIVE_UNIT_THRESHOLD), key="kl-bars")
        st.caption(
            f"KL(q(z_j|x) || N(0, 1)) per latent dimension, averaged over the test set, "
            f"{sum(kl):.2f} nats in all."
            + (
                f" Inactive units: {', '.join(inactive)} (their bars, grey, have almost no height): "
                "the encoder ignores them and the decoder gets no information through them."
                if active < len(kl)
                else " Every unit is active."
            )
        )
        if projection.kind == "pca":
            st.caption(
                "The map is drawn in the scatter's principal-component plane; the prior "
                "N(0, I) stays N(0, I) there, centred where z = 0 lands."
            )
