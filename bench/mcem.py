"""Monte Carlo EM against AEVB and wake-sleep: training samples per second on the paper's Figure 3
network, in one run.

Kingma & Welling 2013 (Figure 3, Appendix E) compare AEVB, wake-sleep and Monte Carlo EM on a
784-100-3 tanh MLP with a Bernoulli decoder, M = 100, Adagrad. AEVB's and wake-sleep's steps go
through the trainer's step runner (``explorer.train.steps``), as in ``bench/algorithms.py``; one MCEM
step (``explorer.train.mcem.mcem_step``) is an HMC transition of 10 leapfrog steps per datapoint
(11 gradients of log p(x, z) with respect to z through the decoder) followed by 5 Adagrad updates
of the decoder, with the chains kept in a ``ChainStore``. Every step consumes M training
datapoints, so samples/s is M / (seconds per step): Figure 3's x-axis per second. Printed: one run
of each, ``--steps`` timed steps after ``--warmup``, on dynamically binarised MNIST minibatches
(the same for all three), and the MCEM step split into its E-step (HMC alone, timed on the same
chains) and its M-step (the rest).

    python bench/mcem.py [--steps 50] [--warmup 5] [--threads N]

Needs only torch, numpy, safetensors and tqdm (and MNIST in $VAE_EXPLORER_DATA).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.config import ModelConfig, TrainConfig  # noqa: E402
from explorer.data.cache import load_dataset  # noqa: E402
from explorer.devices import flush_denormals  # noqa: E402
from explorer.likelihood.hmc import hmc_step  # noqa: E402
from explorer.likelihood.marginal import log_joint  # noqa: E402
from explorer.model import VAE, init_paper  # noqa: E402
from explorer.train.mcem import ChainStore, mcem_step  # noqa: E402
from explorer.train.steps import make_optimizer, make_step_runner, step_noise  # noqa: E402

M = 100  # minibatch (the paper's)
LR, DECAY = 0.02, 2e-5  # Adagrad's global step (from the paper's {0.01, 0.02, 0.1}); the prior on theta
CONFIG = ModelConfig(latent_dim=3, hidden=(100,), activation="tanh")  # Figure 3's network


def figure3_model() -> VAE:
    model = VAE(CONFIG).train()
    init_paper(model, torch.Generator().manual_seed(0))
    return model


def batches(images: torch.Tensor, n: int, seed: int = 0):
    """n minibatches of M dynamically binarised training images (M, 1, 28, 28) with their indices."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        index = torch.randint(len(images), (M,), generator=g)
        yield torch.bernoulli(images[index].float() / 255.0, generator=g), index


def time_runner(algorithm: str, images: torch.Tensor, steps: int, warmup: int) -> float:
    """Seconds per step of the trainer's step runner for ``algorithm`` (aevb or wake-sleep)."""
    cfg = TrainConfig(algorithm=algorithm, optimizer="adagrad", lr=LR, weight_decay=DECAY, batch_size=M)
    model, device = figure3_model(), torch.device("cpu")
    runner = make_step_runner(model, cfg, make_optimizer(model, cfg), device, distributed=False)
    start = 0.0
    for i, (x, _) in enumerate(batches(images, warmup + steps)):
        if i == warmup:
            start = time.perf_counter()
        runner(x, *step_noise(model, cfg, M, device))
    return (time.perf_counter() - start) / steps


def time_mcem(images: torch.Tensor, steps: int, warmup: int) -> tuple[float, float, float]:
    """Seconds per MCEM step; of those the E-step's (an HMC transition timed alone on the same
    chains); and the mean acceptance of the timed steps."""
    model = figure3_model()
    params = [*model.decoder.parameters(), *model.dec_head.parameters()]  # MCEM has no encoder
    optimizer = torch.optim.Adagrad(params, lr=LR, weight_decay=DECAY)
    chains = ChainStore.create(len(images), CONFIG.latent_dim, generator=torch.Generator().manual_seed(0))
    start, accept = 0.0, []
    for i, (x, index) in enumerate(batches(images, warmup + steps)):
        if i == warmup:
            start = time.perf_counter()
        z, _ = chains[index]
        out = mcem_step(model, x, z, chains.shared_step, optimizer)  # the shared step (paper's code)
        chains.update(index, out.z, out.step_size)
        accept.append(out.accept_prob.mean().item())
    total = (time.perf_counter() - start) / steps
    e_time = 0.0
    for x, index in batches(images, steps, seed=1):
        z, _ = chains[index]
        t = time.perf_counter()
        hmc_step(z, log_joint(model, x), chains.shared_step, 10)
        e_time += time.perf_counter() - t
    return total, e_time / steps, sum(accept[warmup:]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="timed steps of each algorithm")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    flush_denormals()
    torch.manual_seed(0)
    images = load_dataset("mnist", "train").images
    times = {a: time_runner(a, images, args.steps, args.warmup) for a in ("aevb", "wake-sleep")}
    mcem, e_step, accept = time_mcem(images, args.steps, args.warmup)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    host = platform.processor() or platform.machine()
    print(f"784-100-3 tanh MLP, Bernoulli decoder, M = {M}, Adagrad, {args.steps} steps each, one run; "
          f"{host}, {torch.get_num_threads()} torch threads, load average {load:.1f}")  # fmt: skip
    print("| algorithm | ms per step | samples/s | AEVB's samples/s over this |")
    print("|---|---|---|---|")
    rows = [("AEVB", times["aevb"]), ("wake-sleep", times["wake-sleep"]),
            (f"MCEM (10 leapfrog, acceptance {accept:.2f}, + 5 updates)", mcem)]  # fmt: skip
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e3:.2f} | {M / seconds:,.0f} | {seconds / times['aevb']:.2f}x |")
    print(f"| MCEM's E-step (HMC) alone | {e_step * 1e3:.2f} | | |")
    print(f"| MCEM's M-step (5 updates) | {(mcem - e_step) * 1e3:.2f} | | |")


if __name__ == "__main__":
    main()
