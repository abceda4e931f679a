"""Why reparameterise: how noisy each estimator of the ELBO's gradient with respect to the encoder
is, measured on a trained model and one image.

The ELBO's integrand f(z) = log p(x, z) - log q(z|x), with q = N(mu, diag(exp(logvar))) and
(mu, logvar) = lambda = encoder_phi(x). Three unbiased per-draw estimators of d ELBO / d lambda:

- score function (REINFORCE; Williams 1992), the estimator Kingma & Welling (2013, section 2.2)
  call "the usual (naive) Monte Carlo gradient estimator", which "exhibits very high variance":
  f(z) grad_lambda log q(z|x), z ~ q, with grad_mu log q = eps / sigma and
  grad_logvar log q = (eps^2 - 1) / 2;
- reparameterised, SGVB estimator A (section 2.3, eq. 6): the pathwise gradient of
  f(mu + sigma * eps): grad_mu = grad_z log p(x, z), grad_logvar = grad_z log p(x, z) . sigma eps / 2 + 1/2;
- reparameterised, SGVB estimator B (eq. 7): the pathwise gradient of log p(x|z) minus the analytic
  KL(q || p(z)) (Appendix B): grad_mu = grad_z log p(x|z) - mu,
  grad_logvar = grad_z log p(x|z) . sigma eps / 2 - (sigma^2 - 1) / 2.

The encoder's parameters phi get J^T g, with J = d lambda / d phi fixed for the image, so the
covariance of the phi-gradient is J^T C J for the lambda-gradient's covariance C, and its total
variance (summed over every encoder parameter) is tr(C J J^T): the figure reported, with J J^T
(2z x 2z) from 2z backward passes through the encoder. Each estimator averages L draws; its
variance is measured, for each L, across the disjoint groups of L draws of one pool.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from explorer.errors import ExplorerError
from explorer.model import VAE
from explorer.objectives import log_standard_normal
from explorer.theory.budget import in_stages

ESTIMATORS = ("score", "reparam_a", "reparam_b")
NAMES = {
    "score": "score function (REINFORCE)",
    "reparam_a": "reparameterised, estimator A",
    "reparam_b": "reparameterised, estimator B",
}
SAMPLES = (1, 10, 100)  # L, the draws each gradient estimate averages
PLANS = (((1, 10, 100), 20), ((1, 4, 16), 20), ((1, 2, 4), 10))  # (L values, groups), cheapest last
BUDGET = 1.8  # seconds the page lets the measurement take (``gradient_variance(budget=...)``)
GROUPS = 20  # disjoint groups of L draws the variance of each L is measured over (at the largest L)


@dataclass
class GradientVariance:
    """Measured variances of each estimator (``ESTIMATORS``) of the ELBO's gradient."""

    samples: tuple[int, ...]  # L
    encoder_variance: dict[str, list[float]]  # total variance of the encoder-parameter gradient per L
    lambda_variance: dict[str, list[float]]  # total variance of d ELBO / d (mu, logvar) per L
    mean_gradient: dict[str, list[float]]  # d ELBO / d (mu, logvar), averaged over the whole pool
    mean_gradient_se: dict[str, list[float]]  # its standard errors
    value_variance: dict[str, float] = field(default_factory=dict)  # per-draw variance of the ELBO's A and B
    draws: int = 0  # the pool's size
    seconds: float = 0.0

    def ratio(self, over: str, under: str) -> list[float]:
        """Variance of ``over`` / variance of ``under`` (encoder parameters), per L."""
        return [a / b for a, b in zip(self.encoder_variance[over], self.encoder_variance[under])]


