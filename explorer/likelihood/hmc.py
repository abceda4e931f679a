"""Hybrid (Hamiltonian) Monte Carlo over a batch of independent chains, one per datapoint.

Neal 2011, "MCMC using Hamiltonian dynamics" (Handbook of MCMC, chapter 5): the leapfrog method
(Section 5.2.3.3), the HMC transition with its Metropolis test on H(z, p) = -log pi(z) + |p|^2 / 2
(Section 5.3.2, unit mass matrix), and the tuning of the step size (Section 5.4.2). The paper's
Monte Carlo EM (Appendix E of arXiv 1312.6114v11) runs it on p_theta(z|x):

    "The Monte Carlo EM procedure consists of 10 HMC leapfrog steps with an automatically tuned
    stepsize such that the acceptance rate was 90%, followed by 5 weight updates steps using the
    acquired sample."

Every chain has its own step size (B,) and its own accept/reject: B chains in a (B, Nz) tensor are
B Markov chains, not one chain on a B x Nz state, so one datapoint's rejection never holds back
another's (a library kernel such as Pyro's HMC or hamiltorch makes one Metropolis test and keeps one
step size for the whole state, which is a different sampler whose acceptance falls as B grows).
Gradients come from torch.autograd on the sum of the chains' log densities: the chains are
independent, so d(sum_b log pi_b)/dz_b = d log pi_b / dz_b.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

LogDensity = Callable[[torch.Tensor], torch.Tensor]  # z (B, Nz) -> log pi(z) (B,), nats
Gradient = Callable[[torch.Tensor], torch.Tensor]  # z (B, Nz) -> d log pi / dz (B, Nz)

ADAPT_RATE = 0.5  # change of log(step size) per unit of (acceptance - target), each HMC step
MIN_STEP, MAX_STEP = 1e-4, 10.0  # bounds on an adapted step size (latent units)


def value_and_grad(log_density_fn: LogDensity, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(z) (B,) and its gradient (B, Nz) by torch.autograd on the sum over chains (the
    chains are independent, so each row gets its own gradient); both detached. Gradients reach
    only z: a network's parameters collect none."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        log_p = log_density_fn(z)
        (grad,) = torch.autograd.grad(log_p.sum(), z)
    return log_p.detach(), grad


def leapfrog(
    z: torch.Tensor,
    p: torch.Tensor,
    grad_log_density: Gradient,
    step_size: torch.Tensor | float,
    n_steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_steps`` leapfrog steps of Hamilton's equations for H = -log pi(z) + |p|^2 / 2 (Neal
    2011, eqs. 5.18-5.20): a half step of p, alternating full steps of z and p, a half step of p.

    z, p (B, Nz); ``step_size`` a number or (B,), one per chain. Returns (z, p) at the end, both
    (B, Nz). Reversible (negate p, run again: back to the start) and volume-preserving; it calls
    ``grad_log_density`` n_steps + 1 times.
    """
    eps = torch.as_tensor(step_size, dtype=z.dtype, device=z.device)
    eps = eps.reshape(-1, 1) if eps.ndim else eps  # (B, 1): broadcasts over Nz
    p = p + 0.5 * eps * grad_log_density(z)
    for i in range(n_steps):
        z = z + eps * p
        weight = eps if i < n_steps - 1 else 0.5 * eps
        p = p + weight * grad_log_density(z)
    return z, p


class HMCStep(NamedTuple):
    """One HMC transition of B chains."""

    z: torch.Tensor  # (B, Nz): the new states (the old ones where rejected)
    accept: torch.Tensor  # (B,) bool: the proposal was accepted
    accept_prob: torch.Tensor  # (B,): min(1, exp(-dH)), 0 for a trajectory that diverged
    log_density: torch.Tensor  # (B,): log pi at the new states, nats


