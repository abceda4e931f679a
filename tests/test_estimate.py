"""One image's ELBO as the pages state it (``explorer.theory.estimate``) against independent
references, and where a map draws a point past its axes (``explorer.pictures.edges``)."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from explorer.model import VAE, ModelConfig
from explorer.pictures.edges import at_edge, directions, off_map_words, symbol
from explorer.theory.estimate import ElboEstimate, elbo_estimate


def _model(latent: int) -> VAE:
    torch.manual_seed(0)
    return VAE(
        ModelConfig(image_shape=(1, 4, 3), hidden=(16,), activation="tanh", latent_dim=latent)
    ).double()


def _reference(model: VAE, x: torch.Tensor, draws: int) -> float:
    """The ELBO by torch.distributions: E_q[log Bernoulli(x | decoder(z))] over ``draws`` fresh
    draws of q in float64, minus KL(q || N(0, I)) by kl_divergence."""
    mu, logvar = model.encode(x[None])
    q = Normal(mu[0], torch.exp(0.5 * logvar[0]))
    z = q.sample((draws,))
    logits = model.decoder_params(z)
    recon = Bernoulli(logits=logits).log_prob(x.flatten().expand_as(logits)).sum(1).mean()
    return float(recon - kl_divergence(q, Normal(torch.zeros_like(mu[0]), torch.ones_like(mu[0]))).sum())


@torch.no_grad()
def test_a_2d_latent_gets_the_exact_elbo():
    model = _model(2)
    x = (torch.rand(1, 4, 3, generator=torch.Generator().manual_seed(1)) > 0.5).double()
    est = elbo_estimate(model, x)
    torch.manual_seed(2)
    assert est.se == 0 and est.draws == 0 and est.nodes > 0
    assert est.elbo == pytest.approx(_reference(model, x, 400_000), abs=0.02)
    assert "exact" in est.words()


@torch.no_grad()
def test_a_wider_latent_gets_a_monte_carlo_mean_within_its_stated_error():
    model = _model(5)
    x = (torch.rand(1, 4, 3, generator=torch.Generator().manual_seed(3)) > 0.5).double()
    torch.manual_seed(4)
    truth = _reference(model, x, 400_000)
    runs = [elbo_estimate(model, x, seed=s, target_se=0.02, seconds=30.0) for s in range(20)]
    for est in runs:
        assert 0 < est.se <= 0.02 and est.draws >= 250 and est.nodes == 0
        assert f"K = {est.draws:,} draws" in est.words()
    values = np.array([r.elbo for r in runs])
    # the stated error is the spread of the estimate over seeds, and the estimates centre on the truth
    assert np.std(values, ddof=1) == pytest.approx(np.mean([r.se for r in runs]), rel=0.5)
    assert abs(values.mean() - truth) < 4 * np.mean([r.se for r in runs]) / math.sqrt(len(runs)) + 0.01


def test_the_same_seed_gives_the_same_figure():
    model = _model(5)
    x = torch.ones(1, 4, 3, dtype=torch.float64)
    assert elbo_estimate(model, x, seconds=30.0) == elbo_estimate(model, x, seconds=30.0)
    assert isinstance(elbo_estimate(model, x), ElboEstimate)


def test_points_past_the_axes_are_drawn_at_the_edge_pointing_out():
    points = [[0.5, 0.5], [12.0, 0.2], [-3.0, 9.0], [0.1, -5.0]]
    drawn, way = at_edge(points, [0.0, 1.0], [0.0, 1.0])
    assert way.tolist() == [[0, 0], [1, 0], [-1, 1], [0, -1]]
    assert drawn[0].tolist() == [0.5, 0.5]  # on the map: where it is
    assert ((drawn >= 0) & (drawn <= 1)).all()  # every point inside the plot
    assert drawn[1, 1] == 0.2 and drawn[1, 0] > 0.9  # along the right edge, its height kept
    assert [symbol(w) for w in way] == ["star", "triangle-right", "triangle-nw", "triangle-down"]
    assert off_map_words(points[1], way[1]) == "off the map, beyond the right edge, at (12.00, 0.20)"
    assert off_map_words(points[0], way[0]) == ""
    assert directions(points, None, None).tolist() == [[0, 0]] * 4  # a map that fits itself
