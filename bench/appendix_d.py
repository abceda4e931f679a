"""The paper's Appendix D marginal-likelihood estimate beside the importance-weighted L_5000, on the
same test images, per model: mean and spread of the difference in nats.

Appendix D (``explorer.likelihood.marginal``: HMC posterior samples, a density q fitted to half of them,
the reciprocal estimator on the other half) and L_K (Burda et al. 2015, K = 5000, draws from the
encoder: ``explorer.evaluate.importance_per_image``) estimate the same log p(x): L_K from below on
average, Appendix D consistently for a small latent space. The issue expects agreement within
1 nat per datapoint on average for an AEVB model with Nz = 3. Printed: one row per model (shipped
name or checkpoint folder), the first ``--images`` fixed-binarised MNIST test images, and the
images that disagree most.

    python bench/appendix_d.py [--models mnist-z2,runs/z3] [--images 100] [--samples 50]
        [--leapfrog 4] [--density kde] [--start auto] [--threads 1]

Needs only torch, numpy, safetensors and tqdm (and MNIST in $VAE_EXPLORER_DATA).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.checkpoints import load_checkpoint  # noqa: E402
from explorer.data.cache import eval_images  # noqa: E402
from explorer.evaluate import importance_per_image  # noqa: E402
from explorer.likelihood.marginal import paper_estimate  # noqa: E402


def compare(model, x: torch.Tensor, args) -> dict:
    """L_5000 and the Appendix D estimate per image (N,), their difference and timings."""
    torch.manual_seed(0)
    start = time.perf_counter()
    l_k = importance_per_image(model, x, 5000)
    t_k = time.perf_counter() - start
    torch.manual_seed(1)
    start = time.perf_counter()
    est = paper_estimate(model, x, args.samples, args.leapfrog, density=args.density, start=args.start)
    t_d = time.perf_counter() - start
    return {"l_k": l_k, "paper": est.log_px, "diff": est.log_px - l_k, "t_k": t_k, "t_d": t_d,
            "accept": est.accept_rate.mean().item()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mnist-z2", help="comma-separated names or folders")
    parser.add_argument("--images", type=int, default=100, help="first N test images")
    parser.add_argument("--samples", type=int, default=50, help="HMC samples per image (paper: 50)")
    parser.add_argument("--leapfrog", type=int, default=4, help="leapfrog steps (paper: 4)")
    parser.add_argument("--density", default="kde", choices=("kde", "gaussian"), help="q(z)")
    parser.add_argument("--start", default="auto", help="auto, encoder, encoder-best or prior")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, _ = eval_images("mnist", limit=args.images)
    print(f"{args.images} MNIST test images (fixed binarisation), Appendix D with {args.samples} "
          f"samples, {args.leapfrog} leapfrog steps, q = {args.density}, start = {args.start}")  # fmt: skip
    print("| model | Nz | L_5000 | Appendix D | D - L_5000: mean | std | median | |D - L| > 1 | s (L_K, D) |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst = []
    for name in args.models.split(","):
        model = load_checkpoint(name).eval()
        model.requires_grad_(False)
        r = compare(model, x, args)
        d = r["diff"]
        print(
            f"| {name} | {model.config.latent_dim} | {r['l_k'].mean():.2f} | {r['paper'].mean():.2f} | "
            f"{d.mean():+.2f} | {d.std():.2f} | {d.median():+.2f} | {(d.abs() > 1).sum().item()} | "
            f"{r['t_k']:.0f}, {r['t_d']:.0f} |"
        )
        order = d.abs().argsort(descending=True)[:3]
        worst.append(f"{name}: " + ", ".join(f"image {i} {d[i]:+.1f}" for i in order.tolist()))
    print("largest differences (nats): " + "; ".join(worst))


if __name__ == "__main__":
    main()
