"""The evidence of one image under a trained VAE, three ways, and the identity that joins them:

    log p(x) = ELBO(q) + KL(q(z|x) || p(z|x))        (Kingma & Welling 2013, eq. 1)

- log p(x) by quadrature (2-D latents only): log p(x, z) = log p(x|z) + log p(z) summed on a
  grid (the rectangle rule) laid out in three passes: a coarse grid over the prior's +/-6 sd (and
  q's reach) marks where log p(x, z) comes within ``KEEP_NATS`` of its maximum; an axis-aligned
  grid over that box gives the posterior's mean and covariance (and the picture); the final grid
  lies in the posterior's own whitened coordinates over all of its mass and q's +/-6 sd, so that
  a narrow, tilted posterior gets as many points across as a round one. The quadrature's own
  error is estimated by halving that grid (every second point, twice the spacing), and the grid
  is refined where that exceeds ``TOLERANCE`` (a second mode far from the first, or narrow): a
  doubled grid decodes only its new points near where the integrals have mass.
- The ELBO (2-D latents): E_q[log p(x|z)] by the rectangle rule in q's standardised
  coordinates, minus the analytic KL(q || p(z)) (estimator B's terms, computed exactly); for
  wider latents, estimator A's Monte Carlo mean over the importance draws (L_1), with its
  standard error.
- KL(q(z|x) || p(z|x)) on the same grid as log p(x), with p(z|x) = p(x, z) / p(x): so the identity
  above is a check of two independent quadratures, not an algebraic tautology.
- The importance-weighted bounds L_K (Burda, Grosse & Salakhutdinov 2015, eq. 8, Theorem 1:
  ELBO = L_1 <= L_K <= L_{K+1} <= log p(x)) from one pool of draws (``explorer.theory.bounds``).

With a time budget (the page's), the quadratures come first and the pool of draws grows K by K
while it fits.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from explorer.config import TrainConfig
from explorer.errors import ExplorerError
from explorer.model import VAE
from explorer.objectives import kl_standard_normal, log_normal_diag, log_standard_normal
from explorer.theory.bounds import bounds_from_pool, pool

KS = (1, 10, 100, 1000, 5000)  # the bounds reported, as in Burda et al.'s evaluation (K = 5000)
GRID = 81  # points per axis of the final grid, in the posterior's own coordinates
TOLERANCE = 0.05  # nats: a final grid whose halving moves log p(x) by more is refined
MAX_GRID = 321  # points per axis the refinement stops at
COARSE = 57  # points per axis of the coarse grid over the prior
FIRST = 49  # points per axis of the first fine grid (axis-aligned): the posterior's frame
PICTURE = 81  # points per axis of the picture of p(z|x), interpolated from the final grid
PICTURE_NATS = 12.0  # the picture spans where log p(z|x) comes within this of its maximum
RECON_NODES = 41  # points per axis of E_q[log p(x|z)]'s rule
COARSE_REACH = 6.0  # the coarse grid spans at least +/- this many prior standard deviations
Q_REACH = 6.0  # both grids reach q's mean +/- this many of its standard deviations
KEEP_NATS = 25.0  # the grids cover where log p(x, z) comes within this of its maximum
DECODE_BATCH = 4096  # latent points decoded at once on the grid
BUDGET = 1.8  # seconds the page lets one image's evidence take (``evidence(budget=...)``), of its 2


@dataclass
class Evidence:
    """One image's evidence (nats). ``log_px``, ``kl_to_posterior``, ``quadrature_error`` and the
    grid are None for latents wider than 2."""

    log_px: float | None  # log p(x) by quadrature
    elbo: float  # the ELBO (exact by quadrature for 2-D latents, else estimator A's mean)
    elbo_se: float  # its standard error (0 where it is computed by quadrature)
    recon: float | None  # E_q[log p(x|z)] by quadrature (2-D latents)
    kl_prior: float  # KL(q(z|x) || p(z)), analytic
    kl_to_posterior: float | None  # KL(q(z|x) || p(z|x)) on the grid
    l_k: dict[int, tuple[float, float]]  # K -> (L_K, its standard error)
    quadrature_error: float | None  # |log p(x) - the same sum at twice the grid spacing|
    q_mass_on_grid: float | None  # the integral of q on the grid (1 when the grid holds q)
    mu: np.ndarray  # (z,) q's mean
    sigma: np.ndarray  # (z,) q's standard deviations
    z1: np.ndarray | None = None  # (P,) the picture's first axis
    z2: np.ndarray | None = None  # (P,) its second axis
    posterior: np.ndarray | None = None  # (P, P) p(z|x) for the picture, [i, j] at (z1[i], z2[j])
    seconds: float = 0.0  # wall time of the computation
    grid: int | None = None  # points per axis of the final grid (after any refinement)

    @property
    def identity_residual(self) -> float | None:
        """log p(x) - (ELBO + KL(q || p(z|x))): zero up to the quadratures' errors."""
        if self.log_px is None or self.kl_to_posterior is None:
            return None
        return self.log_px - (self.elbo + self.kl_to_posterior)

    def to_dict(self) -> dict:
        """The figures as plain JSON values (no grid)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("z1", "z2", "posterior", "mu", "sigma")}
        out["l_k"] = {str(k): {"value": v, "se": se} for k, (v, se) in self.l_k.items()}
        out["mu"], out["sigma"] = self.mu.tolist(), self.sigma.tolist()
        out["identity_residual"] = self.identity_residual
        return out


@torch.no_grad()
def log_joint(model: VAE, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x, z) = log p(x|z) + log p(z) for one image x (1, C, H, W) at points z (N, d): (N,)."""
    out = [
        model.log_prob(x, model.decoder_params(zb[:, None, :]))[:, 0] + log_standard_normal(zb)
        for zb in z.split(DECODE_BATCH)
    ]
    return torch.cat(out)


