"""The aggregate posterior q(z) = (1/N) sum_n q(z|x_n) against the prior p(z) = N(0, I), both as
seen in the scatter's plane, and the prior's "holes": where the prior has mass and the data almost
none, decoded points are the model's guesses (Hoffman & Johnson 2016, "ELBO surgery"; Rosca et
al. 2018). Exact Gaussian-mixture densities on a grid; pure PyTorch/NumPy, no Streamlit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from explorer.evaluate import Projection
from explorer.explore.posterior import projected_gaussian

HOLE_RATIO = 0.1  # a hole: q(z) below this fraction of p(z) ...
HOLE_RADIUS = 2.0  # ... inside the prior's 2-sigma disc
NEIGHBOUR = 5  # each posterior is widened by SPACING x the distance to its NEIGHBOUR-th nearest
SPACING = 0.5  # ... posterior mean in the plane (a variable-bandwidth kernel estimate)
ESTIMATOR = f"mixture widened by {SPACING:g} x distance to neighbour {NEIGHBOUR}"  # stored with the maps


@dataclass
class DensityMap:
    """Densities on a square grid in the scatter's plane."""

    xs: np.ndarray  # (G,) grid coordinates along the first axis
    ys: np.ndarray  # (G,) along the second
    aggregate: np.ndarray  # (G, G) [y, x]: q(z) = mean over the test images of q(z|x), projected
    prior: np.ndarray  # (G, G): N(0, I) pushed through the projection
    holes: np.ndarray  # (G, G) bool: prior disc of HOLE_RADIUS sigma where q < HOLE_RATIO p
    prior_centre: tuple[float, float]  # where the prior's mean lands in the plane
    hole_mass: float  # fraction of the prior's probability that lies in the holes

    @property
    def cell_area(self) -> float:
        return float((self.xs[1] - self.xs[0]) * (self.ys[1] - self.ys[0]))


def _gaussian_pdf_grid(
    grid: torch.Tensor, means: torch.Tensor, covs: torch.Tensor, chunk: int = 512
) -> torch.Tensor:
    """Mean over components of N(means[i], covs[i]) (C, 2), (C, 2, 2) evaluated at grid points
    (P, 2): (P,) float64. Each component's density in float32, summed in float64: within 1e-4 of
    float64 wherever the mixture is above 1e-12 of its peak, all that its maps draw
    (tests/test_latent_maths.py), in 40% of the time (5,000 components on a 121 x 121 grid, as a
    run's figures hold: 11.4 s -> 4.5 s on a 2-core host under load)."""
    points = grid.float()
    total = torch.zeros(len(grid), dtype=torch.float64)
    for i in range(0, len(means), chunk):
        m, c = means[i : i + chunk].float(), covs[i : i + chunk].float()
        a, b, d = c[:, 0, 0], c[:, 0, 1], c[:, 1, 1]
        det = (a * d - b * b).clamp_min(1e-12)
        dx = points[None, :, 0] - m[:, None, 0]  # (C, P)
        dy = points[None, :, 1] - m[:, None, 1]
        quad = (d[:, None] * dx * dx - 2 * b[:, None] * dx * dy + a[:, None] * dy * dy) / det[:, None]
        total += (torch.exp(-0.5 * quad) / (2 * math.pi * det.sqrt()[:, None])).sum(0).double()
    return total / len(means)


def neighbour_spacing(points: torch.Tensor, k: int = NEIGHBOUR, chunk: int = 1024) -> torch.Tensor:
    """Distance (N,) from each of ``points`` (N, 2) to its ``k``-th nearest other point (to the
    farthest one when there are k or fewer others; 0 for a single point)."""
    n = len(points)
    if n < 2:
        return torch.zeros(n, dtype=points.dtype)
    k = min(k, n - 1)
    out = []
    for i in range(0, n, chunk):
        d = torch.cdist(points[i : i + chunk].float(), points.float())
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # the point itself is the 0th
    return torch.cat(out).to(points.dtype)


