"""A second model beside the first, on the Latent space and Manifold pages: an autoencoder next
to a VAE (why one latent space has holes and the other does not), or beta = 1 next to beta = 4.
The two scatters share their axes and carry the prior's circles; the two grids span the same
latent range; the same draws z ~ N(0, I) go through each decoder."""

from __future__ import annotations

import streamlit as st
import torch

from explorer.checkpoints import dataset_of
from explorer.errors import ExplorerError
from explorer.explore.latent import code_range
from explorer.model import VAE
from explorer.pictures.images import make_grid, png_bytes
from explorer.pictures.latent_plots import latent_scatter
from explorer.pictures.overlays import add_outline
from explorer.pictures.plots import manifold_figure
from explorer.ui.manifold_grid import manifold_png_at
from explorer.ui.models import (
    choices,
    dataset_of_choice,
    label_names,
    latent_map,
    load_model,
    model_key,
)
from explorer.ui.scatter import axis_titles
from explorer.ui.share import BESIDE, WIDGET_OF
from explorer.ui.share import NO_BESIDE as NONE
from explorer.ui.widgets import chart

PRIOR_RADII = (1.0, 2.0, 3.0)
SAMPLE_GRID = 6  # samples from N(0, I) shown per model: SAMPLE_GRID x SAMPLE_GRID


def describe(model: VAE, config: dict) -> str:
    """A model in a few words: 'VAE, beta 4', 'VAE, IWAE (K = 5)', 'VAE, wake-sleep', 'VAE, Monte
    Carlo EM (decoder only)', 'autoencoder', 'denoising autoencoder (mask 0.25)'."""
    train = config.get("train") or {}
    if model.config.model == "ae":
        return "autoencoder"
    if model.config.model == "dae":
        noise = f"{train.get('corruption', 'mask')} {train.get('corruption_level', 0.25):g}"
        return f"denoising autoencoder ({noise})"
    beta = train.get("beta", 1.0)
    return (
        "VAE"
        + (f", beta {beta:g}" if beta != 1 else "")
        + (f", IWAE (K = {train.get('samples', 1)})" if train.get("objective") == "iwae" else "")
        + ALGORITHM_WORDS.get(train.get("algorithm"), "")
    )


ALGORITHM_WORDS = {"wake-sleep": ", wake-sleep", "mcem": ", Monte Carlo EM (decoder only)"}  # AEVB: nothing


def _same_dataset(choice: str, dataset: str) -> bool:
    return dataset_of_choice(choice) == dataset


def companion_picker(choice: str, config: dict) -> tuple[str, VAE, dict] | None:
    """The sidebar's "Beside it" box: another model of the same dataset, or none. Returns
    (choice, model, config) of the companion, or None."""
    dataset = dataset_of(config)
    options = [NONE, *(c for c in choices() if c != choice and _same_dataset(c, dataset))]
    current = st.session_state.get(BESIDE, NONE)
    picked = st.sidebar.selectbox(
        "Beside it", options, index=options.index(current) if current in options else 0,
        key=WIDGET_OF[BESIDE],
        help="Another model of the same dataset, shown next to this one: an autoencoder beside a VAE, "
        "beta = 1 beside beta = 4.",
        # kept before the page reruns, so that the address (written near the page's top) has it
        on_change=lambda: st.session_state.update({BESIDE: st.session_state[WIDGET_OF[BESIDE]]}),
    )  # fmt: skip
    st.session_state[BESIDE] = picked
    if picked == NONE:
        return None
    try:
        model, companion_config = load_model(picked)
    except ExplorerError as exc:
        st.sidebar.error(f"Cannot show {picked!r} beside it: {exc}")
        return None
    return picked, model, companion_config


def _prior_circles(fig, projection) -> None:
    """N(0, I) at 1, 2 and 3 sigma in the scatter's plane (a PCA plane of orthonormal directions
    carries the prior as N(-mean C, I))."""
    centre = (-projection.mean @ projection.components).tolist()
    angle = torch.linspace(0, 2 * torch.pi, 73)
    for r in PRIOR_RADII:
        ring = torch.stack([centre[0] + r * angle.cos(), centre[1] + r * angle.sin()], 1).tolist()
        add_outline(fig, ring, "N(0, I): 1, 2, 3 sigma", "#444444", "dot", group="prior")
    for trace in fig.data[-len(PRIOR_RADII) + 1 :]:
        trace.showlegend = False


