"""Mean field on a correlated 2-D Gaussian (Bishop 2006, section 10.1.2, eqs. 10.11-10.15,
Figure 10.2): the factorised q(z) = q1(z1) q2(z2) closest to p(z) = N(mu, Sigma) in KL(q || p).

With Lambda = Sigma^-1, coordinate ascent (CAVI) sets q_j = N(m_j, 1 / Lambda_jj) with
m1 = mu1 - Lambda_11^-1 Lambda_12 (m2 - mu2) and m2 likewise (eq. 10.13). The fixed point is
m = mu, and the variances 1 / Lambda_jj = Sigma_jj (1 - rho^2) are smaller than the true marginal
variances Sigma_jj: the reverse KL under-estimates the spread. The forward KL(p || q) over the
same family is minimised by the marginals themselves, N(mu_j, Sigma_jj) (eq. 10.17).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def correlated(
    rho: float, sd1: float = 1.0, sd2: float = 1.0, mean=(0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """(mu (2,), Sigma (2, 2)) of a 2-D Gaussian with correlation ``rho`` (|rho| < 1)."""
    if not -1 < rho < 1:
        raise ValueError(f"the correlation must lie strictly between -1 and 1, got {rho}")
    cov = np.array([[sd1**2, rho * sd1 * sd2], [rho * sd1 * sd2, sd2**2]])
    return np.asarray(mean, dtype=float), cov


def kl_gaussians(m_q: np.ndarray, cov_q: np.ndarray, m_p: np.ndarray, cov_p: np.ndarray) -> float:
    """KL(N(m_q, cov_q) || N(m_p, cov_p)) in closed form, nats."""
    d = len(m_q)
    inv_p = np.linalg.inv(cov_p)
    diff = m_p - m_q
    _, logdet_p = np.linalg.slogdet(cov_p)
    _, logdet_q = np.linalg.slogdet(cov_q)
    return float(0.5 * (np.trace(inv_p @ cov_q) + diff @ inv_p @ diff - d + logdet_p - logdet_q))


@dataclass(frozen=True)
class MeanField:
    """CAVI's path and fixed point for one target."""

    mu: np.ndarray  # (2,) the target's mean
    cov: np.ndarray  # (2, 2) the target's covariance
    path: np.ndarray  # (steps + 1, 2): q's means after each coordinate update (the zig-zag)
    variances: np.ndarray  # (2,) 1 / Lambda_jj, the factorised q's variances
    kl_reverse: float  # KL(q || p) at the end of the path, nats
    kl_forward_marginals: float  # KL(p || q*) for q* = product of the true marginals, nats

    @property
    def marginal_variances(self) -> np.ndarray:
        return np.diag(self.cov)

    @property
    def q_cov(self) -> np.ndarray:
        return np.diag(self.variances)


def cavi_gaussian(mu: np.ndarray, cov: np.ndarray, start=(-2.0, 2.0), sweeps: int = 10) -> MeanField:
    """Coordinate ascent from q's means at ``start``: each sweep updates m1 then m2 (eq. 10.13);
    returns the path, the variances and the KL divergences (closed form)."""
    lam = np.linalg.inv(cov)
    m = np.asarray(start, dtype=float).copy()
    path = [m.copy()]
    for _ in range(sweeps):
        for j in (0, 1):
            other = 1 - j
            m[j] = mu[j] - lam[j, other] / lam[j, j] * (m[other] - mu[other])
            path.append(m.copy())
    variances = 1.0 / np.diag(lam)
    kl_reverse = kl_gaussians(m, np.diag(variances), mu, cov)
    kl_forward = kl_gaussians(mu, cov, mu, np.diag(np.diag(cov)))
    return MeanField(mu, cov, np.array(path), variances, kl_reverse, kl_forward)


def shrinkage(rho: float) -> float:
    """The factorised q's variance over the true marginal variance, 1 - rho^2 (for either axis)."""
    return 1 - rho**2


def mutual_information(rho: float) -> float:
    """-1/2 log(1 - rho^2): KL(q || p) at CAVI's fixed point, what the factorisation cannot
    express (nats)."""
    return -0.5 * math.log(1 - rho**2)