def density_map(
    projection: Projection, mu: torch.Tensor, sigma: torch.Tensor, lim: float | None = None, size: int = 121
) -> DensityMap:
    """The aggregate posterior q(z) = (1/N) sum_n q(z|x_n) of the given posteriors (N, z) and the
    prior N(0, I), both as seen in the scatter's plane, on a size x size grid over [-lim, lim]^2
    around the prior's centre. Mixture densities (no histogram), so that small models and few
    images give smooth pictures. ``lim`` defaults to 4 (the prior's 4-sigma square), widened to
    take in 99% of the data.

    The N images stand for the data: a model whose posteriors are narrower than the spacing of
    their means (shapes-conv-z8's, 8-D, seen in a plane) leaves gaps between them that more
    images would fill, and they read as holes (18.4% of the prior's mass from 2,000 test images,
    0.0% from 30,000 fresh ones). So each posterior is widened by an isotropic Gaussian of
    standard deviation SPACING x the distance from its mean to its NEIGHBOUR-th nearest one: a
    variable-bandwidth kernel estimate (Breiman, Meisel & Purcell 1977; Silverman 1986, 5.3),
    narrow where the codes are dense, so that gaps wider than the codes' own spacing (the holes
    between clusters) stay. (bench/README.md: the hole mass against many more images.)"""
    means, covs = projected_gaussian(projection, mu.double(), sigma.double())
    eye = torch.eye(2, dtype=torch.float64)
    covs = covs + (SPACING * neighbour_spacing(means)).pow(2)[:, None, None] * eye
    centre = projection(torch.zeros(1, mu.shape[1])).double()[0]  # the image of z = 0
    if lim is None:
        reach = (means - centre).abs().amax(1)
        lim = max(4.0, float(torch.quantile(reach, 0.99)) + 3 * float(covs.diagonal(0, 1, 2).sqrt().median()))
    c = projection.components.double()
    prior_cov = (c.T @ c)[None]  # identity for orthonormal components
    xs = np.linspace(float(centre[0]) - lim, float(centre[0]) + lim, size)
    ys = np.linspace(float(centre[1]) - lim, float(centre[1]) + lim, size)
    gx, gy = np.meshgrid(xs, ys)
    grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
    # Posteriors narrower than a grid cell would fall between the grid points and leave a speckled
    # picture: widen each by half a cell (a smoothing of the map, not of the model).
    blur = (0.5 * (xs[1] - xs[0])) ** 2 * eye
    q = _gaussian_pdf_grid(grid, means, covs + blur).reshape(size, size).numpy()
    p = _gaussian_pdf_grid(grid, centre[None], prior_cov).reshape(size, size).numpy()
    inv = torch.linalg.inv(prior_cov[0])
    diff = grid - centre[None]
    mahal = ((diff @ inv) * diff).sum(1).sqrt().reshape(size, size).numpy()
    holes = (mahal <= HOLE_RADIUS) & (q < HOLE_RATIO * p)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    return DensityMap(
        xs, ys, q, p, holes, (float(centre[0]), float(centre[1])), float((p * holes).sum() * cell)
    )


DENSITY_IMAGES = 5000  # test images whose posteriors make up the aggregate posterior maps


def contour_reach(projection, codes: torch.Tensor) -> float:
    """The half-width of the scatter's density contours: the prior's 4 sigma, or the farthest
    projected code (N, z) rounded up, whichever is larger."""
    reach = float(projection(codes).abs().max()) if len(codes) else 4.0
    return float(max(4, math.ceil(reach) + 2))  # past the farthest code: no contour cut at the edge


def aggregate_maps(model, x: torch.Tensor, projection, codes: torch.Tensor) -> dict[str, DensityMap]:
    """The aggregate posterior of the first ``DENSITY_IMAGES`` images x against the prior in the
    scatter's plane (``density_map``): "prior" over the prior's default square
    (the Prior tab), "map" over the whole scatter of ``codes`` (its contours)."""
    from explorer.explore.posterior import posterior

    mu, sigma = posterior(model, x[:DENSITY_IMAGES])
    return {
        "prior": density_map(projection, mu, sigma),
        "map": density_map(projection, mu, sigma, lim=contour_reach(projection, codes)),
    }
