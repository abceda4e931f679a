"""The posterior q(z|x) of single images, as the pages draw it: means and standard deviations, the
outline of its 1- and 2-sigma contours in the scatter's plane (a linear map of a Gaussian is
Gaussian), and decoded draws z ~ q(z|x). Pure PyTorch/NumPy; no Streamlit."""

from __future__ import annotations

import math

import numpy as np
import torch

from explorer.evaluate import Projection
from explorer.explore.latent import decode_mean
from explorer.model import BATCH, VAE, in_batches


@torch.no_grad()
def posterior(model: VAE, x: torch.Tensor, batch_size: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (N, z) of q(z|x) for images x (N, C, H, W), on the CPU. An
    autoencoder's code has no spread: its standard deviations are zeros (see ``deterministic``)."""

    def mean_and_sd(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = model.encode(xb)
        return mu, torch.zeros_like(mu) if logvar is None else logvar.mul(0.5).exp()

    return in_batches(model, mean_and_sd, x, batch_size=batch_size)


def deterministic(sigma: torch.Tensor) -> bool:
    """Whether a posterior's standard deviations (..., z) are all zero: an autoencoder's code,
    which has no ellipses to draw and no draws to decode."""
    return bool((sigma == 0).all())


def projected_gaussian(
    projection: Projection, mu: torch.Tensor, sigma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The image of N(mu, diag(sigma^2)) (N, z) under the scatter's projection: 2-D means (N, 2)
    and covariances (N, 2, 2). A linear map of a Gaussian is Gaussian: C^T diag(sigma^2) C."""
    c = projection.components.double()  # (z, 2)
    means = projection(mu.float()).double()
    covs = torch.einsum("zi,nz,zj->nij", c, sigma.double().pow(2), c)
    return means, covs


def ellipse(mean: torch.Tensor, cov: torch.Tensor, radius: float, points: int = 72) -> np.ndarray:
    """Outline (points + 1, 2) of {m + r L u : |u| = 1}, L L^T = cov: the ``radius``-sigma contour
    of a 2-D Gaussian, closed (the first point repeats at the end)."""
    chol = torch.linalg.cholesky(cov.double() + 1e-12 * torch.eye(2, dtype=torch.float64))
    angle = torch.linspace(0, 2 * math.pi, points + 1, dtype=torch.float64)
    circle = torch.stack([angle.cos(), angle.sin()])  # (2, P)
    return (mean.double()[:, None] + radius * chol @ circle).T.numpy()


def posterior_ellipses(
    projection: Projection, mu: torch.Tensor, sigma: torch.Tensor, radii: tuple[float, ...] = (1.0, 2.0)
) -> dict[float, np.ndarray]:
    """The 1- and 2-sigma outlines of one q(z|x) (mu, sigma: (z,)) in the scatter's plane."""
    means, covs = projected_gaussian(projection, mu[None], sigma[None])
    return {r: ellipse(means[0], covs[0], r) for r in radii}


@torch.no_grad()
def posterior_samples(
    model: VAE, mu: torch.Tensor, sigma: torch.Tensor, n: int = 8, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """n draws z ~ q(z|x) for one image (mu, sigma: (z,)), seeded so that a rerun shows the same
    draws; returns (z (n, z), decoder means (n, C, H, W))."""
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, mu.shape[0], generator=gen)
    z = mu[None] + sigma[None] * eps
    return z, decode_mean(model, z)
