"""Latent-space computations behind the explorer pages: encode a dataset, project it to 2-D,
decode points and the manifold grid, reconstruct with per-image ELBO, pick images to show,
interpolate between codes (linear or spherical), align the snapshots of a run. Pure PyTorch and
NumPy; no Streamlit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from explorer.evaluate import encode_means
from explorer.model import BATCH, VAE, in_batches
from explorer.objectives import autoencoder_terms, elbo_terms


@torch.no_grad()
def decode_mean(model: VAE, z: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
    """Decoder means (N, C, H, W) for latent points z (N, z), on the CPU, ``batch_size`` at a
    time (memory stays bounded for any N)."""
    return in_batches(model, lambda zb: model.decode(zb).mean, z, batch_size=batch_size)


def latent_grid(n: int, lo: float = 0.05, hi: float = 0.95, latent_dim: int = 2) -> torch.Tensor:
    """The paper's Figure 4 grid: n x n points, linearly spaced in [lo, hi]^2 on the unit square,
    mapped through the inverse Gaussian CDF. Returns z (n*n, latent_dim), row-major with z_2
    decreasing down the rows (so the picture reads like a plot); other dimensions are 0."""
    if not 0 < lo < hi < 1:
        raise ValueError(f"the grid range must satisfy 0 < lo < hi < 1, got ({lo}, {hi})")
    q = torch.special.ndtri(torch.linspace(lo, hi, n, dtype=torch.float64)).float()
    z1, z2 = torch.meshgrid(q, q.flip(0), indexing="xy")  # (n, n): columns vary z1, rows z2
    z = torch.zeros(n * n, latent_dim)
    z[:, 0] = z1.reshape(-1)
    if latent_dim > 1:
        z[:, 1] = z2.reshape(-1)
    return z


ELBO_DRAWS = 8  # draws of eps per image for the per-image ELBO the pages show; the same for every image


def manifold(
    model: VAE, n: int, lo: float = 0.05, hi: float = 0.95, axes: tuple[int, int] = (0, 1)
) -> torch.Tensor:
    """The paper's Figure 4: decoder means (n * n, C, H, W) over an n x n grid of latent points,
    row-major with the second axis decreasing down the rows; ``axes`` are the two latent
    dimensions the grid spans (the others stay at 0), its range [lo, hi] on the unit square mapped
    through the inverse Gaussian CDF.

    Raises:
        ValueError: a range that is not 0 < lo < hi < 1, or an axis the model does not have.
    """
    dims = model.config.latent_dim
    if not all(0 <= a < dims for a in axes):
        raise ValueError(f"the grid's axes {axes} must be latent dimensions 0 to {dims - 1}")
    grid = latent_grid(n, lo, hi, 2)  # (n * n, 2)
    z = torch.zeros(n * n, dims)
    z[:, axes[0]] = grid[:, 0]
    if dims > 1:
        z[:, axes[1]] = grid[:, 1]
    return decode_mean(model, z)


def manifold_at(model: VAE, xs, ys, axes: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """Decoder means (len(ys) * len(xs), C, H, W) over the grid of latent points with z[axes[0]]
    = each of ``xs`` across and z[axes[1]] = each of ``ys`` up (row-major, the top row first);
    the other dimensions stay at 0. Unlike ``manifold``, the grid's values are given in z: two
    models can be decoded over the same latent range, or a grid can span the encoded codes.

    Raises:
        ValueError: an axis the model does not have.
    """
    dims = model.config.latent_dim
    if not all(0 <= a < dims for a in axes):
        raise ValueError(f"the grid's axes {axes} must be latent dimensions 0 to {dims - 1}")
    across = torch.as_tensor(list(xs), dtype=torch.float32)
    up = torch.as_tensor(list(ys), dtype=torch.float32).flip(0)
    a, b = torch.meshgrid(across, up, indexing="xy")
    z = torch.zeros(a.numel(), dims)
    z[:, axes[0]] = a.reshape(-1)
    if axes[1] != axes[0]:
        z[:, axes[1]] = b.reshape(-1)
    return decode_mean(model, z)


def code_range(means: torch.Tensor, axis: int, coverage: float = 0.98) -> tuple[float, float]:
    """The central ``coverage`` of the encoded means (N, z) along one latent axis: (low, high) in
    z, e.g. the 1st to 99th percentile, for a grid that spans where a model's codes lie."""
    tail = (1 - coverage) / 2
    values = means[:, axis].double()
    return float(torch.quantile(values, tail)), float(torch.quantile(values, 1 - tail))


def grid_extent(
    n: int, lo: float, hi: float, axes: tuple[int, int], dims: int
) -> tuple[list[float], list[list[float]]]:
    """The z value of each of the n tiles along a ``manifold`` grid's side (n,), and the grid's
    four corners as latent points (4, dims), for drawing its outline on a map."""
    values = torch.special.ndtri(torch.linspace(lo, hi, n, dtype=torch.float64)).tolist()
    corners = []
    for a, b in ((0, 0), (-1, 0), (-1, -1), (0, -1)):
        corner = [0.0] * dims
        corner[axes[0]] = values[a]
        if dims > 1:
            corner[axes[1]] = values[b]
        corners.append(corner)
    return values, corners


