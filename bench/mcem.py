"""Monte Carlo EM against AEVB: training samples per second on the paper's Figure 3 network.

Kingma & Welling 2013 (Figure 3, Appendix E) compare AEVB with Monte Carlo EM on a 784-100-3 tanh
MLP with a Bernoulli decoder, M = 100. One AEVB step is one forward and backward pass of encoder
and decoder; one MCEM step (``explorer.paper.mcem.mcem_step``) is an HMC transition of 10
leapfrog steps per datapoint (11 gradients of log p(x, z) with respect to z through the decoder)
followed by 5 Adagrad updates of the decoder. Both consume M training datapoints per step, so
samples/s is M / (seconds per step), the x-axis of Figure 3 per second. Printed: one run of each,
``--steps`` timed steps after ``--warmup``, on dynamically binarised MNIST minibatches, and the
MCEM step split into its E-step (HMC) and M-step (5 updates).

    python bench/mcem.py [--steps 50] [--warmup 5] [--threads N]

Needs only torch, numpy, safetensors and tqdm (and MNIST in $VAE_EXPLORER_DATA).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.config import ModelConfig, TrainConfig  # noqa: E402
from explorer.data import load_dataset  # noqa: E402
from explorer.model import VAE  # noqa: E402
from explorer.paper.hmc import hmc_step  # noqa: E402
from explorer.paper.marginal import log_joint  # noqa: E402
from explorer.paper.mcem import ChainStore, mcem_step  # noqa: E402
from explorer.steps import EagerStep, Loss, make_optimizer  # noqa: E402

M = 100  # minibatch (the paper's)
LR = 0.02  # Adagrad's global step, from the paper's {0.01, 0.02, 0.1}


def figure3_model() -> VAE:
    """784-100-3 tanh MLP, Bernoulli decoder, weights N(0, 0.01) as in the paper's Section 5."""
    model = VAE(ModelConfig(hidden=(100,), latent_dim=3, activation="tanh"))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)  # N(0, 0.01): variance 0.01
    return model


def batches(images: torch.Tensor, n: int, seed: int = 0):
    """n minibatches of M dynamically binarised training images (M, 1, 28, 28) and their indices."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        index = torch.randint(len(images), (M,), generator=g)
        yield torch.bernoulli(images[index].float() / 255.0, generator=g), index


def time_aevb(images: torch.Tensor, steps: int, warmup: int) -> float:
    """Seconds per AEVB step (Algorithm 1, estimator B, L = 1, Adagrad)."""
    model = figure3_model()
    cfg = TrainConfig(optimizer="adagrad", lr=LR, batch_size=M)
    step = EagerStep(Loss(model, cfg), make_optimizer(model, cfg))
    start = 0.0
    for i, (x, _) in enumerate(batches(images, warmup + steps)):
        if i == warmup:
            start = time.perf_counter()
        step(x, torch.randn(1, M, 3))
    return (time.perf_counter() - start) / steps


def time_mcem(images: torch.Tensor, steps: int, warmup: int) -> tuple[float, float]:
    """Seconds per MCEM step, and of those the E-step's (an HMC transition timed alone on the same
    chains)."""
    model = figure3_model()
    params = [*model.decoder.parameters(), *model.dec_head.parameters()]
    optimizer = torch.optim.Adagrad(params, lr=LR)
    chains = ChainStore.create(len(images), 3, generator=torch.Generator().manual_seed(0))
    start, e_time = 0.0, 0.0
    for i, (x, index) in enumerate(batches(images, warmup + steps)):
        if i == warmup:
            start = time.perf_counter()
        z, step = chains[index]
        out = mcem_step(model, x, z, step, optimizer)
        chains.update(index, out.z, out.step_size)
    total = (time.perf_counter() - start) / steps
    for x, index in batches(images, steps, seed=1):
        z, step = chains[index]
        t = time.perf_counter()
        hmc_step(z, log_joint(model, x), step, 10)
        e_time += time.perf_counter() - t
    return total, e_time / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="timed steps of each")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = load_dataset("mnist", "train").images
    aevb = time_aevb(images, args.steps, args.warmup)
    mcem, e_step = time_mcem(images, args.steps, args.warmup)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"784-100-3 tanh MLP, Bernoulli decoder, M = {M}, {args.steps} steps each, one run, "
        f"{torch.get_num_threads()} torch threads, load average {load:.1f}"
    )
    print("| algorithm | ms per step | samples/s | relative to AEVB |")
    print("|---|---|---|---|")
    print(f"| AEVB (encoder + decoder, forward and backward) | {aevb * 1e3:.2f} | {M / aevb:,.0f} | 1 |")
    print(f"| MCEM (10 leapfrog + 5 updates) | {mcem * 1e3:.2f} | {M / mcem:,.0f} | {aevb / mcem:.3f} |")
    print(f"|   of which the E-step (HMC, 10 leapfrog) | {e_step * 1e3:.2f} | | |")
    print(f"|   of which the M-step (5 updates) | {(mcem - e_step) * 1e3:.2f} | | |")


if __name__ == "__main__":
    main()