def _axes(lo: np.ndarray, hi: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    return np.linspace(lo[0], hi[0], points), np.linspace(lo[1], hi[1], points)


def _on_grid(model: VAE, x: torch.Tensor, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log p(x, z) (len(a), len(b)) in float64 over the grid a x b."""
    za, zb = np.meshgrid(a, b, indexing="ij")
    z = torch.as_tensor(np.stack([za.ravel(), zb.ravel()], 1), dtype=x.dtype)
    return log_joint(model, x, z).double().numpy().reshape(len(a), len(b))


def _log_sum(values: np.ndarray, cell: float) -> float:
    """log of the rectangle-rule integral of exp(values) on a grid of cells of area ``cell``."""
    top = values.max()
    return float(top + math.log(np.exp(values - top).sum() * cell))


def _box(model: VAE, x: torch.Tensor, mu: np.ndarray, sigma: np.ndarray, coarse: int = COARSE):
    """(lo (2,), hi (2,)): an axis-aligned box that holds the posterior's mass (where a coarse
    grid's log p(x, z) comes within KEEP_NATS of its maximum, plus a cell) and q's +/- Q_REACH sd."""
    reach = max(COARSE_REACH, float(np.abs(mu).max() + Q_REACH * sigma.max()))
    a, b = _axes(np.array([-reach, -reach]), np.array([reach, reach]), coarse)
    values = _on_grid(model, x, a, b)
    rows, cols = np.nonzero(values > values.max() - KEEP_NATS)
    step = a[1] - a[0]
    lo = np.array([a[rows.min()], b[cols.min()]]) - step
    hi = np.array([a[rows.max()], b[cols.max()]]) + step
    return np.minimum(lo, mu - Q_REACH * sigma), np.maximum(hi, mu + Q_REACH * sigma)


@dataclass(frozen=True)
class Frame:
    """The posterior's own coordinates, z = centre + chol @ u, and the box in u the grid spans."""

    centre: np.ndarray  # (2,)
    chol: np.ndarray  # (2, 2) lower-triangular
    lo: np.ndarray  # (2,) in u
    hi: np.ndarray  # (2,) in u

    def points(self, grid: int) -> tuple[np.ndarray, np.ndarray, float]:
        """z (grid, grid, 2) over the box, u's two axes (grid,) each, and the cell's area in z."""
        ua, ub = _axes(self.lo, self.hi, grid)
        u = np.stack(np.meshgrid(ua, ub, indexing="ij"), -1)
        cell = (ua[1] - ua[0]) * (ub[1] - ub[0]) * abs(np.linalg.det(self.chol))
        return self.centre + u @ self.chol.T, (ua, ub), cell


def posterior_frame(
    values: np.ndarray, a: np.ndarray, b: np.ndarray, mu: np.ndarray, sigma: np.ndarray
) -> Frame:
    """The frame of the posterior on a first grid: its mean and covariance (moments of the
    normalised exp(values)), and a box in whitened coordinates that holds every point of that
    grid within KEEP_NATS of the maximum (plus one of its cells) and q's +/- Q_REACH sd."""
    za, zb = np.meshgrid(a, b, indexing="ij")
    z = np.stack([za, zb], -1).reshape(-1, 2)
    weights = np.exp(values - values.max()).ravel()
    weights /= weights.sum()
    centre = weights @ z
    cov = (weights[:, None] * (z - centre)).T @ (z - centre) + 1e-12 * np.eye(2)
    cell = np.diag([(a[1] - a[0]) ** 2, (b[1] - b[0]) ** 2])
    chol = np.linalg.cholesky(cov + cell / 12)  # a posterior narrower than a cell: the cell's spread
    kept = z[(values > values.max() - KEEP_NATS).ravel()]
    corners = np.array([[i, j] for i in (-1, 1) for j in (-1, 1)])
    reach = np.concatenate([
        (kept[:, None, :] + corners[None] * [a[1] - a[0], b[1] - b[0]]).reshape(-1, 2),
        mu + Q_REACH * corners * sigma,
    ])  # fmt: skip
    u = np.linalg.solve(chol, (reach - centre).T).T
    return Frame(centre, chol, u.min(0), u.max(0))


def picture(frame: Frame, axes, z: np.ndarray, log_post: np.ndarray, mu: np.ndarray, sigma: np.ndarray):
    """(z1 (P,), z2 (P,), p(z|x) (P, P)) on an axis-aligned grid over where the posterior has its
    mass (log p(z|x) within PICTURE_NATS of its maximum) and q's +/- 3 sd, linearly interpolated
    from the final grid: its points z (G, G, 2), values log p(z|x) (G, G), laid out on ``axes``
    (u's two axes, (G,) each) in ``frame``'s coordinates, where they are a regular grid. A picture,
    no decodes."""
    from scipy.interpolate import RegularGridInterpolator

    kept = z[log_post > log_post.max() - PICTURE_NATS]
    lo = np.minimum(kept.min(0), mu - 3 * sigma)
    hi = np.maximum(kept.max(0), mu + 3 * sigma)
    pad = 0.1 * (hi - lo)
    z1, z2 = _axes(lo - pad, hi + pad, PICTURE)
    g = np.stack(np.meshgrid(z1, z2, indexing="ij"), -1).reshape(-1, 2)
    u = np.linalg.solve(frame.chol, (g - frame.centre).T).T  # (P * P, 2)
    inside = RegularGridInterpolator(axes, np.exp(log_post), bounds_error=False, fill_value=0.0)
    return z1, z2, inside(u).reshape(PICTURE, PICTURE)


@torch.no_grad()
def expected_recon(
    model: VAE, x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, nodes: int = RECON_NODES
) -> float:
    """E_q[log p(x|z)] for a 2-D q = N(mu, diag(sigma^2)) (mu, sigma: (2,)), by the rectangle rule
    on ``nodes`` x ``nodes`` points of q's standardised coordinates over +/- Q_REACH, the Gaussian
    weights normalised to sum to one. (Gauss-Hermite converges slowly here: a ReLU decoder's
    log p(x|z) has kinks.)"""
    t = np.linspace(-Q_REACH, Q_REACH, nodes)
    ta, tb = np.meshgrid(t, t, indexing="ij")
    eps = torch.as_tensor(np.stack([ta.ravel(), tb.ravel()], 1), dtype=x.dtype, device=mu.device)
    recon = log_joint(model, x, mu + sigma * eps) - log_standard_normal(mu + sigma * eps)
    weights = np.exp(-0.5 * (ta**2 + tb**2)).ravel()
    return float((weights * recon.double().cpu().numpy()).sum() / weights.sum())


@torch.no_grad()
def evidence(
    model: VAE,
    x: torch.Tensor,
    ks: tuple[int, ...] = KS,
    grid: int = GRID,
    seed: int = 0,
    double: bool = False,
    tolerance: float = TOLERANCE,
    max_grid: int = MAX_GRID,
    budget: float | None = None,
) -> Evidence:
    """log p(x), the ELBO, KL(q(z|x) || p(z|x)) and L_K of one image x (C, H, W), given in the
    model's data space (binarised for a model of binarised data), in nats. See the module's
    docstring for each method. ``grid``: fine-grid points per axis (odd, so that halving keeps
    the edges), doubled (2G - 1) while halving it moves log p(x) by more than ``tolerance`` nats,
    up to ``max_grid`` (a narrow or far second mode); ``seed``: the importance draws';
    ``double``: compute in float64 on a copy; ``budget``: seconds the whole computation may take
    (the page's): the quadratures first, then the pool of importance draws grown K by K while it
    fits (``l_k`` holds the K reached, each from the first max(K reached) draws of the whole pool).

    Raises:
        ExplorerError: an autoencoder (no q(z|x) and no prior it was fitted to), or an image of
        the wrong shape.
    """
    start = time.perf_counter()
    if not model.config.variational:
        raise ExplorerError(
            "an autoencoder has no q(z|x) and no likelihood bound: evidence needs a VAE; pick one"
        )
    if tuple(x.shape) != tuple(model.config.image_shape):
        raise ExplorerError(
            f"the image is {tuple(x.shape)}, the model takes {tuple(model.config.image_shape)}"
        )
    if double:
        model = copy.deepcopy(model).double()
    weight = next(model.parameters())
    x = x[None].to(weight.device, weight.dtype)
    mu_t, logvar_t = model.encode(x)
    kl_prior = kl_standard_normal(mu_t, logvar_t).item()
    mu, sigma = mu_t[0].double().cpu().numpy(), torch.exp(0.5 * logvar_t[0]).double().cpu().numpy()
    quadrature = _quadrature(model, x, mu_t, logvar_t, grid, tolerance, max_grid) if len(mu) == 2 else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rate = quadrature[-1] if quadrature is not None else None  # the grid's decodes: like the pool's
        log_w, reached = pool(model, x, mu_t, logvar_t, ks, budget, start, rate)
    l_k = bounds_from_pool(log_w, reached)
    if quadrature is None:
        first = bounds_from_pool(log_w, (1,))[1]
        return Evidence(None, first[0], first[1], None, kl_prior, None, l_k, None, None, mu, sigma,
                        seconds=time.perf_counter() - start)  # fmt: skip
    recon, log_px, kl_post, error, q_mass, shown, final, _ = quadrature
    return Evidence(log_px, recon - kl_prior, 0.0, recon, kl_prior, kl_post, l_k, error, q_mass, mu, sigma,
                    *shown, time.perf_counter() - start, final)  # fmt: skip


def _quadrature(model: VAE, x: torch.Tensor, mu_t, logvar_t, grid: int, tolerance: float, max_grid: int):
    """The 2-D latent's quadratures: (E_q[log p(x|z)], log p(x), KL(q || p(z|x)), the halved
    grid's difference, q's mass on the grid, the picture (z1, z2, p(z|x)), the final grid's G,
    and the seconds per decoded point that E_q[log p(x|z)]'s rule took)."""
    sigma_t = torch.exp(0.5 * logvar_t)
    mu, sigma = mu_t[0].double().cpu().numpy(), sigma_t[0].double().cpu().numpy()
    began = time.perf_counter()
    recon = expected_recon(model, x, mu_t[0], sigma_t[0])
    rate = (time.perf_counter() - began) / RECON_NODES**2
    frame, axes, z, values, cell, log_px, coarser, grid = _refined_grid(
        model, x, mu, sigma, grid, tolerance, max_grid
    )
    log_q = log_normal_diag(
        torch.as_tensor(z), torch.as_tensor(mu), torch.as_tensor(2 * np.log(sigma))
    ).numpy()
    q = np.exp(log_q)
    kl_post = float((q * (log_q - (values - log_px))).sum() * cell)
    shown = picture(frame, axes, z, values - log_px, mu, sigma)
    return recon, log_px, kl_post, abs(log_px - coarser), float(q.sum() * cell), shown, grid, rate


def _refined_grid(model: VAE, x: torch.Tensor, mu, sigma, grid: int, tolerance: float, max_grid: int):
    """log p(x, z) on a grid over the posterior's frame, doubled (2G - 1 points per axis) while
    halving it moves log p(x) by more than ``tolerance`` nats, up to ``max_grid``. A doubled grid
    decodes only its new points near where the integrals have mass (``_to_decode``). Returns (the
    frame, u's axes ((G,), (G,)), points (G, G, 2), log p(x, z) (G, G), cell area, log p(x),
    log p(x) on the halved grid, G)."""
    lo, hi = _box(model, x, mu, sigma)
    a, b = _axes(lo, hi, FIRST)
    frame = posterior_frame(_on_grid(model, x, a, b), a, b, mu, sigma)
    known = None  # the grid before: (values, points)
    while True:
        z, axes, cell = frame.points(grid)
        values, decode = np.empty((grid, grid)), np.ones((grid, grid), dtype=bool)
        if known is not None:
            values, decode = _to_decode(*known, mu, sigma)
        flat = torch.as_tensor(z[decode], dtype=x.dtype, device=x.device)
        values[decode] = log_joint(model, x, flat).double().cpu().numpy()
        log_px = _log_sum(values, cell)
        coarser = _log_sum(values[::2, ::2], 4 * cell)
        if abs(log_px - coarser) <= tolerance or 2 * grid - 1 > max_grid:
            return frame, axes, z, values, cell, log_px, coarser, grid
        grid, known = 2 * grid - 1, (values, z)


def _to_decode(known: np.ndarray, z: np.ndarray, mu: np.ndarray, sigma: np.ndarray):
    """For a grid doubled from one whose values ``known`` (G, G) at points ``z`` (G, G, 2) were
    computed: its values (2G - 1, 2G - 1), the known ones at every second point and elsewhere the
    nearest known one, and which of its points to decode: the new points within one old cell of
    an old point where the integrals have mass (log p(x, z) within KEEP_NATS of its maximum, or
    q(z|x) within Q_REACH of its mean). Elsewhere log p(x, z) is more than KEEP_NATS below its
    maximum all around, and q negligible: what it adds to log p(x) or to KL(q || p(z|x)) is below
    e^-KEEP_NATS of them, while a narrow mode far from the mass is refined in full."""
    from scipy.ndimage import binary_dilation

    size = 2 * len(known) - 1
    mass = (known > known.max() - KEEP_NATS) | ((((z - mu) / sigma) ** 2).sum(-1) < Q_REACH**2)
    near = binary_dilation(mass, np.ones((3, 3), dtype=bool))
    values = np.repeat(np.repeat(known, 2, 0), 2, 1)[:size, :size]
    decode = np.repeat(np.repeat(near, 2, 0), 2, 1)[:size, :size]
    decode[::2, ::2] = False
    return values, decode


def data_space_binarized(config: dict) -> bool:
    """Whether a checkpoint's images are binarised in its data space (its config.json as a dict):
    its run's own ``--binarize`` rule, else its dataset's, as ``vae-explorer evaluate`` decides;
    evaluation then scores the test set binarised once with a fixed seed."""
    likelihood = (config.get("model") or {}).get("likelihood", "bernoulli")
    train = config.get("train") or {}
    try:
        return TrainConfig(**train).binarized(likelihood)
    except (TypeError, ValueError):
        return TrainConfig(dataset=train.get("dataset", "mnist")).binarized(likelihood)
