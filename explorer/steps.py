"""The training step: one minibatch's loss, its gradient and one optimiser update, behind one
interface whatever runs it.

``make_step_runner`` gives the step for a run: ``EagerStep`` (a plain forward, backward and
update; wrapped in DistributedDataParallel when several processes train) or ``GraphStep`` (on one
CUDA device, a few eager steps, then the step captured as one CUDA graph and checked against the
eager step before it is trusted; see ``explorer.graphs``). Every runner is called with a
minibatch x (M, C, H, W) and its noise eps (L, M, z) and returns the step's (loss, recon, kl) on
the device, and says in ``path`` how it steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from explorer.config import TrainConfig
from explorer.graphs import WARMUP_STEPS, capture, eager_reason, quiet_uncaptured_steps, side_stream
from explorer.model import VAE
from explorer.objectives import autoencoder_terms, corrupt, elbo_terms, iwae_bound

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
    if capturable:
        kwargs["capturable"] = True
    if cfg.optimizer in ("adam", "adagrad", "sgd"):
        # One fused kernel for the whole update where the device has one (Adam on CPU: 23% off
        # a 784-400-20 step); the same mathematics as the per-parameter loop.
        try:
            return cls(model.parameters(), fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):
            pass
    return cls(model.parameters(), **kwargs)


class Loss(nn.Module):
    """One minibatch's loss and its (loss, recon, kl) means: the module that DistributedDataParallel
    wraps when several processes train, called directly when one does."""

    def __init__(self, model: VAE, cfg: TrainConfig) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (M, C, H, W), eps (L, M, z) -> (the loss to minimise, (loss, recon, kl) detached).
        The autoencoders use no eps; the denoising one corrupts x afresh (the target stays x)."""
        kind = self.model.config.model
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

    def __call__(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        loss, stats = self.loss(x, eps)
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

    def __call__(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        if self.graphed is not None:
            return self.graphed(x, eps)
        if self.settled:
            return self.eager(x, eps)
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            stream = side_stream(self.device)
            with torch.cuda.stream(stream), quiet_uncaptured_steps():
                stats = self.eager(x, eps)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            return stats
        params = list(self.loss.model.parameters())
        self.graphed, stats, self.path = capture(self.loss, params, self.optimizer, self.eager, x, eps)
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
