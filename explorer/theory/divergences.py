"""KL's two directions: one Gaussian q fitted to a bimodal target p (Bishop 2006, section 10.1.2,
Figure 10.3; Murphy 2012, section 21.2.2).

- KL(p || q), the forward ("inclusive") direction: minimised by matching moments, q = N(E_p[x],
  Var_p[x]) in closed form. Mass-covering: q spreads over both modes.
- KL(q || p), the reverse ("exclusive") direction, the one variational inference minimises:
  no closed form for a mixture target; minimised numerically (L-BFGS on (mean, log sd)) from a
  start at each mode and at the moment-matched q, keeping the best. Mode-seeking: q sits on one
  mode when the modes are far apart.

Every divergence is an integral on a 1-D grid (the trapezoid rule in float64 on ``GRID_POINTS``
points over the target's mean +/- ``GRID_REACH`` standard deviations, wide enough for both the
target and any fitted q); tests check the grid against closed-form Gaussian KLs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

GRID_POINTS = 4001
GRID_REACH = 10.0  # the grid spans mean +/- this many of the target's standard deviations


@dataclass(frozen=True)
class Bimodal:
    """p(x) = w N(x; -separation/2, sd^2) + (1 - w) N(x; +separation/2, sd^2)."""

    separation: float = 4.0
    sd: float = 0.7
    weight: float = 0.5

    def log_density(self, x: np.ndarray) -> np.ndarray:
        half = self.separation / 2
        parts = [
            math.log(max(self.weight, 1e-300)) + normal_log_density(x, -half, self.sd**2),
            math.log(max(1 - self.weight, 1e-300)) + normal_log_density(x, half, self.sd**2),
        ]
        return logsumexp(np.stack(parts), axis=0)

    @property
    def mean(self) -> float:
        return (1 - 2 * self.weight) * self.separation / 2

    @property
    def variance(self) -> float:
        half = self.separation / 2
        return self.sd**2 + half**2 - self.mean**2  # E[x^2] = sd^2 + (s/2)^2 for either component

    @property
    def modes(self) -> tuple[float, float]:
        return (-self.separation / 2, self.separation / 2)


def normal_log_density(x: np.ndarray, mean: float, var: float) -> np.ndarray:
    """log N(x; mean, var), elementwise."""
    return -0.5 * (math.log(2 * math.pi * var) + (x - mean) ** 2 / var)


def grid_for(target: Bimodal, points: int = GRID_POINTS) -> np.ndarray:
    """The quadrature grid (points,) for ``target``."""
    reach = GRID_REACH * math.sqrt(target.variance)
    return np.linspace(target.mean - reach, target.mean + reach, points)


def kl_on_grid(log_a: np.ndarray, log_b: np.ndarray, grid: np.ndarray) -> float:
    """KL(a || b) = integral a (log a - log b) dx by the trapezoid rule, in nats, from log-densities
    on ``grid``; points where a underflows contribute nothing."""
    a = np.exp(log_a)
    integrand = np.where(a > 0, a * (log_a - log_b), 0.0)
    return float(np.trapezoid(integrand, grid))


def gaussian_kl(m1: float, v1: float, m2: float, v2: float) -> float:
    """KL(N(m1, v1) || N(m2, v2)) in closed form, nats."""
    return 0.5 * (math.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)


@dataclass(frozen=True)
class KLFits:
    """The two fitted Gaussians and all four divergences (nats), with the densities to draw."""

    target: Bimodal
    grid: np.ndarray  # (G,)
    log_p: np.ndarray  # (G,)
    forward: tuple[float, float]  # (mean, variance) minimising KL(p || q): moment matching
    reverse: tuple[float, float]  # (mean, variance) minimising KL(q || p)
    forward_kl: dict  # {"kl_pq": KL(p||q_fwd), "kl_qp": KL(q_fwd||p)}
    reverse_kl: dict  # {"kl_pq": KL(p||q_rev), "kl_qp": KL(q_rev||p)}

    def log_q(self, which: str) -> np.ndarray:
        mean, var = self.forward if which == "forward" else self.reverse
        return normal_log_density(self.grid, mean, var)


def reverse_kl(target: Bimodal, mean: float, var: float, grid: np.ndarray, log_p: np.ndarray) -> float:
    """KL(q || p) for q = N(mean, var) on ``grid``."""
    return kl_on_grid(normal_log_density(grid, mean, var), log_p, grid)


def fit_reverse(target: Bimodal, grid: np.ndarray, log_p: np.ndarray) -> tuple[float, float]:
    """(mean, variance) of the Gaussian minimising KL(q || p), by L-BFGS from each mode and the
    moment-matched q; the lowest of the three local minima."""

    def objective(theta: np.ndarray) -> float:
        return reverse_kl(target, theta[0], math.exp(2 * theta[1]), grid, log_p)

    starts = [(m, math.log(target.sd)) for m in target.modes]
    starts.append((target.mean, 0.5 * math.log(target.variance)))
    best = min((minimize(objective, np.array(s), method="L-BFGS-B") for s in starts), key=lambda r: r.fun)
    return float(best.x[0]), float(math.exp(2 * best.x[1]))


def fit_both(target: Bimodal, points: int = GRID_POINTS) -> KLFits:
    """Fit q = N(m, v) to ``target`` in both directions and measure both divergences of each."""
    grid = grid_for(target, points)
    log_p = target.log_density(grid)
    forward = (target.mean, target.variance)
    reverse = fit_reverse(target, grid, log_p)

    def both(mean: float, var: float) -> dict:
        log_q = normal_log_density(grid, mean, var)
        return {"kl_pq": kl_on_grid(log_p, log_q, grid), "kl_qp": kl_on_grid(log_q, log_p, grid)}

    return KLFits(target, grid, log_p, forward, reverse, both(*forward), both(*reverse))
