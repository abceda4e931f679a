"""Training step speed by algorithm: AEVB against wake-sleep on the paper's networks, in one run.

Each algorithm's step goes through the trainer's own step runner (``explorer.train.steps``: the loss, its
backward and an Adagrad update; on one CUDA device the captured CUDA-graph step) with M = 100 and
fresh noise per step as the trainer draws it. Printed per network: samples/s (median and range of
``--runs`` runs), the ratio to AEVB's step, and each step against its matrix-product ceiling (the
float32 products the step cannot avoid, timed back to back just before it; ``bench/limits.py``):
AEVB's step is the encoder and decoder forward and backward; wake-sleep's the wake phase (encoder
forward, decoder forward and backward) plus the sleep phase (decoder forward for the dreams,
encoder forward and backward).

    python bench/algorithms.py [--runs 3] [--steps 300] [--device cpu]

Needs only torch, numpy, safetensors and tqdm.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.limits import forward_products, mm_seconds, spread  # noqa: E402
from explorer.config import ModelConfig, TrainConfig  # noqa: E402
from explorer.devices import flush_denormals, pick_device  # noqa: E402
from explorer.model import VAE, init_paper  # noqa: E402
from explorer.train.steps import graph_possible, make_optimizer, make_step_runner, step_noise  # noqa: E402

NETWORKS = {  # the paper's Figure 2 (MNIST, N_z = 20) and Figure 3 (N_z = 3, 100 units) networks
    "784-500-20 tanh (Figure 2)": ModelConfig(latent_dim=20, hidden=(500,), activation="tanh"),
    "784-100-3 tanh (Figure 3)": ModelConfig(latent_dim=3, hidden=(100,), activation="tanh"),
}
BATCH = 100


def products(config: ModelConfig, algorithm: str) -> list[tuple[int, int, int]]:
    """The matrix products of one step (forward, and per differentiated layer the weight gradient
    and, but for a network's first layer, the input gradient)."""
    enc, dec = forward_products(config, BATCH)

    def backward(layers):
        out = []
        for i, (m, k, n) in enumerate(layers):
            out.append((k, m, n))
            if i:
                out.append((m, n, k))
        return out

    if algorithm == "aevb":
        return enc + dec + backward(enc) + backward(dec)
    return enc + dec + backward(dec) + dec + enc + backward(enc)  # wake, then sleep


def samples_per_s(config: ModelConfig, algorithm: str, steps: int, device: torch.device) -> tuple[float, str]:
    cfg = TrainConfig(algorithm=algorithm, optimizer="adagrad", lr=0.02, weight_decay=2e-5)
    model = VAE(config).to(device).train()
    init_paper(model, torch.Generator().manual_seed(0))
    optimizer = make_optimizer(model, cfg, graph_possible(device, False, cfg.optimizer))
    runner = make_step_runner(model, cfg, optimizer, device, distributed=False)
    data = (torch.rand(20 * BATCH, *config.image_shape, device=device) < 0.3).float()
    warm = 20
    for i in range(warm + steps):
        if i == warm:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        x = data[torch.randint(0, len(data), (BATCH,), device=device)]
        runner(x, *step_noise(model, cfg, BATCH, device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * BATCH / (time.perf_counter() - start), getattr(runner, "path", "eager step")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    flush_denormals()
    device = pick_device(args.device)
    host = platform.processor() or platform.machine()
    print(
        f"host: {host}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, device {device}"
    )
    print(f"M = {BATCH}, Adagrad, {args.steps} steps per run, {args.runs} runs")
    print(f"{'network':28} {'algorithm':11} {'samples/s':>22} {'vs AEVB':>8} {'of ceiling':>11}  step")
    for name, config in NETWORKS.items():
        rates = {}
        for algorithm in ("aevb", "wake-sleep"):
            measured, fractions, path = [], [], ""
            for _ in range(args.runs):
                ceiling = mm_seconds(products(config, algorithm)) if device.type == "cpu" else float("nan")
                rate, path = samples_per_s(config, algorithm, args.steps, device)
                measured.append(rate)
                fractions.append(ceiling * rate / BATCH)
            rates[algorithm] = statistics.median(measured)
            ratio = rates["aevb"] / rates[algorithm]
            print(f"{name:28} {algorithm:11} {spread(measured, ',.0f'):>22} {ratio:>7.2f}x "
                  f"{statistics.median(fractions):>10.0%}  {path}")  # fmt: skip
    print("vs AEVB: AEVB's samples/s over this algorithm's (1.00x: as fast; wake-sleep's target: <= 1.3x)")


if __name__ == "__main__":
    main()
