"""Figures: valid plotly, the right points in the right traces."""

import plotly.graph_objects as go

from explorer.latent import fit_projection
from explorer.plots import latent_scatter, training_curves


def test_latent_scatter_is_valid_and_indexed():
    points = [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
    fig = latent_scatter(points, [1, 0, 1, 0], ["zero", "one"], marker_point=(0.5, 0.5))
    go.Figure(fig.to_dict())  # plotly's validators accept every key (raises otherwise)
    zero, one, star = fig.data
    assert (zero.name, list(zero.customdata), list(zero.x)) == ("zero", [1, 3], [2.0, 6.0])
    assert (one.name, list(one.customdata), list(one.y)) == ("one", [0, 2], [1.0, 5.0])
    assert star.marker.symbol == "star" and list(star.x) == [0.5]


def test_training_curves_place_steps_at_fractional_epochs():
    rows = [
        {"type": "step", "epoch": 1, "step": 5, "train_loss": 200.0, "recon": -190.0, "kl": 10.0},
        {
            "type": "epoch",
            "epoch": 1,
            "step": 10,
            "train_loss": 190.0,
            "recon": -180.0,
            "kl": 10.0,
            "test_elbo": -185.0,
        },
    ]
    fig = training_curves({"a": rows}, {"a": 10})
    go.Figure(fig.to_dict())
    loss, test, recon, kl = fig.data
    assert list(loss.x) == [0.5] and list(test.y) == [185.0] and list(recon.y) == [190.0]


def test_pca_projection_explains_variance():
    import torch

    g = torch.Generator().manual_seed(0)
    z = torch.randn(500, 5, generator=g) * torch.tensor([5.0, 3.0, 0.1, 0.1, 0.1])
    proj = fit_projection(z)
    assert proj.kind == "pca" and proj.explained[0] > proj.explained[1] > 0.2
    assert sum(proj.explained) > 0.99 and proj(z).shape == (500, 2)
    assert fit_projection(z[:, :2]).kind == "identity"
