"""Page pieces for the posterior, strangers and the prior-vs-posterior map, shared by the Latent
space, Reconstruct, Draw and Interpolate pages; the figures' numbers come from explorer.insight."""

from __future__ import annotations

import streamlit as st
import torch

from explorer.evaluate import ACTIVE_UNIT_THRESHOLD, latent_stats
from explorer.images import make_grid, png_bytes
from explorer.insight import (
    density_map,
    percentile,
    posterior,
    posterior_ellipses,
    posterior_samples,
    stranger_message,
)
from explorer.latent import Projection, reconstruct
from explorer.model import VAE
from explorer.plots import add_outline, add_points, latent_scatter
from explorer.ui.models import _load, latent_map, test_images, test_reconstructions

DENSITY_IMAGES = 5000  # test images whose posteriors make up the aggregate posterior map
SAMPLES = 8  # draws from q(z|x) shown beside the mean


@st.cache_data(show_spinner="Mapping the aggregate posterior...", max_entries=8)
def prior_map(path: str, mtime_ns: int, dataset: str):
    """(density map, KL per dimension, variance of the means per dimension) for the model."""
    model = _load(path, mtime_ns)
    x = test_images(dataset)[0]
    projection = latent_map(path, mtime_ns, dataset)[1]
    mu, sigma = posterior(model, x[:DENSITY_IMAGES])
    variance, kl = latent_stats(model, x)
    return density_map(projection, mu, sigma), kl.tolist(), variance.tolist()


def axis_titles(projection: Projection) -> tuple[str, str]:
    if projection.kind == "pca":
        ev = projection.explained
        return f"PC1 ({ev[0]:.0%})", f"PC2 ({ev[1]:.0%})"
    return "z1", "z2"


def base_scatter(path: str, mtime_ns: int, dataset: str, names, count: int = 2000, height: int = 460):
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
    """The 1- and 2-sigma ellipses of q(z|x) and a marker at its mean, on a latent scatter."""
    outlines = posterior_ellipses(projection, mu, sigma)
    add_outline(fig, outlines[1.0], f"{name}: 1 sigma", colour, "solid", group=name)
    add_outline(fig, outlines[2.0], f"{name}: 2 sigma", colour, "dash", group=name)
    add_points(fig, projection(mu[None]).tolist(), [name], colour)


def samples_picture(
    model: VAE, x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, scale: int = 3
) -> bytes:
    """One PNG row: the input, the decoded posterior mean, then SAMPLES decoded draws of q(z|x)."""
    mean_image = model.decode(mu[None].to(next(model.parameters()).device)).mean.cpu()
    _, draws = posterior_samples(model, mu, sigma, SAMPLES)
    row = torch.cat([x.reshape(1, *draws.shape[1:]), mean_image, draws])
    return png_bytes(make_grid(row, len(row)), scale=scale)


def test_elbos(path: str, mtime_ns: int, dataset: str) -> torch.Tensor:
    """Per-image ELBO of the test set (grey levels, the same measure as an upload's)."""
    return test_reconstructions(path, mtime_ns, dataset).elbo


def image_report(model: VAE, x: torch.Tensor, key: tuple[str, int], dataset: str, name: str):
    """Show one image the user gave (upload or drawing): input, reconstruction and draws from its
    posterior, its ELBO as a percentile of the test set's, and a warning for strangers. Returns
    (mu, sigma) of q(z|x) for the caller's scatter."""
    result = reconstruct(model, x[None])
    mu, sigma = (v[0] for v in posterior(model, x[None]))
    elbo = float(result.elbo[0])
    pct = percentile(elbo, test_elbos(*key, dataset))
    st.image(
        samples_picture(model, x, mu, sigma),
        caption=f"{name}: input | reconstruction (posterior mean) | {SAMPLES} draws z ~ q(z|x)",
        output_format="PNG",
    )
    z = ", ".join(f"{v:.2f}" for v in mu.tolist())
    spread = ", ".join(f"{v:.2f}" for v in sigma.tolist())
    st.markdown(
        f"ELBO **{elbo:.2f}** nats: higher than **{pct:.1f}%** of the test images.  \n"
        f"q(z|x): mean ({z}), standard deviation ({spread})"
    )
    warning = stranger_message(pct)
    if warning:
        st.warning(warning, icon=":material/help:")
    return mu, sigma


def show_prior_map(key: tuple[str, int], dataset: str, projection: Projection) -> None:
    """The aggregate posterior against the prior, the holes, and KL per dimension with active
    units: the Latent space page's second tab."""
    from explorer.plots import kl_bars, prior_vs_posterior

    dmap, kl, variance = prior_map(*key, dataset)
    st.caption(
        "Blue: the aggregate posterior q(z), the average of q(z|x) over "
        f"{DENSITY_IMAGES:,} test images (log scale). Black circles: the prior N(0, I) at 1, 2 and 3 "
        "sigma. Red: holes, where the prior puts mass but the data almost none (q(z) < p(z) / 10 "
        "inside 2 sigma). Samples drawn from the prior in a hole decode to images unlike the data."
    )
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.plotly_chart(prior_vs_posterior(dmap, axis_titles(projection)), key="prior-map")
    with right:
        st.metric(
            "Prior mass in holes",
            f"{dmap.hole_mass:.1%}",
            help="Probability that z ~ N(0, I) lands in a red region of the map",
        )
        active = sum(v > ACTIVE_UNIT_THRESHOLD for v in variance)
        st.metric(
            "Active units", f"{active} of {len(kl)}", help="Var over x of E[z_j] above 0.01 (Burda et al.)"
        )
        st.plotly_chart(kl_bars(kl, variance, ACTIVE_UNIT_THRESHOLD), key="kl-bars")
        st.caption(
            f"KL(q(z_j|x) || N(0, 1)) per latent dimension, averaged over the test set, "
            f"{sum(kl):.2f} nats in all. Grey bars are inactive units: the encoder ignores them and "
            "the decoder gets no information through them."
        )
        if projection.kind == "pca":
            st.caption(
                "The map is drawn in the scatter's principal-component plane; the prior "
                "N(0, I) stays N(0, I) there, centred where z = 0 lands."
            )