def hmc_step(
    z: torch.Tensor,
    log_density_fn: LogDensity,
    step_size: torch.Tensor | float,
    n_leapfrog: int,
    jitter: float = 0.0,
) -> HMCStep:
    """One HMC transition for each of B independent chains (Neal 2011, Section 5.3.2): fresh
    momenta p ~ N(0, I), ``n_leapfrog`` leapfrog steps, then per chain accept the end point with
    probability min(1, exp(H(z, p) - H(z', p'))). ``step_size`` a number or (B,); ``jitter`` > 0
    draws each chain's step uniformly from step * [1 - jitter, 1 + jitter] (Neal's Section 5.4.2
    remedy for periodic trajectories). Non-finite energies (a diverged trajectory) are rejected.

    z (B, Nz) -> ``HMCStep``. ``log_density_fn`` maps (B, Nz) to (B,) in nats and is differentiated
    by autograd (``value_and_grad``). Draws use torch's global generator on z's device.
    """
    b = z.shape[0]
    eps = torch.as_tensor(step_size, dtype=z.dtype, device=z.device).expand(b)
    if jitter > 0:
        eps = eps * (1 + jitter * (2 * torch.rand(b, dtype=z.dtype, device=z.device) - 1))
    log_p0, grad0 = value_and_grad(log_density_fn, z)
    last = {"log_p": log_p0}
    first = [True]

    def grad(point: torch.Tensor) -> torch.Tensor:
        if first[0]:  # the start's gradient is known
            first[0] = False
            return grad0
        last["log_p"], g = value_and_grad(log_density_fn, point)
        return g

    p0 = torch.randn_like(z)
    z1, p1 = leapfrog(z, p0, grad, eps, n_leapfrog)
    log_p1 = last["log_p"]
    h0 = -log_p0 + 0.5 * p0.pow(2).sum(-1)
    h1 = -log_p1 + 0.5 * p1.pow(2).sum(-1)
    log_ratio = (h0 - h1).clamp(max=0.0)
    accept_prob = torch.where(torch.isfinite(log_ratio), log_ratio.exp(), torch.zeros_like(log_ratio))
    accept = torch.rand_like(accept_prob) < accept_prob
    z_new = torch.where(accept[:, None], z1, z)
    return HMCStep(z_new, accept, accept_prob, torch.where(accept, log_p1, log_p0))


def adapt_step_size(
    step_size: torch.Tensor,
    accept: torch.Tensor,
    target: float = 0.9,
    rate: float = ADAPT_RATE,
) -> torch.Tensor:
    """Each chain's step size moved towards an acceptance rate of ``target`` (the paper's MCEM:
    "an automatically tuned stepsize such that the acceptance rate was 90%", Appendix E):
    log eps <- log eps + rate * (a - target), a the chain's acceptance probability (B,) (or its
    0/1 accept: the same mean, more noise). Where a chain accepts more often than ``target`` its
    step grows, else it shrinks; the fixed point is E[a] = target. Clamped to [MIN_STEP, MAX_STEP].

    A step size that keeps changing makes the chain not exactly reversible (Neal 2011, Section
    5.4.2): adapt during burn-in and freeze it for samples that must be exact (the Appendix D
    estimator does); Monte Carlo EM adapts throughout, as the paper did, since its target moves
    with theta anyway. Returns the new step sizes (B,).
    """
    a = accept.to(step_size.dtype)
    return (step_size * torch.exp(rate * (a - target))).clamp(MIN_STEP, MAX_STEP)


def adapt_global_step_size(
    step_size: torch.Tensor, accept: torch.Tensor, target: float = 0.9, factor: float = 1.25
) -> torch.Tensor:
    """One step size shared by all chains, as in the paper's code (anglepy ``hmc_step_autotune``):
    multiplied by ``factor`` when the batch's mean acceptance is at least ``target``, else divided
    by it. ``step_size`` (B,) or (): returned with the same shape."""
    up = accept.to(step_size.dtype).mean() >= target
    return (step_size * (factor if up else 1 / factor)).clamp(MIN_STEP, MAX_STEP)


def sample_chains(
    z: torch.Tensor,
    log_density_fn: LogDensity,
    step_size: torch.Tensor,
    n_leapfrog: int,
    n_steps: int,
    adapt: bool = False,
    target: float = 0.9,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_steps`` HMC transitions of B chains from z (B, Nz), adapting each chain's step size
    when ``adapt``. Returns the states after each transition (n_steps, B, Nz), their log densities
    (n_steps, B), the final step sizes (B,) and each chain's mean acceptance probability (B,)."""
    states, log_ps, accepts = [], [], []
    for _ in range(n_steps):
        out = hmc_step(z, log_density_fn, step_size, n_leapfrog)
        if adapt:
            step_size = adapt_step_size(step_size, out.accept_prob, target)
        z = out.z
        states.append(z)
        log_ps.append(out.log_density)
        accepts.append(out.accept_prob)
    if not states:
        empty = z.new_zeros((0, *z.shape))
        return empty, z.new_zeros((0, z.shape[0])), step_size, z.new_full((z.shape[0],), math.nan)
    return torch.stack(states), torch.stack(log_ps), step_size, torch.stack(accepts).mean(0)
