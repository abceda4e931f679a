"""EM for a Gaussian mixture and CAVI for the Bayesian mixture of Gaussians, in 2-D, float64.

- EM (Dempster, Laird & Rubin 1977; Bishop 2006, section 9.2.2): the E step sets the
  responsibilities r_nk = p(c_n = k | x_n); the M step refits weights, means and covariances to
  them. Each iteration never lowers the log-likelihood sum_n log sum_k pi_k N(x_n; mu_k, Sigma_k).
  Covariances may get ``reg`` added to their diagonal, as scikit-learn's ``reg_covar`` does, so
  that the two agree step for step (tests/test_theory.py). The default is 0, exact EM: a positive
  ``reg`` makes the M step inexact, and the log-likelihood can then fall by about that much when a
  component collapses onto a few points. A covariance that becomes singular raises
  ``numpy.linalg.LinAlgError``.
- CAVI (Blei, Kucukelbir & McAuliffe 2017, section 3, eqs. 21-26 and their Algorithm 2): the
  model mu_k ~ N(0, sigma^2 I), c_n ~ Categorical(1/K), x_n | c_n, mu ~ N(mu_{c_n}, I); the
  mean-field family q(mu_k) = N(m_k, s_k^2 I), q(c_n) = Categorical(phi_n). Each coordinate update
  is exact, so the ELBO never falls.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

LOG_2PI = math.log(2 * math.pi)


def one_blas_thread(fn):
    """Run ``fn`` with the BLAS libraries on one thread: on matrices of 2 columns, a second thread
    only waits, and on a busy 2-core host its waiting took EM with scikit-learn's check from 0.05 s
    to 1.2-2.6 s (bench/README.md, the Theory page)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapped


@dataclass(frozen=True)
class Mixture:
    """A Gaussian mixture's parameters: weights (K,), means (K, D), covariances (K, D, D)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


def sample_mixture(components: int, spread: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points (n, 2) from a random 2-D mixture of ``components`` Gaussians with centres drawn
    uniformly in [-4, 4]^2 and random covariances of scale ``spread`` (standard deviation along
    each principal axis between 0.5 and 1.5 times it); returns (points, true component (n,))."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-4, 4, size=(components, 2))
    labels = rng.integers(components, size=n)
    points = np.empty((n, 2))
    for k in range(components):
        angle = rng.uniform(0, np.pi)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        scale = np.diag(spread * rng.uniform(0.5, 1.5, size=2))
        chosen = labels == k
        points[chosen] = centres[k] + rng.standard_normal((chosen.sum(), 2)) @ (rotation @ scale).T
    return points, labels


def initial_mixture(x: np.ndarray, components: int, seed: int) -> Mixture:
    """A start for EM: means at ``components`` distinct data points chosen at random, equal
    weights, and every covariance the data's own covariance."""
    rng = np.random.default_rng(seed)
    means = x[rng.choice(len(x), size=components, replace=False)]
    cov = np.cov(x.T) + 1e-6 * np.eye(x.shape[1])
    return Mixture(np.full(components, 1.0 / components), means.copy(), np.repeat(cov[None], components, 0))


def component_log_densities(x: np.ndarray, mixture: Mixture) -> np.ndarray:
    """log pi_k + log N(x_n; mu_k, Sigma_k), shape (N, K), through each covariance's Cholesky
    factor."""
    n, d = x.shape
    out = np.empty((n, len(mixture.weights)))
    for k, (w, mu, cov) in enumerate(zip(mixture.weights, mixture.means, mixture.covariances)):
        chol = np.linalg.cholesky(cov)
        solved = np.linalg.solve(chol, (x - mu).T)  # (D, N)
        log_det = 2 * np.log(np.diag(chol)).sum()
        out[:, k] = math.log(w) - 0.5 * (d * LOG_2PI + log_det + (solved**2).sum(0))
    return out


def e_step(x: np.ndarray, mixture: Mixture) -> tuple[np.ndarray, float]:
    """Responsibilities r (N, K) and the log-likelihood sum_n log p(x_n) in nats."""
    joint = component_log_densities(x, mixture)
    per_point = logsumexp(joint, axis=1)
    return np.exp(joint - per_point[:, None]), float(per_point.sum())


def m_step(x: np.ndarray, resp: np.ndarray, reg: float = 0.0) -> Mixture:
    """Weights, means and covariances (plus ``reg`` on the diagonal) that maximise the expected
    complete-data log-likelihood under responsibilities ``resp`` (N, K) (Bishop 2006, eqs.
    9.24-9.26)."""
    counts = resp.sum(0) + 10 * np.finfo(float).eps  # (K,), as scikit-learn guards empty components
    means = resp.T @ x / counts[:, None]
    covs = np.empty((len(counts), x.shape[1], x.shape[1]))
    for k in range(len(counts)):
        centred = x - means[k]
        covs[k] = (resp[:, k, None] * centred).T @ centred / counts[k] + reg * np.eye(x.shape[1])
    return Mixture(counts / len(x), means, covs)


