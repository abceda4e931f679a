"""The importance-sampled bound L_K (Burda et al. 2015, eq. 8) at evaluation's K = 5000, fast on a
CPU for the paper's model (an MLP decoder with a Bernoulli likelihood): the same draws and the
same figure as ``explorer.objectives.log_weights``, computed in blocks that stay in cache.

What makes it faster than decoding all of a chunk's draws at once:
- blocks of ``BLOCK_ROWS`` (draw, image) rows, so that every layer's activations (a few MB) stay
  in the CPU's caches between layers instead of going out to memory and back;
- one set of buffers, allocated once, that every block's matrix products write into (``addmm``
  with ``out=``) and the activations overwrite in place: no allocation per block;
- log p(x|z) = x . l - sum softplus(l) for the logits l (the Bernoulli log-likelihood, also for
  grey x in [0, 1] as the cross-entropy), with x . l = h . (W^T x) + b . x from the last hidden
  layer h: a product with one vector per image instead of a pass over every logit;
- softplus through the vectorised ``exp`` and ``log`` rather than ``log1p`` (``model.softplus_sum``);
- log p(z) - log q(z|x) from the draws eps directly: 0.5 sum(logvar + eps^2 - z^2).

The draws are made exactly as ``log_weights`` makes them (the same ``torch.randn`` calls, chunk by
chunk), so on the same seed both give the same L_K up to float rounding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from explorer.model import VAE, softplus_sum

BLOCK_ROWS = 2048  # (draw, image) rows decoded at once: about 2 x 2048 x 784 x 4 B = 13 MB of buffers


def fast_path(model: VAE) -> bool:
    """Whether ``log_weights_blocked`` applies: a VAE with the MLP decoder and Bernoulli p(x|z)."""
    c = model.config
    return c.variational and c.arch == "mlp" and c.likelihood == "bernoulli"


def _linears(model: VAE) -> list[tuple[nn.Linear, str | None]]:
    """The decoder's layers in order, each with the activation after it (None for the head)."""
    out: list[tuple[nn.Linear, str | None]] = []
    for layer in model.decoder:
        if isinstance(layer, nn.Linear):
            out.append((layer, None))
        elif out:
            out[-1] = (out[-1][0], "relu" if isinstance(layer, nn.ReLU) else "tanh")
    return [*out, (model.dec_head, None)]


class _Buffers:
    """One output buffer per layer, BLOCK_ROWS rows each, reused by every block."""

    def __init__(self, layers, rows: int, device: torch.device) -> None:
        self.rows = rows
        self.outs = [torch.empty(rows, layer.out_features, device=device) for layer, _ in layers]
        self.spare = torch.empty(rows, layers[-1][0].out_features, device=device)

    def view(self, i: int, rows: int) -> torch.Tensor:
        return self.outs[i][:rows]


@torch.no_grad()
def log_weights_blocked(
    model: VAE, x: torch.Tensor, k: int, chunk: int | None = None, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """log w_k = log p(x, z_k) - log q(z_k|x), shape (K, B), for images x (B, C, H, W): the same
    draws and values as ``explorer.objectives.log_weights(model, x, k, chunk)`` (``chunk``: how
    the draws are made, as there), computed block by block (see the module's docstring). ``eps``
    (K, B, z): standard normal draws made by the caller (z_k = mu + sigma * eps_k), instead.

    Raises:
        ValueError: a model outside ``fast_path``.
    """
    if not fast_path(model):
        raise ValueError("the blocked L_K is for MLP decoders with a Bernoulli likelihood")
    mu, logvar = model.encode(x)  # (B, z)
    if eps is None:
        chunk = chunk or k
        eps = torch.cat(
            [
                torch.randn(min(chunk, k - s), *mu.shape, dtype=mu.dtype, device=mu.device)
                for s in range(0, k, chunk)
            ]
        )
    k = len(eps)
    std = torch.exp(0.5 * logvar)
    z = mu + std * eps  # (K, B, z)
    prior_minus_q = 0.5 * (logvar + eps.pow(2) - z.pow(2)).sum(-1)  # log p(z) - log q(z|x), (K, B)
    layers = _linears(model)
    head = layers[-1][0]
    flat_x = x.flatten(1)  # (B, D)
    x_dot_bias = flat_x @ head.bias  # (B,)
    x_through_head = flat_x @ head.weight  # (B, H): W^T x per image
    rows_per_draw = len(x)
    draws_per_block = max(1, BLOCK_ROWS // rows_per_draw)
    buffers = _Buffers(layers, draws_per_block * rows_per_draw, x.device)
    out = torch.empty(k, len(x), device=x.device)
    for start in range(0, k, draws_per_block):
        n = min(draws_per_block, k - start)
        rows = n * rows_per_draw
        h = z[start : start + n].reshape(rows, -1)
        for i, (layer, act) in enumerate(layers[:-1]):
            h = torch.addmm(layer.bias, h, layer.weight.t(), out=buffers.view(i, rows))
            h.relu_() if act == "relu" else h.tanh_()
        last_hidden = h.view(n, rows_per_draw, -1)  # (n, B, H)
        logits = torch.addmm(head.bias, h, head.weight.t(), out=buffers.view(len(layers) - 1, rows))
        softplus = softplus_sum(logits, buffers.spare[:rows]).view(n, rows_per_draw)
        x_dot_logits = (last_hidden * x_through_head).sum(-1) + x_dot_bias  # (n, B)
        out[start : start + n] = x_dot_logits - softplus + prior_minus_q[start : start + n]
    return out


def importance_log_likelihood_blocked(
    model: VAE, x: torch.Tensor, k: int, chunk: int | None = None
) -> torch.Tensor:
    """L_K per image (B,): logsumexp of ``log_weights_blocked`` - log K (Burda et al. 2015, eq. 8)."""
    return torch.logsumexp(log_weights_blocked(model, x, k, chunk), dim=0) - math.log(k)
