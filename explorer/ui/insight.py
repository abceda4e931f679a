"""Page pieces for the posterior, strangers and the prior-vs-posterior map, shared by the Latent
space, Reconstruct, Draw and Interpolate pages; the figures' numbers come from explorer.insight."""

from __future__ import annotations

import math

import streamlit as st
import torch

from explorer.datasets import spec
from explorer.evaluate import ACTIVE_UNIT_THRESHOLD, latent_stats
from explorer.images import make_grid, png_bytes
from explorer.insight import (
    density_map,
    posterior,
    posterior_ellipses,
    posterior_samples,
)
from explorer.latent import Projection
from explorer.latent_plots import add_outline, add_points, latent_scatter
from explorer.model import VAE
from explorer.strangers import SOURCE, STRANGER_QUANTILE, Reference, stranger_message
from explorer.ui.models import (
    MAP_POINTS,
    cached_model,
    latent_map,
    stranger_detector,
    test_images,
    test_reconstructions,
)

DENSITY_IMAGES = 5000  # test images whose posteriors make up the aggregate posterior map
SAMPLES = 8  # draws from q(z|x) shown beside the mean


@st.cache_data(show_spinner="Mapping the aggregate posterior...", max_entries=8)
def prior_map(path: str, mtime_ns: int, dataset: str):
    """(density map, KL per dimension, variance of the means per dimension) for the model."""
    model = cached_model(path, mtime_ns)
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


GALLERY_COLUMNS = 8  # test images per row on the Reconstruct page


def reconstruction_gallery(rec, picked: torch.Tensor, labels: torch.Tensor, names) -> None:
    """Test images (``picked`` of the Reconstruction ``rec``), each above its reconstruction with
    its index, label and ELBO under it, in rows of ``GALLERY_COLUMNS``."""
    for start in range(0, len(picked), GALLERY_COLUMNS):
        row = picked[start : start + GALLERY_COLUMNS].tolist()
        for column, i in zip(st.columns(GALLERY_COLUMNS), row):
            k = int(labels[i])
            column.image(
                png_bytes(make_grid(torch.stack([rec.inputs[i], rec.outputs[i]]), 1), scale=3),
                caption=f"#{i} · {names[k] if names else k} · ELBO {float(rec.elbo[i]):.1f}",
                output_format="PNG",
            )


def reference(path: str, mtime_ns: int, dataset: str) -> Reference:
    """The test set as the yardstick of an image the user gives: per-image ELBO and the stranger
    detector, both cached per model."""
    return Reference(
        test_reconstructions(path, mtime_ns, dataset).elbo, stranger_detector(path, mtime_ns, dataset)
    )


POSTERIOR_AS_TEXT = 4  # latent sizes up to this are written out; wider ones drawn as bars


def posterior_bars(mu: torch.Tensor, sigma: torch.Tensor, key: str) -> None:
    """One image's q(z|x): its mean and standard deviation, in words for a few dimensions and
    as bars with error bars for more."""
    if len(mu) <= POSTERIOR_AS_TEXT:
        z = ", ".join(f"{v:.2f}" for v in mu.tolist())
        spread = ", ".join(f"{v:.2f}" for v in sigma.tolist())
        st.markdown(f"q(z|x): mean ({z}), standard deviation ({spread})")
        return
    from explorer.plots import posterior_bars as bars

    st.caption(f"q(z|x) over its {len(mu)} dimensions: mean, with one standard deviation either side")
    st.plotly_chart(bars(mu.tolist(), sigma.tolist()), key=f"posterior-{key}")


def verdict_line(model: VAE, x: torch.Tensor, key: tuple[str, int], dataset: str) -> None:
    """One image's ELBO percentile and stranger verdict in a line, with the warning for a
    stranger: for places that show the image small (the ends of an interpolation)."""
    judged = reference(*key, dataset).judge(model, x[None])[0]
    if not math.isfinite(judged.elbo):
        st.error("The model's ELBO for this image is not finite: its weights have diverged.")
        return
    verdict = judged.verdict
    st.markdown(
        f"ELBO {judged.elbo:.1f} nats (higher than {judged.elbo_percentile:.0f}% of the test images); "
        f"stranger than {verdict.percentile:.0f}% of them: "
        + ("**a stranger**" if verdict.stranger else "typical enough"),
        help=f"Strangeness says whether the image is like the training data, which the ELBO alone "
        f"cannot. It is {SOURCE}.",
    )
    warning = stranger_message(verdict, spec(dataset).item)
    if warning:
        st.warning(warning, icon=":material/help:")


def image_report(model: VAE, x: torch.Tensor, key: tuple[str, int], dataset: str, name: str):
    """Show one image the user gave (upload or drawing): input, reconstruction and draws from its
    posterior, its ELBO as a percentile of the test set's, and whether it is a stranger to the
    model (with the reason, and a warning when it is). Returns (mu, sigma) of q(z|x) for the
    caller's scatter."""
    mu, sigma = (v[0] for v in posterior(model, x[None]))
    judged = reference(*key, dataset).judge(model, x[None])[0]
    st.image(
        samples_picture(model, x, mu, sigma),
        caption=f"{name}: input | reconstruction (posterior mean) | {SAMPLES} draws z ~ q(z|x)",
        output_format="PNG",
    )
    if not math.isfinite(judged.elbo):
        st.error(
            "The model's ELBO for this image is not finite: its weights have diverged. Pick another model."
        )
        return mu, sigma
    verdict = judged.verdict
    st.markdown(
        f"ELBO **{judged.elbo:.2f}** nats: higher than **{judged.elbo_percentile:.1f}%** of the test "
        "images.  \n"
        f"Stranger than **{verdict.percentile:.1f}%** of the test images: "
        f"{'**a stranger**' if verdict.stranger else 'typical enough'} "
        f"(the warning starts at {100 * STRANGER_QUANTILE:.0f}%)"
    )
    st.caption(
        "Strangeness says whether the image is like the training data, which the ELBO alone cannot: "
        f"a model can give images of another kind a higher ELBO than its own. It measures {SOURCE}."
    )
    warning = stranger_message(verdict, spec(dataset).item)
    if warning:
        st.warning(warning, icon=":material/help:")
    posterior_bars(mu, sigma, name)
    return mu, sigma


def show_prior_map(key: tuple[str, int], dataset: str, projection: Projection) -> None:
    """The aggregate posterior against the prior, the holes, and KL per dimension with active
    units: the Latent space page's second tab."""
    from explorer.latent_plots import prior_vs_posterior
    from explorer.plots import kl_bars

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
            "Active units",
            f"{active} of {len(kl)}",
            help=f"Var over x of E[z_j] above {ACTIVE_UNIT_THRESHOLD} (Burda et al.)",
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