@dataclass
class EMRun:
    """EM's path: the mixture after each iteration (``mixtures[0]`` is the start), the
    log-likelihood of each (nats, summed over points) and the responsibilities under each."""

    mixtures: list[Mixture] = field(default_factory=list)
    log_likelihood: list[float] = field(default_factory=list)
    responsibilities: list[np.ndarray] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.mixtures) - 1


@one_blas_thread
def em(x: np.ndarray, start: Mixture, iterations: int = 100, tol: float = 1e-8, reg: float = 0.0) -> EMRun:
    """Run EM from ``start`` on points x (N, D) for at most ``iterations`` E+M steps, stopping
    early when the log-likelihood rises by less than ``tol`` nats per point. Returns every
    intermediate mixture with its log-likelihood and responsibilities."""
    run = EMRun()
    mixture = start
    resp, ll = e_step(x, mixture)
    run.mixtures.append(mixture), run.log_likelihood.append(ll), run.responsibilities.append(resp)
    for _ in range(iterations):
        mixture = m_step(x, resp, reg)
        resp, new_ll = e_step(x, mixture)
        run.mixtures.append(mixture), run.log_likelihood.append(new_ll), run.responsibilities.append(resp)
        if new_ll - ll < tol * len(x):
            break
        ll = new_ll
    return run


# -- CAVI for the Bayesian mixture of Gaussians (Blei et al. 2017, section 3) ------------------


@dataclass(frozen=True)
class CaviState:
    """q(mu_k) = N(m_k, s2_k I) with m (K, D), s2 (K,); q(c_n) = Categorical(phi_n), phi (N, K)."""

    m: np.ndarray
    s2: np.ndarray
    phi: np.ndarray


def cavi_elbo(x: np.ndarray, state: CaviState, prior_var: float) -> float:
    """ELBO(q) = E[log p(mu)] + E[log p(c)] + E[log p(x | c, mu)] - E[log q(c)] - E[log q(mu)] in
    nats, in closed form (Blei et al. 2017, eq. 21, written out for D dimensions)."""
    n, d = x.shape
    k = len(state.s2)
    second = d * state.s2 + (state.m**2).sum(1)  # E[mu_k^T mu_k], (K,)
    log_p_mu = (-0.5 * d * math.log(2 * math.pi * prior_var) - second / (2 * prior_var)).sum()
    log_p_c = -n * math.log(k)
    expected_sq = (x**2).sum(1)[:, None] - 2 * x @ state.m.T + second[None]  # E|x_n - mu_k|^2, (N, K)
    log_p_x = (state.phi * (-0.5 * d * LOG_2PI - 0.5 * expected_sq)).sum()
    phi = np.clip(state.phi, 1e-300, None)
    entropy_c = -(state.phi * np.log(phi)).sum()
    entropy_mu = (0.5 * d * (1 + np.log(2 * math.pi * state.s2))).sum()
    return float(log_p_mu + log_p_c + log_p_x + entropy_c + entropy_mu)


def cavi_step(x: np.ndarray, state: CaviState, prior_var: float) -> CaviState:
    """One sweep: every q(c_n) (eq. 24: phi_nk ~ exp(E[mu_k]^T x_n - E[mu_k^T mu_k] / 2)), then
    every q(mu_k) (eqs. 25-26)."""
    d = x.shape[1]
    second = d * state.s2 + (state.m**2).sum(1)
    logits = x @ state.m.T - 0.5 * second[None]
    phi = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    counts = phi.sum(0)
    s2 = 1.0 / (1.0 / prior_var + counts)
    m = (phi.T @ x) * s2[:, None]
    return CaviState(m, s2, phi)


@one_blas_thread
def cavi(
    x: np.ndarray, components: int, prior_var: float, iterations: int = 50, seed: int = 0
) -> tuple[list[CaviState], list[float]]:
    """CAVI from random responsibilities (seeded): the state after each sweep (the first is the
    start's q(mu) refitted to them) and the ELBO of each, in nats."""
    rng = np.random.default_rng(seed)
    phi = rng.dirichlet(np.ones(components), size=len(x))
    counts = phi.sum(0)
    s2 = 1.0 / (1.0 / prior_var + counts)
    state = CaviState((phi.T @ x) * s2[:, None], s2, phi)
    states, elbos = [state], [cavi_elbo(x, state, prior_var)]
    for _ in range(iterations):
        state = cavi_step(x, state, prior_var)
        states.append(state)
        elbos.append(cavi_elbo(x, state, prior_var))
    return states, elbos


@one_blas_thread
def sklearn_log_likelihood(x: np.ndarray, start: Mixture, iterations: int, reg: float = 0.0) -> float:
    """The log-likelihood (nats, summed over points) scikit-learn's ``GaussianMixture`` reaches
    after ``iterations`` EM iterations from the same start (its ``weights_init``, ``means_init``,
    ``precisions_init``; ``tol`` 0 so that it runs them all): the independent check of ``em``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(
        len(start.weights),
        covariance_type="full",
        tol=0.0,
        reg_covar=reg,
        max_iter=iterations,
        weights_init=start.weights,
        means_init=start.means,
        precisions_init=np.linalg.inv(start.covariances),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(x)
    return float(gm.score(x) * len(x))
