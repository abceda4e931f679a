"""The training step: one minibatch's loss, its gradient and one optimiser update, behind one
interface whatever runs it.

``make_step_runner`` gives the step for a run: ``EagerStep`` (a plain forward, backward and
update; wrapped in DistributedDataParallel when several processes train) or ``GraphStep`` (on one
CUDA device, a few eager steps, then the step captured as one CUDA graph and checked against the
eager step before it is trusted; see ``explorer.train.cuda_graph``). Every runner is called with a
minibatch x (M, C, H, W) and its noise (``step_noise``: eps (L, M, z), and for wake-sleep the
sleep phase's z (M, z) and image noise (M, D)) and returns the step's (loss, recon, kl) on
the device, and says in ``path`` how it steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from explorer.config import TrainConfig
from explorer.model import VAE
from explorer.objectives import (
    autoencoder_terms,
    corrupt,
    dream_noise,
    elbo_terms,
    iwae_bound,
    wake_sleep_losses,
)
from explorer.train.cuda_graph import WARMUP_STEPS, capture, eager_reason, quiet_uncaptured_steps, side_stream

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


def make_optimizer(model: VAE, cfg: TrainConfig, capturable: bool = False) -> torch.optim.Optimizer:
    """The configured optimiser; ``capturable`` (Adam, RMSprop on CUDA) keeps its step count on the
    device so that its update can be recorded in a CUDA graph."""
    cls = OPTIMIZERS[cfg.optimizer]
    kwargs = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    params = list(model.parameters())
    if cfg.algorithm == "mcem":  # Monte Carlo EM learns the decoder alone (no recognition model)
        params = [p for n, p in model.named_parameters() if not n.startswith(("encoder", "enc_head"))]
    if capturable:
        kwargs["capturable"] = True
    if cfg.optimizer in ("adam", "adagrad", "sgd"):
        # One fused kernel for the whole update where the device has one (Adam on CPU: 23% off
        # a 784-400-20 step); the same mathematics as the per-parameter loop.
        try:
            return cls(params, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):
            pass
    return cls(params, **kwargs)


class Loss(nn.Module):
    """One minibatch's loss and its (loss, recon, kl) means: the module that DistributedDataParallel
    wraps when several processes train, called directly when one does."""

    def __init__(self, model: VAE, cfg: TrainConfig) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(
        self, x: torch.Tensor, eps: torch.Tensor, *sleep: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (M, C, H, W), eps (L, M, z) (wake-sleep: then z (M, z) and noise (M, D) for its sleep
        phase) -> (the loss to minimise, (loss, recon, kl) detached). The autoencoders use no eps;
        the denoising one corrupts x afresh (the target stays x). Wake-sleep's loss is the sum of
        its two phases' losses (each reaches its own parameters); its reported loss is -ELBO."""
        kind = self.model.config.model
        if self.cfg.algorithm == "wake-sleep":
            phases = wake_sleep_losses(self.model, x, eps, *sleep, estimator=self.cfg.estimator)
            terms, loss = phases.terms, phases.wake + phases.sleep
            reported = -terms.elbo.mean()
            return loss, torch.stack([reported, terms.recon.mean(), terms.kl.mean()])
        if kind != "vae":
            inputs = corrupt(x, self.cfg.corruption, self.cfg.corruption_level) if kind == "dae" else None
            terms = autoencoder_terms(self.model, x, inputs)
            loss = -terms.recon.mean()
        elif self.cfg.objective == "iwae":  # the loss is -L_K; recon and KL are the ELBO's parts
            bound, terms = iwae_bound(self.model, x, self.cfg.samples, eps)
            loss = -bound.mean()
        else:
            terms = elbo_terms(self.model, x, self.cfg.estimator, self.cfg.samples, eps)
            loss = terms.loss(self.cfg.beta)
        return loss, torch.stack([loss.detach(), terms.recon.detach().mean(), terms.kl.detach().mean()])


class EagerStep:
    """Forward, backward (DDP averages the gradients here when it wraps ``loss``), update."""

    def __init__(self, loss: nn.Module, optimizer: torch.optim.Optimizer, path: str = "eager step") -> None:
        self.loss, self.optimizer, self.path = loss, optimizer, path

    def __call__(self, x: torch.Tensor, *noise: torch.Tensor) -> torch.Tensor:
        loss, stats = self.loss(x, *noise)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return stats


class GraphStep:
    """The step on one CUDA device: ``WARMUP_STEPS`` eager steps on a side stream (PyTorch's
    warm-up before capture), then the step captured as a CUDA graph, checked against the eager
    step, and replayed from then on; if capture fails or disagrees, eager for good.
    ``on_path`` is told when the path is settled."""

    def __init__(self, loss: Loss, optimizer, device: torch.device, on_path: Callable[[str], None]) -> None:
        self.eager = EagerStep(loss, optimizer)
        self.loss, self.optimizer, self.device, self.on_path = loss, optimizer, device, on_path
        self.graphed, self.warm, self.settled = None, 0, False
        self.path = "eager step (warming up before the CUDA graph is captured)"

    def __call__(self, x: torch.Tensor, *noise: torch.Tensor) -> torch.Tensor:
        if self.graphed is not None:
            return self.graphed(x, *noise)
        if self.settled:
            return self.eager(x, *noise)
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            stream = side_stream(self.device)
            with torch.cuda.stream(stream), quiet_uncaptured_steps():
                stats = self.eager(x, *noise)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            return stats
        params = list(self.loss.model.parameters())
        self.graphed, stats, self.path = capture(self.loss, params, self.optimizer, self.eager, x, *noise)
        self.settled = True
        self.on_path(self.path)
        return stats


def make_step_runner(
    model: VAE,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    distributed: bool,
    on_path: Callable[[str], None] = lambda path: None,
):
    """The step runner for a run (see the module's docstring)."""
    loss = Loss(model, cfg)
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        return EagerStep(DistributedDataParallel(loss, device_ids=ids), optimizer)
    reason = eager_reason(device, distributed, cfg.optimizer)
    if reason is None and model.config.model == "dae":  # the graph check compares two equal steps
        reason = "the denoising autoencoder draws its corruption afresh each step"
    if reason is None:
        return GraphStep(loss, optimizer, device, on_path)
    return EagerStep(loss, optimizer, f"eager step ({reason})")


def graph_possible(device: torch.device, distributed: bool, optimizer: str) -> bool:
    """Whether the step may become a CUDA graph (so the optimiser must be built capturable)."""
    return eager_reason(device, distributed, optimizer) is None


def step_noise(model: VAE, cfg: TrainConfig, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The random draws of one step for a minibatch of ``batch`` images, drawn outside the step so
    that every process (and a captured step and its eager check) sees the same: eps (L, M, z); for
    wake-sleep also the sleep phase's z ~ p(z) (M, z) and the noise that draws its images (M, D)."""
    z = model.config.latent_dim
    eps = torch.randn((cfg.samples, batch, z), device=device)
    if cfg.algorithm != "wake-sleep":
        return (eps,)
    return eps, torch.randn((batch, z), device=device), dream_noise(model, batch, device)
