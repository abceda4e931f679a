"""The importance-weighted bounds L_K of one image (Burda, Grosse & Salakhutdinov 2015, eq. 8,
Theorem 1: ELBO = L_1 <= L_K <= L_{K+1} <= log p(x)) from one pool of draws from q(z|x), with the
log-weights of ``explorer.likelihood.importance`` (the paper's MLP) or ``explorer.model``'s
likelihoods (any other decoder): for each K the mean over disjoint groups of K draws of the pool,
with its standard error (across groups, or by the delta method where there are fewer than
``MIN_GROUPS``). The pool is computed in stages, one per K, so that the page can stop it where
its time budget ends (``explorer.theory.budget``).
"""

from __future__ import annotations

import math

import torch

from explorer.likelihood.importance import fast_path, log_weights_blocked
from explorer.model import VAE
from explorer.objectives import log_normal_diag, log_standard_normal
from explorer.theory.budget import in_stages

MIN_GROUPS = 10  # fewer disjoint groups of K draws than this: the delta method's standard error
FIRST_STAGE = 100  # the first stage draws every K up to this at once: on fewer, a rate is mostly overhead


def _draws(model: VAE, mu: torch.Tensor, k: int) -> torch.Tensor:
    """k standard normal draws (k, 1, z) for one image's q(z|x), made exactly as
    ``objectives.log_weights`` and ``log_weights_blocked`` make them (the same ``torch.randn``
    calls, chunk by chunk: 1,000 draws at a time for a convolutional decoder), so that the pool is
    the same whether it is drawn at once or stage by stage."""
    chunk = 1000 if model.config.arch == "conv" else k
    return torch.cat([torch.randn(min(chunk, k - s), *mu.shape, dtype=mu.dtype, device=mu.device)
                      for s in range(0, k, chunk)])  # fmt: skip


def _weights(model: VAE, x: torch.Tensor, mu, logvar, eps: torch.Tensor) -> torch.Tensor:
    """log w = log p(x, z) - log q(z|x) at z = mu + sigma * eps for the draws eps (n, 1, z): (n,)
    float64; decoded 1,000 at a time for a convolutional decoder (memory)."""
    if fast_path(model) and x.dtype == torch.float32:
        return log_weights_blocked(model, x, len(eps), eps=eps)[:, 0].double()
    chunk = 1000 if model.config.arch == "conv" else len(eps)
    out = []
    for e in eps.split(chunk):
        z = model.reparameterize(mu, logvar, eps=e)  # (n, 1, z)
        out.append(
            model.log_prob(x, model.decoder_params(z))
            + log_standard_normal(z)
            - log_normal_diag(z, mu, logvar)
        )
    return torch.cat(out)[:, 0].double()


def pool(
    model: VAE,
    x: torch.Tensor,
    mu,
    logvar,
    ks: tuple[int, ...],
    budget: float | None,
    start: float,
    rate: float | None = None,
):
    """(log w (M,) float64, the K reached): the pool of max(ks) draws from q(z|x), computed in
    stages that each complete the draws of the next K, the first those of every K up to
    ``FIRST_STAGE`` (``budget.in_stages``: with a ``budget`` in seconds since ``start``, a stage is
    begun only while it fits; ``rate``: seconds per decode measured just before, if any). All the
    draws are made first (``_draws``), so no draw depends on where the pool stops."""
    eps = _draws(model, mu, max(ks))
    sizes = sorted(set(ks))
    first = max([k for k in sizes if k <= FIRST_STAGE], default=sizes[0])
    parts, done = in_stages(
        lambda a, b: _weights(model, x, mu, logvar, eps[a:b]),
        [k for k in sizes if k >= first],
        budget,
        start,
        rate,
    )
    return torch.cat(parts), tuple(k for k in ks if k <= done)


def bounds_from_pool(log_w: torch.Tensor, ks: tuple[int, ...]) -> dict[int, tuple[float, float]]:
    """L_K (Burda et al. 2015, eq. 8) for each K from one pool of log-weights (M,), float64: the
    mean over M // K disjoint groups of K draws, and its standard error: the groups' spread over
    sqrt(groups), or with fewer than MIN_GROUPS groups the delta method,
    se(log mean w) ~= sd(w) / (sqrt(K) mean(w)), pooled over the groups."""
    out = {}
    for k in ks:
        groups = len(log_w) // k
        if groups < 1:
            raise ValueError(f"a pool of {len(log_w)} draws cannot give L_{k}")
        block = log_w[: groups * k].view(groups, k)
        values = torch.logsumexp(block, 1) - math.log(k)
        if groups >= MIN_GROUPS:
            se = values.std().item() / math.sqrt(groups)
        else:
            scaled = torch.exp(block - block.max(1, keepdim=True).values)  # (groups, K)
            per_group = (
                scaled.std(1, correction=1) / (math.sqrt(k) * scaled.mean(1)) if k > 1 else scaled[:, 0] * 0
            )
            se = math.sqrt((per_group**2).mean().item() / groups)
        out[k] = (values.mean().item(), se)
    return out
