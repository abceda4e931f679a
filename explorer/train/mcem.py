"""Monte Carlo EM with Hybrid Monte Carlo (Kingma & Welling 2013, arXiv 1312.6114v11, Appendix E),
the baseline of the paper's Figure 3:

    "The Monte Carlo EM algorithm does not employ an encoder, instead it samples from the posterior
    of the latent variables using gradients of the posterior computed with grad_z log p(z|x) =
    grad_z log p(z) + grad_z log p(x|z). The Monte Carlo EM procedure consists of 10 HMC leapfrog
    steps with an automatically tuned stepsize such that the acceptance rate was 90%, followed by 5
    weight updates steps using the acquired sample. For all algorithms the parameters were updated
    using the Adagrad stepsizes (with accompanying annealing schedule)."

``mcem_step`` is one such iteration on a minibatch: an E-step (one HMC transition of 10 leapfrog
steps for each datapoint's chain, continued from its stored state, each chain's step size adapted
towards 90% acceptance) and an M-step (5 updates of the given optimiser on -mean log p(x|z) at the
sampled z; the prior on theta, log p(theta), is the optimiser's weight decay, as in the trainer).
``ChainStore`` keeps every training point's chain between epochs.

Where the text leaves a choice open, the paper's own code (D. P. Kingma's anglepy: ``hmc.py``,
``wzoptim.step_batch_mcem``, ``woptim.step_adagrad``) answers it, and we depart from it here:
- "Adagrad [...] with accompanying annealing schedule": anglepy's Adagrad with ``anneal=True`` is
  w += lr * g / sqrt(sum_t g_t^2 + 1e-8), the plain Adagrad whose sum of squares anneals the step
  like 1/sqrt(t); ``torch.optim.Adagrad(lr=..., lr_decay=0)`` is that update (its 1e-10 is added
  after the square root) without anglepy's 10 first steps that only accumulate squares.
- "an automatically tuned stepsize": anglepy's MCEM keeps one step size for all chains, multiplied
  or divided by min(1.25, 1.02^B) when the batch's acceptance is above or below 90%
  (``hmc.adapt_global_step_size``). ``mcem_step`` does that when given one step size (a 0-d
  tensor, ``ChainStore.shared_step``), and tunes one step size per chain
  (``hmc.adapt_step_size``) when given M of them. The shared step adapts at every minibatch; a
  chain's own adapts only when its datapoint is visited, once per epoch, which lags far behind a
  posterior that narrows as the decoder learns (on MNIST at the paper's N(0, 0.01) start, every
  chain accepts everything for its first visits). So the shared step is the default.
- its leapfrog makes n + 1 position updates for "n steps"; ours makes n (Neal 2011).
- its E-step runs over all the chains of the x it is given, then 5 updates cycle over minibatches;
  the trainer here calls ``mcem_step`` per minibatch of M datapoints, so each update uses the
  chains just sampled.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from explorer.likelihood.hmc import adapt_global_step_size, adapt_step_size, hmc_step
from explorer.likelihood.marginal import log_joint
from explorer.model import VAE
from explorer.objectives import log_standard_normal

N_LEAPFROG = 10  # leapfrog steps per E-step (Appendix E)
N_UPDATES = 5  # weight updates per E-step (Appendix E)
TARGET_ACCEPT = 0.9  # Appendix E: "such that the acceptance rate was 90%"
INITIAL_STEP = 0.1  # a new chain's step size (latent units); adaptation takes it from there


class MCEMResult(NamedTuple):
    """One MCEM iteration on a minibatch of M datapoints."""

    z: torch.Tensor  # (M, Nz): the chains' new states
    step_size: torch.Tensor  # () or (M,): the adapted step size(s), as given
    accept_prob: torch.Tensor  # (M,): this E-step's acceptance probabilities
    log_joint: torch.Tensor  # (M,): log p(x, z) at the new states before the updates, nats
    log_px_z: torch.Tensor  # (M,): log p(x|z) at the new states, at the last update (before it), nats


def mcem_step(
    model: VAE,
    x: torch.Tensor,
    z: torch.Tensor,
    step_size: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    n_leapfrog: int = N_LEAPFROG,
    n_updates: int = N_UPDATES,
    target: float = TARGET_ACCEPT,
) -> MCEMResult:
    """One Monte Carlo EM iteration (Appendix E) on images x (M, C, H, W) whose chains stand at z
    (M, Nz): an HMC transition of ``n_leapfrog`` leapfrog steps per chain on log p(x|z) + log p(z),
    the step size adapted towards ``target`` acceptance, then ``n_updates`` steps of ``optimizer``
    on -mean_m log p(x_m|z_m) (the decoder's parameters; an encoder, if any, gets no gradient).
    ``step_size``: one for all chains, a 0-d tensor (the paper's code's rule,
    ``adapt_global_step_size``), or one per chain (M,) (``adapt_step_size``); returned in the
    same shape.

    The caller stores the returned states and step size (``ChainStore.update``) for the next visit.
    """
    out = hmc_step(z, log_joint(model, x), step_size, n_leapfrog)
    if step_size.ndim == 0:
        new_step = adapt_global_step_size(step_size, out.accept_prob, target)
    else:
        new_step = adapt_step_size(step_size, out.accept_prob, target)
    z_new = out.z.detach()
    log_px_z = out.log_density - log_standard_normal(z_new)  # n_updates = 0: before any update
    for _ in range(n_updates):
        log_px_z = model.log_prob(x, model.decoder_params(z_new))
        optimizer.zero_grad(set_to_none=True)
        (-log_px_z.mean()).backward()
        optimizer.step()
    return MCEMResult(z_new, new_step, out.accept_prob, out.log_density, log_px_z.detach())


class ChainStore:
    """Every training datapoint's HMC chain, kept between epochs (Monte Carlo EM continues each
    chain where its last visit left it): states z (N, Nz), a step size per chain (N,) and the
    step size shared by all (0-d, ``shared_step``: the default, see the module's docstring).
    Indexed by the datapoints' indices in the training set; saved as three tensors
    (``state_dict``)."""

    def __init__(
        self, z: torch.Tensor, step_size: torch.Tensor, shared_step: torch.Tensor | None = None
    ) -> None:
        if z.ndim != 2 or step_size.shape != (z.shape[0],):
            raise ValueError(
                f"chains need states (N, Nz) and step sizes (N,), got {tuple(z.shape)} and "
                f"{tuple(step_size.shape)}"
            )
        self.z, self.step_size = z, step_size
        self.shared_step = step_size.new_tensor(INITIAL_STEP) if shared_step is None else shared_step

    @classmethod
    def create(
        cls,
        n: int,
        latent_dim: int,
        step_size: float = INITIAL_STEP,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> ChainStore:
        """``n`` chains started from the prior, z ~ N(0, I) (drawn on the CPU with ``generator``,
        then moved, so that a seed gives the same chains on any device), with ``step_size`` as each
        chain's and as the shared step."""
        z = torch.randn(n, latent_dim, generator=generator).to(device)
        steps = torch.full((n,), float(step_size), device=device)
        return cls(z, steps, torch.tensor(float(step_size), device=device))

    def __len__(self) -> int:
        return self.z.shape[0]

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The states (M, Nz) and own step sizes (M,) of the datapoints ``index`` (M,)."""
        index = index.to(self.z.device)
        return self.z[index], self.step_size[index]

    def update(self, index: torch.Tensor, z: torch.Tensor, step_size: torch.Tensor) -> None:
        """Store the chains of the datapoints ``index`` (M,) after a visit, and their step size:
        one per chain (M,), or the shared one (0-d)."""
        index = index.to(self.z.device)
        self.z[index] = z.detach().to(self.z.dtype)
        step = step_size.detach().to(self.step_size)
        if step.ndim == 0:
            self.shared_step = step
        else:
            self.step_size[index] = step

    def state_dict(self) -> dict[str, torch.Tensor]:
        """{"chains.z": (N, Nz), "chains.step_size": (N,), "chains.shared_step": ()}: contiguous
        CPU tensors, as safetensors saves them."""
        return {
            "chains.z": self.z.detach().cpu().contiguous(),
            "chains.step_size": self.step_size.detach().cpu().contiguous(),
            "chains.shared_step": self.shared_step.detach().cpu().contiguous(),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Take the chains of ``state_dict``'s form, on this store's device.

        Raises:
            ValueError: missing tensors, or chains of another count or latent size.
        """
        missing = {"chains.z", "chains.step_size", "chains.shared_step"} - set(state)
        if missing:
            raise ValueError(
                f"the checkpoint has no MCEM chains ({', '.join(sorted(missing))}); "
                "start the run afresh or resume from a checkpoint of an MCEM run"
            )
        z, step = state["chains.z"], state["chains.step_size"]
        if z.shape != self.z.shape or step.shape != self.step_size.shape:
            raise ValueError(
                f"the checkpoint's chains are {tuple(z.shape)} but this run needs {tuple(self.z.shape)} "
                "(training points x latent size); resume with the same data limit and model"
            )
        self.z = z.to(device=self.z.device, dtype=self.z.dtype).clone()
        self.step_size = step.to(self.step_size).clone()
        self.shared_step = state["chains.shared_step"].to(self.step_size).reshape(())
