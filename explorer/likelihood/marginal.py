"""The paper's marginal-likelihood estimator (Kingma & Welling 2013, arXiv 1312.6114v11,
Appendix D), for models with a small latent space:

    "We derived the following marginal likelihood estimator that produces good estimates of the
    marginal likelihood as long as the dimensionality of the sampled space is low (less then 5
    dimensions), and sufficient samples are taken. [...] The estimation process consists of three
    stages:
    1. Sample L values {z^(l)} from the posterior using gradient-based MCMC, e.g. Hybrid Monte
       Carlo, using grad_z log p(z|x) = grad_z log p(z) + grad_z log p(x|z).
    2. Fit a density estimator q(z) to these samples {z^(l)}.
    3. Again, sample L new values from the posterior. Plug these samples, as well as the fitted
       q(z), into the following estimator:
           p(x^(i)) ~= ( 1/L sum_l q(z^(l)) / (p(z) p(x^(i)|z^(l))) )^-1  where z^(l) ~ p(z|x^(i))"

The fresh draws of stage 3 come from the posterior, not from q: 1/p(x) = int q(z) dz / p(x) =
E_{p(z|x)}[q(z) / p(x, z)] for any normalised q (reciprocal importance sampling), so the estimate
is consistent whatever q is, and its variance is small when q is close to the posterior with
lighter tails. Figure 3's setting (Appendix E): "The marginal likelihood was estimated with the
first 1000 datapoints from the train and test sets, for each datapoint sampling 50 values from the
posterior of the latent variables using Hybrid Monte Carlo with 4 leapfrog steps."

q(z), as in the paper's own code (anglepy ``hmc_est.estimate_mcmc_likelihood``, method "kde2"):
the chain's samples are split in halves; a Gaussian kernel density estimate with kernel covariance
f^2 Cov(samples) (scipy's ``gaussian_kde``) is fitted to the first half, the bandwidth factor f
chosen from Scott's n^(-1/(d+4)) times e^((i-5)/2), i = 0..9, by the held-out likelihood of one half
of those samples under a KDE of the other; the second half are the fresh posterior draws. A KDE
follows a skewed or banana-shaped posterior where one Gaussian would not, and its narrow kernels
keep its tails inside the posterior's, which keeps q / p(x, z) bounded.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from explorer.likelihood.hmc import LogDensity, sample_chains
from explorer.model import VAE
from explorer.objectives import LOG_2PI, log_standard_normal

BANDWIDTHS = 10  # candidate KDE factors, Scott's times e^((i - 5) / 2), i = 0..9 (the paper's code)
DENSITIES = ("kde", "gaussian")


def log_joint(model: VAE, x: torch.Tensor) -> LogDensity:
    """z (..., B, Nz) -> log p(x|z) + log p(z) (..., B) in nats for the images x (B, C, H, W),
    through the model's own decoder likelihood (``VAE.log_prob``) and prior."""

    def fn(z: torch.Tensor) -> torch.Tensor:
        return model.log_prob(x, model.decoder_params(z)) + log_standard_normal(z)

    return fn


def _whiten(samples: torch.Tensor, ridge: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per datapoint, the Cholesky factor C (B, d, d) of the samples' covariance (S, B, d) (ddof 1,
    plus ``ridge`` times its mean variance, so that a stuck chain still has a density), and
    log det C (B,)."""
    centred = samples - samples.mean(0)
    cov = torch.einsum("sbi,sbj->bij", centred, centred) / max(samples.shape[0] - 1, 1)
    d = samples.shape[-1]
    scale = cov.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-12)  # (B,)
    eye = torch.eye(d, dtype=samples.dtype, device=samples.device)
    chol = torch.linalg.cholesky(cov + ridge * scale[:, None, None] * eye)
    return chol, chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)


def _solve(chol: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """C^-1 z for z (S, B, d) with C (B, d, d) lower triangular: (S, B, d)."""
    out = torch.linalg.solve_triangular(chol, z.permute(1, 2, 0), upper=False)  # (B, d, S)
    return out.permute(2, 0, 1)


def kde_log_density(
    centres: torch.Tensor, points: torch.Tensor, factor: torch.Tensor | float, chol: torch.Tensor
) -> torch.Tensor:
    """log q(points) (P, B) of a Gaussian KDE per datapoint: kernels at ``centres`` (S, B, d) with
    covariance factor^2 C C^T (C = ``chol`` (B, d, d)); ``factor`` a number or (B,)."""
    s, d = centres.shape[0], centres.shape[-1]
    f = torch.as_tensor(factor, dtype=centres.dtype, device=centres.device)
    a, c = _solve(chol, points), _solve(chol, centres)  # whitened (P, B, d), (S, B, d)
    sq = (a[:, None] - c[None]).pow(2).sum(-1)  # (P, S, B)
    log_k = -0.5 * sq / f**2 - d * torch.log(f) - 0.5 * d * LOG_2PI
    log_det = chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (B,)
    return torch.logsumexp(log_k, dim=1) - math.log(s) - log_det


def fit_kde(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's code's KDE (see the module's docstring) for samples (S, B, d), S >= 4: the
    bandwidth factor per datapoint (B,) and the Cholesky factor (B, d, d) of the samples'
    covariance."""
    s, d = samples.shape[0], samples.shape[-1]
    half = s // 2
    fit, held = samples[half:], samples[:half]
    chol_fit, _ = _whiten(fit)
    scott = s ** (-1.0 / (d + 4))  # Scott's factor for all S samples, as the paper's code has it
    factors = [scott * math.exp((i - 5) / 2) for i in range(BANDWIDTHS)]
    scores = torch.stack([kde_log_density(fit, held, f, chol_fit).sum(0) for f in factors])  # (F, B)
    best = torch.tensor(factors, dtype=samples.dtype, device=samples.device)[scores.argmax(0)]
    chol, _ = _whiten(samples)
    return best, chol


