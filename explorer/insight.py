"""What the explorer shows beyond reconstructions: the posterior q(z|x) as ellipses and samples,
interpolation between latent codes, the aggregate posterior against the prior (and the prior's
"holes") (whether an image is a stranger to the model is
``explorer.strangers``). Pure PyTorch/NumPy; no Streamlit.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from explorer.latent import Projection, decode_mean
from explorer.model import VAE

HOLE_RATIO = 0.1  # a hole: q(z) below this fraction of p(z) ...
HOLE_RADIUS = 2.0  # ... inside the prior's 2-sigma disc


# -- the posterior q(z|x) -----------------------------------------------------------------------


@torch.no_grad()
def posterior(model: VAE, x: torch.Tensor, batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (N, z) of q(z|x) for images x (N, C, H, W), on the CPU."""
    device = next(model.parameters()).device
    mus, sigmas = [], []
    for i in range(0, len(x), batch_size):
        mu, logvar = model.encode(x[i : i + batch_size].to(device))
        mus.append(mu.cpu())
        sigmas.append(logvar.mul(0.5).exp().cpu())
    return torch.cat(mus), torch.cat(sigmas)


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


# -- interpolation --------------------------------------------------------------------------------


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, method: str = "linear") -> torch.Tensor:
    """``steps`` points (steps, z) from z0 to z1, both ends included.

    ``linear``: (1 - t) z0 + t z1. ``spherical`` (slerp, about the origin): follows the great circle
    between the two directions while the norm moves linearly, which keeps the path where a
    Gaussian prior has its mass instead of cutting through the low-norm middle. Nearly parallel
    (or zero) codes fall back to linear.
    """
    if steps < 2:
        raise ValueError("interpolation needs at least 2 steps")
    t = torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]
    a, b = z0.double(), z1.double()
    if method == "linear":
        return ((1 - t) * a + t * b).to(z0.dtype)
    if method != "spherical":
        raise ValueError(f"unknown interpolation {method!r}: use 'linear' or 'spherical'")
    na, nb = a.norm(), b.norm()
    if na < 1e-8 or nb < 1e-8:
        return interpolate(z0, z1, steps, "linear")
    cos = torch.clamp((a / na) @ (b / nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega < 1e-4 or math.pi - omega < 1e-4:  # parallel or opposite: the great circle is undefined
        return interpolate(z0, z1, steps, "linear")
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) / so) * (a / na) + (torch.sin(t * omega) / so) * (b / nb)
    return (direction * ((1 - t) * na + t * nb)).to(z0.dtype)


def gif_bytes(frames: list[np.ndarray], frame_ms: int = 120, bounce: bool = True) -> bytes:
    """An endlessly looping animated GIF of uint8 frames (H, W) or (H, W, 3); ``bounce`` plays
    the frames forwards then backwards so that the loop has no jump."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    seq = list(frames) + (list(frames[-2:0:-1]) if bounce else [])
    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE) for f in seq]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return buf.getvalue()


# -- the aggregate posterior against the prior ----------------------------------------------------


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
    """Mean over components of N(means[i], covs[i]) evaluated at grid points (P, 2): (P,)."""
    total = torch.zeros(len(grid), dtype=torch.float64)
    for i in range(0, len(means), chunk):
        m, c = means[i : i + chunk].double(), covs[i : i + chunk].double()
        a, b, d = c[:, 0, 0], c[:, 0, 1], c[:, 1, 1]
        det = (a * d - b * b).clamp_min(1e-12)
        dx = grid[None, :, 0] - m[:, None, 0]  # (C, P)
        dy = grid[None, :, 1] - m[:, None, 1]
        quad = (d[:, None] * dx * dx - 2 * b[:, None] * dx * dy + a[:, None] * dy * dy) / det[:, None]
        total += (torch.exp(-0.5 * quad) / (2 * math.pi * det.sqrt()[:, None])).sum(0)
    return total / len(means)


def density_map(
    projection: Projection, mu: torch.Tensor, sigma: torch.Tensor, lim: float | None = None, size: int = 121
) -> DensityMap:
    """The aggregate posterior q(z) = (1/N) sum_n q(z|x_n) of the given posteriors (N, z) and the
    prior N(0, I), both as seen in the scatter's plane, on a size x size grid over [-lim, lim]^2
    around the prior's centre. Exact mixture densities (no histogram), so that small models and
    few images give smooth pictures. ``lim`` defaults to 4 (the prior's 4-sigma square), widened
    to take in 99% of the data."""
    means, covs = projected_gaussian(projection, mu.double(), sigma.double())
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
    blur = (0.5 * (xs[1] - xs[0])) ** 2 * torch.eye(2, dtype=torch.float64)
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


def align_frames(frames: np.ndarray) -> np.ndarray:
    """Rotate/reflect each 2-D frame (E, n, 2) onto the last one (orthogonal Procrustes about
    the centroids), so that principal-component pictures of successive epochs do not spin or flip
    from one epoch to the next. Distances within a frame are unchanged."""
    frames = np.asarray(frames, dtype=np.float64)
    target = frames[-1] - frames[-1].mean(0)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        centre = frame.mean(0)
        u, _, vt = np.linalg.svd((frame - centre).T @ target)
        out[i] = (frame - centre) @ (u @ vt) + centre
    return out


def pick_frames(epochs: list[int], most: int) -> list[int]:
    """Indices of at most ``most`` of the snapshots, evenly spread, always the first and last."""
    if len(epochs) <= most:
        return list(range(len(epochs)))
    picked = np.unique(np.round(np.linspace(0, len(epochs) - 1, most)).astype(int))
    return picked.tolist()
