"""Running a model over a dataset a batch at a time: bounded memory for any number of images."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from explorer.model import VAE

BATCH = 1000  # images per forward pass when a model runs over a dataset


@torch.no_grad()
def in_batches(
    model: VAE,
    fn: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]],
    *tensors: torch.Tensor | None,
    batch_size: int = BATCH,
    dims: Sequence[int] | None = None,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """``fn`` applied to consecutive slices of ``tensors``, its outputs joined on the CPU.

    Each tensor is cut into slices of ``batch_size`` along its dimension in ``dims`` (default 0
    for all; the first tensor's length there sets the count), moved to the model's device, and
    handed to ``fn`` in order (a None stays None). ``fn`` returns a tensor of (B, ...) or a
    tuple of them; each is concatenated along dimension 0. No images: ``fn`` runs once on the
    empty slices, so the result has the right shape and type with length 0. Gradients are off.
    """
    dims = list(dims) if dims is not None else [0] * len(tensors)
    device = next(model.parameters()).device
    n = tensors[0].shape[dims[0]]
    outs = []
    for start in range(0, max(n, 1), batch_size):
        size = min(batch_size, n - start)
        parts = [None if t is None else t.narrow(d, start, size).to(device) for t, d in zip(tensors, dims)]
        out = fn(*parts)
        outs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu())
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(column) for column in zip(*outs))
    return torch.cat(outs)