def fitted_log_density(fit_samples: torch.Tensor, points: torch.Tensor, density: str = "kde") -> torch.Tensor:
    """log q(points) (P, B) for q fitted per datapoint to ``fit_samples`` (S, B, d): the paper's
    code's KDE ("kde") or one full-covariance Gaussian ("gaussian").

    Raises:
        ValueError: an unknown density.
    """
    if density == "kde":
        factor, chol = fit_kde(fit_samples)
        return kde_log_density(fit_samples, points, factor, chol)
    if density == "gaussian":
        chol, log_det = _whiten(fit_samples)
        w = _solve(chol, points - fit_samples.mean(0))
        return -0.5 * w.pow(2).sum(-1) - log_det - 0.5 * points.shape[-1] * LOG_2PI
    raise ValueError(f"density must be one of {DENSITIES}, got {density!r}")


def reciprocal_estimate(log_q: torch.Tensor, log_pxz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Appendix D's estimate from posterior draws: log p(x) = -log(1/L sum_l q(z_l) / p(x, z_l)),
    by logsumexp; log_q and log_pxz (L, B) -> (log p(x) (B,), its standard error (B,) by the delta
    method: sd(r) / (mean(r) sqrt(L)) with r = q / p(x, z), both in nats)."""
    log_r = log_q - log_pxz  # (L, B)
    n = log_r.shape[0]
    log_mean = torch.logsumexp(log_r, dim=0) - math.log(n)
    r = torch.exp(log_r - log_mean)  # ratios over their mean
    stderr = r.std(0) / math.sqrt(n) if n > 1 else torch.full_like(log_mean, math.inf)
    return -log_mean, stderr


class PaperEstimate(NamedTuple):
    """The Appendix D estimate per datapoint and how its chains went."""

    log_px: torch.Tensor  # (B,) nats
    stderr: torch.Tensor  # (B,) nats: delta-method standard error of log_px
    accept_rate: torch.Tensor  # (B,) mean acceptance probability while sampling
    step_size: torch.Tensor  # (B,) the step sizes used after burn-in
    z: torch.Tensor  # (B, Nz): the chains' last states


START_DRAWS = 100  # draws of q(z|x) among which "encoder-best" picks a chain's start
PRIOR_DRAWS = 1000  # draws of p(z) among which "prior-best" picks a chain's start


def start_states(model: VAE, x: torch.Tensor, start: torch.Tensor | str) -> torch.Tensor:
    """Where the chains start (B, Nz): given states; "encoder": the mean of q(z|x);
    "encoder-best": of that mean and ``START_DRAWS`` draws of q(z|x), the one with the highest
    log p(x, z) (a chain cannot cross between separated modes at the step sizes of 90%
    acceptance, so it should start in the heaviest one it can find); "prior": z ~ p(z);
    "prior-best": of ``PRIOR_DRAWS`` draws of p(z), the one with the highest log p(x, z) (a model
    without an encoder: Monte Carlo EM's decoder); "auto": "encoder-best" where the model is a
    VAE, else "prior-best".

    Raises:
        ValueError: an unknown start, or states of the wrong shape.
    """
    b, nz = x.shape[0], model.config.latent_dim
    device = next(model.parameters()).device
    if isinstance(start, torch.Tensor):
        if start.shape != (b, nz):
            raise ValueError(f"start states must be ({b}, {nz}), got {tuple(start.shape)}")
        return start.to(device=device, dtype=x.dtype)
    if start == "auto":
        start = "encoder-best" if model.config.variational else "prior-best"
    if start in ("encoder", "encoder-best"):
        with torch.no_grad():
            mu, logvar = model.encode(x)
            if start == "encoder":
                return mu.detach()
            draws = torch.cat([mu[None], model.reparameterize(mu, logvar, START_DRAWS)])  # (K+1, B, Nz)
            best = log_joint(model, x)(draws).argmax(0)  # (B,)
            return draws[best, torch.arange(b, device=draws.device)]
    if start == "prior":
        return torch.randn(b, nz, dtype=x.dtype, device=device)
    if start == "prior-best":
        return _best_prior_draw(model, x, PRIOR_DRAWS)
    raise ValueError(
        f"start must be states, 'auto', 'encoder', 'encoder-best', 'prior' or 'prior-best', got {start!r}"
    )


def _best_prior_draw(model: VAE, x: torch.Tensor, draws: int, chunk: int = 50) -> torch.Tensor:
    """Per image of x (B, C, H, W), the draw of p(z) with the highest log p(x, z) among ``draws``
    (B, Nz); drawn and scored ``chunk`` at a time, so memory stays at chunk x B decodes."""
    b, nz = x.shape[0], model.config.latent_dim
    device = next(model.parameters()).device
    fn = log_joint(model, x)
    best_z = torch.zeros(b, nz, dtype=x.dtype, device=device)
    best = torch.full((b,), -torch.inf, dtype=x.dtype, device=device)
    with torch.no_grad():
        for done in range(0, draws, chunk):
            z = torch.randn(min(chunk, draws - done), b, nz, dtype=x.dtype, device=device)
            values = fn(z)  # (chunk, B)
            top, at = values.max(0)
            better = top > best
            best = torch.where(better, top, best)
            best_z[better] = z[at, torch.arange(b, device=device)][better]
    return best_z


def paper_estimate(
    model: VAE,
    x: torch.Tensor,
    n_samples: int = 50,
    n_leapfrog: int = 4,
    burn_in: int = 100,
    start: torch.Tensor | str = "auto",
    step_size: float | torch.Tensor = 0.1,
    target: float = 0.9,
    density: str = "kde",
) -> PaperEstimate:
    """Appendix D's estimate of log p(x) per image of x (B, C, H, W) (the model's data space:
    binarised for Bernoulli MNIST), in nats, with its chains' record.

    One HMC chain per image on log p(x|z) + log p(z) (``n_leapfrog`` leapfrog steps per
    transition) from ``start`` (``start_states``), ``burn_in`` transitions with each chain's step
    size adapted towards ``target`` acceptance, then ``n_samples`` transitions with the step size
    frozen; q (``density``) is fitted to the first half of those states and the second half are
    the fresh posterior draws (the paper's code; its Figure 3: n_samples 50, n_leapfrog 4). Works
    for a decoder alone (Monte Carlo EM's model): pass start="prior" or the chains' states.

    Raises:
        ValueError: n_samples < 4 (two halves of at least two), or an unknown start or density.
    """
    if n_samples < 4:
        raise ValueError(f"n_samples must be at least 4 (two halves of two), got {n_samples}")
    if density not in DENSITIES:
        raise ValueError(f"density must be one of {DENSITIES}, got {density!r}")
    z = start_states(model, x, start)
    fn = log_joint(model, x)
    steps = torch.as_tensor(step_size, dtype=z.dtype, device=z.device).expand(len(z)).clone()
    if burn_in:
        states, _, steps, _ = sample_chains(z, fn, steps, n_leapfrog, burn_in, adapt=True, target=target)
        z = states[-1]
    states, log_pxz, _, accept = sample_chains(z, fn, steps, n_leapfrog, n_samples)
    half = n_samples // 2
    with torch.no_grad():
        log_q = fitted_log_density(states[:half], states[half:], density)
    log_px, stderr = reciprocal_estimate(log_q, log_pxz[half:])
    return PaperEstimate(log_px, stderr, accept, steps, states[-1])


def paper_log_likelihood(
    model: VAE, x: torch.Tensor, n_samples: int = 50, n_leapfrog: int = 4, **kw
) -> torch.Tensor:
    """log p(x) per image (B,) in nats by the paper's Appendix D estimator: ``paper_estimate``'s
    figure (same arguments)."""
    return paper_estimate(model, x, n_samples, n_leapfrog, **kw).log_px