@dataclass
class Reconstruction:
    inputs: torch.Tensor  # (N, C, H, W) what the model saw
    outputs: torch.Tensor  # (N, C, H, W) decoder means at the posterior means
    means: torch.Tensor  # (N, z) posterior means
    elbo: torch.Tensor  # (N,) per-image ELBO in nats (estimator B, ELBO_DRAWS fixed draws of eps);
    # for an autoencoder, its reconstruction term log p(x | z = f(x)) (it has no ELBO)
    variational: bool = True  # False: an autoencoder's (``elbo`` holds its reconstruction term)


@torch.no_grad()
def reconstruct(model: VAE, x: torch.Tensor, seed: int = 0, batch_size: int = BATCH) -> Reconstruction:
    """Reconstructions and per-image ELBO of x (N, C, H, W).

    The ELBO (SGVB estimator B, nats) averages ``ELBO_DRAWS`` draws of eps that are the same for
    every image (drawn from ``seed``): an image's figure does not change on a rerun, nor with the
    other images it comes with, and the test set's figures it is ranked among are made alike."""
    eps = torch.randn(ELBO_DRAWS, 1, model.config.latent_dim, generator=torch.Generator().manual_seed(seed))

    def elbo(xb: torch.Tensor) -> torch.Tensor:
        if not model.config.variational:  # an autoencoder's figure: its reconstruction term
            return autoencoder_terms(model, xb).recon
        draws = eps.to(xb.device).expand(ELBO_DRAWS, len(xb), -1)
        return elbo_terms(model, xb, "analytic", ELBO_DRAWS, draws).elbo

    elbo = in_batches(model, elbo, x, batch_size=batch_size)
    means = encode_means(model, x)
    return Reconstruction(x, decode_mean(model, means), means, elbo, model.config.variational)


PICK_MODES = ("random", "by label", "worst ELBO", "best ELBO")


COLOURFUL = 0.2  # a pixel whose channels span more than this (of 0-1) is coloured
COLOUR_LOST = 0.5  # reconstructions keeping less than this share of the inputs' chroma lose colour


def colour_kept(inputs: torch.Tensor, outputs: torch.Tensor) -> float | None:
    """How much of the inputs' colour the reconstructions keep: the mean chroma (the spread of a
    pixel's channels, max - min, in 0-1 levels) of ``outputs`` (N, 3, H, W) over the pixels where
    ``inputs`` (N, 3, H, W) are coloured (chroma > COLOURFUL), divided by the inputs' own mean
    chroma there: about 1 when the colours come back, near 0 when they decode grey. None for
    grey-level images (C != 3) or inputs without a coloured pixel.

    Measured on 300 shapes test images: 0.04 for shapes-conv-z8 (a discretised logistic decoder
    that explains the hue as noise), 0.96 for shapes-conv-bce-z8."""
    if inputs.shape[1] != 3:
        return None
    chroma_in = inputs.amax(1) - inputs.amin(1)
    chroma_out = outputs.amax(1) - outputs.amin(1)
    coloured = chroma_in > COLOURFUL
    if not bool(coloured.any()):
        return None
    return float(chroma_out[coloured].mean() / chroma_in[coloured].mean())


LITTLE_KEPT = 0.3  # mean correlation below which reconstructions are said to keep little of their images


def likeness(inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """How much of each image its reconstruction keeps: the Pearson correlation of their grey
    levels (the mean over channels) across pixels, (N,) in [-1, 1], for ``inputs`` and ``outputs``
    (N, C, H, W). Measured on 300 test images each (median, 5th percentile): shapes-conv-z8 0.99,
    0.98; shapes-conv-bce-z8 0.99, 0.97; mnist-z2 0.83, 0.63; fashion-mnist-z2 0.89, 0.72. A flat
    image has none to keep: 0."""
    a, b = inputs.float().mean(1).flatten(1), outputs.float().mean(1).flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def pick_images(
    elbo: torch.Tensor, labels: torch.Tensor, mode: str, count: int, seed: int = 0, label: int | None = None
) -> torch.Tensor:
    """Indices (count,) of test images to show: ``"random"`` (seeded), ``"by label"`` (the first
    of ``label``), or those of the ``"worst ELBO"`` or ``"best ELBO"`` (elbo, labels: (N,)).

    Raises:
        ValueError: an unknown mode.
    """
    if mode == "random":
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(int(seed)))
    elif mode == "by label":
        order = torch.nonzero(labels == label).flatten()
    elif mode in ("worst ELBO", "best ELBO"):
        order = torch.argsort(elbo, descending=mode == "best ELBO")
    else:
        raise ValueError(f"unknown mode {mode!r}; use one of {PICK_MODES}")
    return order[:count]


# -- paths and snapshots in latent space -----------------------------------------------------------


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
