"""The training step as one CUDA graph: forward, ELBO, backward and the optimiser update are
recorded once and then replayed with a single launch per minibatch, which removes the per-kernel
launch cost that dominates small models on a GPU.

The minibatch and its noise are drawn outside the graph, in the same order as the eager step, and
copied into the graph's fixed input buffers; so a graphed run draws the same random numbers as an
eager one. Before the graph is trusted, ``capture`` replays it once and redoes the same step
eagerly from the same state: if the two disagree (or capture fails), the step stays eager and the
reason is given. Only a single process on a CUDA device with an optimiser that PyTorch can
capture (Adam, RMSprop: ``capturable=True``) is graphed; everything else takes the eager path.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

CAPTURABLE = ("adam", "rmsprop")  # optimisers whose step PyTorch can record in a CUDA graph
WARMUP_STEPS = 3  # eager steps on a side stream before capture, as PyTorch asks
TOLERANCE = 1e-4  # relative: the graph's first step against the same step done eagerly
DISABLE_ENV = "VAE_EXPLORER_CUDA_GRAPHS"  # "0" turns graph capture off


def eager_reason(device: torch.device, distributed: bool, optimizer: str) -> str | None:
    """Why this run's step cannot be a CUDA graph, or None when it can."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, not {device.type}"
    if distributed:
        return "CUDA graphs are not combined with DistributedDataParallel here"
    if optimizer not in CAPTURABLE:
        return f"{optimizer} cannot be captured (Adam and RMSprop can)"
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return f"turned off by {DISABLE_ENV}=0"
    return None


StepFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]  # (x, *noise) -> (loss, stats)


def side_stream(device: torch.device) -> torch.cuda.Stream:
    """A stream for the warm-up steps, which must not run on the stream that will be captured."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    return stream


@contextmanager
def quiet_uncaptured_steps() -> Iterator[None]:
    """Silence PyTorch's note that a capturable optimiser is stepping outside a graph: the
    warm-up and the check step do so on purpose."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*capturable=True.*")
        yield


class _State:
    """Copies of the parameters and optimiser tensors, to put a step back."""

    def __init__(self, params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        self.tensors = list(params) + [
            v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)
        ]
        self.saved = [t.detach().clone() for t in self.tensors]

    def restore(self) -> None:
        with torch.no_grad():
            for t, s in zip(self.tensors, self.saved):
                t.copy_(s)

    def current(self) -> list[torch.Tensor]:
        return [t.detach().clone() for t in self.tensors]


def _worst(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest difference between two lists of tensors, relative to their size."""
    worst = 0.0
    for x, y in zip(a, b):
        x, y = x.double(), y.double()
        scale = 1.0 + y.abs().max().item() if y.numel() else 1.0
        worst = max(worst, (x - y).abs().max().item() / scale if x.numel() else 0.0)
    return worst


class GraphedStep:
    """A captured training step: call it with (x, *noise) to run one update; it returns the step's
    (loss, recon, kl) tensor, which the next call overwrites (add it up before calling again)."""

    def __init__(self, graph: torch.cuda.CUDAGraph, x, noise, stats, grads) -> None:
        self.graph, self.x, self.noise, self.stats = graph, x, noise, stats
        self._grads = grads  # the graph writes its gradients here: keep them alive

    def __call__(self, x: torch.Tensor, *noise: torch.Tensor) -> torch.Tensor:
        self.x.copy_(x)
        for static, fresh in zip(self.noise, noise):
            static.copy_(fresh)
        self.graph.replay()
        return self.stats


def capture(
    step_fn: StepFn,
    params: list[torch.Tensor],
    optimizer: torch.optim.Optimizer,
    eager_step: Callable[..., torch.Tensor],
    x: torch.Tensor,
    *noise: torch.Tensor,
) -> tuple[GraphedStep | None, torch.Tensor, str]:
    """Capture the step, check it against ``eager_step`` on this minibatch, and take the step.

    Returns (the graphed step or None, this step's stats, a description of the path taken). The
    model and optimiser end exactly where one eager step on (x, *noise) would leave them, whether or
    not the graph is kept.
    """
    before = _State(params, optimizer)
    try:
        static_x, static_noise = x.clone(), tuple(n.clone() for n in noise)
        graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)  # the graph's backward allocates its own gradients
        with torch.cuda.graph(graph):
            loss, stats = step_fn(static_x, *static_noise)
            loss.backward()
            optimizer.step()
        graphed = GraphedStep(graph, static_x, static_noise, stats, [p.grad for p in params])
        graph_stats = graphed(x, *noise).clone()
        graph_after = before.current()
    except RuntimeError as exc:  # capture refused: an op or setting that graphs do not allow
        before.restore()
        with quiet_uncaptured_steps():
            stats = eager_step(x, *noise)
        return None, stats, f"eager step (CUDA graph capture failed: {str(exc).splitlines()[0]})"
    before.restore()
    with quiet_uncaptured_steps():
        stats = eager_step(x, *noise)
    worst = max(_worst([graph_stats], [stats]), _worst(graph_after, before.current()))
    if not worst <= TOLERANCE:
        return None, stats, f"eager step (the CUDA graph's step differed from the eager one by {worst:.2g})"
    return graphed, stats, "CUDA graph: one launch per step"