def scatters_side_by_side(models: list[tuple[str, VAE, dict]], dataset: str, count: int) -> None:
    """The two encoded test sets side by side, each on its own axes with the prior's circles (so
    that the circles show each map's scale), then samples of the same z ~ N(0, I) through each
    decoder."""
    maps = [latent_map(*model_key(choice), dataset) for choice, _, _ in models]
    vae_note = " (a VAE's: the mean of q(z|x))" if any(m.config.variational for _, m, _ in models) else ""
    points = [projection(means[:count]) for means, projection, _ in maps]
    st.caption(
        f"Each dot is a test image at its code{vae_note}. Dotted circles: the prior "
        "N(0, I) at 1, 2 and 3 sigma, where samples are drawn from; mind each map's scale. Codes "
        "outside the circles are never sampled; gaps inside them decode to blends."
    )
    columns = st.columns(2, gap="medium")
    names = label_names(models[0][2])
    for i, (column, (choice, model, config), p, (_, projection, labels)) in enumerate(
        zip(columns, models, points, maps)
    ):
        fig = latent_scatter(p.tolist(), labels[:count].tolist(), names, axis_titles(projection), height=460)
        _prior_circles(fig, projection)
        with column:
            st.markdown(f"**{choice}**: {describe(model, config)}")
            chart(st, fig, key=f"beside-scatter-{i}")
    samples_side_by_side(models)


def samples_side_by_side(models: list[tuple[str, VAE, dict]], seed: int = 0) -> None:
    """The same SAMPLE_GRID^2 draws z ~ N(0, I) decoded by each model (latent sizes may differ:
    each model gets the draws' first z dimensions, from one generator)."""
    st.markdown("**Samples: the same draws z ~ N(0, I) through each decoder**")
    if len({model.config.latent_dim for _, model, _ in models}) > 1:
        st.caption("The latent sizes differ: the narrower model decodes the first dimensions of each draw.")
    widest = max(model.config.latent_dim for _, model, _ in models)
    z = torch.randn(SAMPLE_GRID**2, widest, generator=torch.Generator().manual_seed(seed))
    for column, (choice, model, _) in zip(st.columns(2, gap="medium"), models):
        device = next(model.parameters()).device
        images = model.decode(z[:, : model.config.latent_dim].to(device)).mean.cpu()
        column.image(png_bytes(make_grid(images, SAMPLE_GRID), scale=3), caption=choice, output_format="PNG")


def grid_values(models, dataset: str, axes: list[tuple[int, int]], n: int, quantiles) -> tuple[list, list]:
    """The z values (xs, ys) of a grid two models share: the prior's quantiles (``quantiles``:
    the values the sidebar's range gives), or, when ``quantiles`` is None, the span of both
    models' codes along their grid axes (1st to 99th percentile)."""
    if quantiles is not None:
        return list(quantiles), list(quantiles)
    spans = []
    for k in (0, 1):
        lows, highs = zip(
            *(code_range(latent_map(*model_key(c), dataset)[0], ax[k]) for (c, _, _), ax in zip(models, axes))
        )
        spans.append(torch.linspace(min(lows), max(highs), n).tolist())
    return spans[0], spans[1]


def grids_side_by_side(models, dataset: str, axes: list[tuple[int, int]], n: int, quantiles) -> None:
    """Each model's decoded grid over the same latent range, side by side."""
    xs, ys = grid_values(models, dataset, axes, n, quantiles)
    where = (
        "the prior's quantiles"
        if quantiles is not None
        else "the 1st to 99th percentile of both models' codes"
    )
    st.caption(
        f"Both grids cover z from {xs[0]:.2f} to {xs[-1]:.2f} across and {ys[0]:.2f} to {ys[-1]:.2f} "
        f"up ({where})."
    )
    for column, (choice, model, config), (a, b) in zip(st.columns(2, gap="medium"), models, axes):
        png = manifold_png_at(*model_key(choice), tuple(xs), tuple(ys), a, b)
        with column:
            st.markdown(f"**{choice}**: {describe(model, config)}")
            chart(st, manifold_figure(png, xs, ys, (f"z{a + 1}", f"z{b + 1}")), key=f"beside-grid-{choice}")