def encoder_jacobian_gram(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """J J^T (2z, 2z) float64 for J = d (mu, logvar) / d phi over every encoder parameter, for one
    image x (1, C, H, W): the 2z rows of J in one batched backward pass (``is_grads_batched``), the
    product summed parameter tensor by parameter tensor (no (2z, |phi|) copy of J is made)."""
    params = [p for name, p in model.named_parameters() if name.startswith(("encoder", "enc_head"))]
    with torch.enable_grad():
        mu, logvar = model.encode(x)
        outputs = torch.cat([mu[0], logvar[0]])
        rows = torch.eye(len(outputs), dtype=outputs.dtype, device=outputs.device)
        grads = torch.autograd.grad(outputs, params, rows, is_grads_batched=True, allow_unused=True)
    gram = torch.zeros(len(outputs), len(outputs), dtype=torch.float64, device=outputs.device)
    for g in grads:
        if g is not None:
            g = g.flatten(1)  # (2z, the tensor's size)
            gram += (g @ g.T).double()
    return gram


def per_draw_gradients(
    model: VAE, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor
) -> dict:
    """Each estimator's gradient with respect to (mu, logvar) for each draw: {name: (N, 2z)}, and
    the per-draw ELBO values of estimators A and B ("value_a", "value_b": (N,)). ``x`` (1, C, H,
    W); ``mu``, ``logvar`` (z,); ``eps`` (N, z)."""
    sigma = torch.exp(0.5 * logvar)
    with torch.enable_grad():
        z = (mu + sigma * eps).detach().requires_grad_(True)  # (N, z)
        log_px_z = model.log_prob(x, model.decoder_params(z[:, None, :]))[:, 0]  # (N,)
        (grad_z,) = torch.autograd.grad(log_px_z.sum(), z)
    z, log_px_z = z.detach(), log_px_z.detach()
    log_prior = log_standard_normal(z)
    log_q = -0.5 * (math.log(2 * math.pi) + logvar + eps.pow(2)).sum(-1)
    f = log_px_z + log_prior - log_q  # estimator A's integrand, (N,)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
    score = f[:, None] * torch.cat([eps / sigma, 0.5 * (eps.pow(2) - 1)], 1)
    joint = grad_z - z  # grad_z log p(x, z)
    half = sigma * eps / 2
    reparam_a = torch.cat([joint, joint * half + 0.5], 1)
    reparam_b = torch.cat([grad_z - mu, grad_z * half - 0.5 * (sigma.pow(2) - 1)], 1)
    return {"score": score, "reparam_a": reparam_a, "reparam_b": reparam_b, "value_a": f,
            "value_b": log_px_z - kl}  # fmt: skip


def grouped_covariance(per_draw: torch.Tensor, samples: int) -> torch.Tensor:
    """The covariance (D, D) across disjoint groups of ``samples`` draws of the group means of
    ``per_draw`` (N, D): the measured covariance of an L-draw estimator."""
    groups = len(per_draw) // samples
    means = per_draw[: groups * samples].view(groups, samples, -1).mean(1)
    return torch.cov(means.T, correction=1).reshape(per_draw.shape[1], per_draw.shape[1])


@torch.no_grad()
def gradient_variance(
    model: VAE,
    x: torch.Tensor,
    samples: tuple[int, ...] = SAMPLES,
    groups: int = GROUPS,
    seed: int = 0,
    budget: float | None = None,
) -> GradientVariance:
    """The variance of each estimator of d ELBO / d phi (the encoder's parameters) for one image
    x (C, H, W), averaging L = each of ``samples`` draws, measured over one pool of
    ``groups`` x max(samples) draws (seeded), in float64 from the float32 model's gradients.
    With a ``budget`` (seconds, the page's) the pool grows through ``PLANS``, cheapest first,
    while it fits (``budget.in_stages``), and the largest plan reached is measured on the first of
    the largest plan's draws (so the largest, reached, gives the figures of the default call).

    Raises:
        ExplorerError: an autoencoder (no q(z|x) to sample: nothing to estimate).
    """
    start = time.perf_counter()
    if not model.config.variational:
        raise ExplorerError("an autoencoder has no q(z|x) and no ELBO: its gradient needs no estimator")
    x = x[None].to(next(model.parameters()).device)
    gram = encoder_jacobian_gram(model, x)
    mu, logvar = (t[0] for t in model.encode(x))
    plans = [(samples, groups)] if budget is None else list(reversed(PLANS))
    sizes = [g * max(s) for s, g in plans]
    eps = torch.randn(max(sizes), len(mu), generator=torch.Generator().manual_seed(seed)).to(mu)
    parts, done = in_stages(
        lambda a, b: per_draw_gradients(model, x, mu, logvar, eps[a:b]), sizes, budget, start
    )
    samples, groups = next(p for p, size in zip(plans[::-1], sizes[::-1]) if size <= done)
    draws = groups * max(samples)
    per_draw = {k: torch.cat([part[k] for part in parts])[:draws].double() for k in parts[0]}
    out = GradientVariance(samples, {}, {}, {}, {}, draws=draws)
    for name in ESTIMATORS:
        grads = per_draw[name]
        covs = [grouped_covariance(grads, s) for s in samples]
        out.encoder_variance[name] = [float((c * gram).sum()) for c in covs]
        out.lambda_variance[name] = [float(c.trace()) for c in covs]
        out.mean_gradient[name] = grads.mean(0).tolist()
        out.mean_gradient_se[name] = (grads.std(0) / math.sqrt(draws)).tolist()
    out.value_variance = {"A": float(per_draw["value_a"].var()), "B": float(per_draw["value_b"].var())}
    out.seconds = time.perf_counter() - start
    return out
