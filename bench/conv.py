"""Convolutional models: seconds per training epoch of the conv VAE on the shapes (3 x 32 x 32,
discretised logistic), against an MLP of the same latent size on the same images as the baseline
measured in the same run, and each epoch against its ceiling (its own matrix products alone, the
convolutions as im2col products, measured in the same run: bench/limits.py); and the
slider-to-image time of the Manifold page for a conv decoder
(decoded on the server: one decode and one PNG per slider move) against the MLP's.

    python bench/conv.py [--device cuda] [--limit 20000] [--epochs 2] [--repeats 200] [--runs 3]

Prints a Markdown table. The first epoch includes one-off costs (kernel selection, allocator
warm-up); the table reports the last epoch's seconds: median (min-max) over --runs fresh runs.
Needs only torch, numpy, safetensors, tqdm and Pillow (the data is generated here: `vae-explorer
data fetch shapes`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.limits import bandwidth_gbs, spread  # noqa: E402
from explorer.config import ModelConfig, TrainConfig  # noqa: E402
from explorer.devices import pick_device  # noqa: E402
from explorer.explore.latent import decode_mean  # noqa: E402
from explorer.pictures.images import png_bytes, to_uint8  # noqa: E402
from explorer.train.run import start_run  # noqa: E402
from explorer.train.runfolder import RunFolder  # noqa: E402

SHAPE = (3, 32, 32)
MODELS = {
    "conv 32,64,128 + 256, z = 8": ModelConfig(
        arch="conv",
        channels=(32, 64, 128),
        hidden=(256,),
        latent_dim=8,
        likelihood="logistic",
        image_shape=SHAPE,
    ),
    "MLP 512,512, z = 8 (baseline)": ModelConfig(
        arch="mlp", hidden=(512, 512), latent_dim=8, likelihood="logistic", image_shape=SHAPE
    ),
}


def epoch_figures(config: ModelConfig, args) -> tuple[float, float, float]:
    """(seconds of the last epoch, images per second, test ELBO in bits/dim) of a fresh run."""
    import math

    cfg = TrainConfig(dataset="shapes", epochs=args.epochs, limit=args.limit, test_limit=1000,
                      device=args.device, log_every=10_000)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        run = start_run(Path(tmp) / "run", config, cfg, progress=False)
        last = [r for r in RunFolder(run).read_metrics() if r["type"] == "epoch"][-1]
    bpd = -last["test_elbo"] / (math.prod(SHAPE) * math.log(2))
    return last["epoch_seconds"], last["samples_per_s"], bpd


def epoch_ceiling(config: ModelConfig, images: int) -> float:
    """Seconds of one epoch's matrix products (forward and backward, bench/limits.py) on this CPU."""
    from bench.limits import mm_seconds, step_shapes

    batch = TrainConfig().batch_size
    return -(-images // batch) * mm_seconds(step_shapes(config, batch), repeats=5)


def slider_ms(config: ModelConfig, device: torch.device, repeats: int) -> list[float]:
    """Milliseconds from a latent point to the PNG the page shows, ``repeats`` times."""
    from explorer.model import VAE

    model = VAE(config).to(device).eval()
    z = torch.zeros(1, config.latent_dim)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        png_bytes(to_uint8(decode_mean(model, z)[0]), scale=7)
        out.append(1000 * (time.perf_counter() - start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=20_000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="fresh runs per model (median, range)")
    args = parser.parse_args()
    device = pick_device(args.device)
    host = platform.processor() or platform.machine()
    print(f"# conv models: host {host}, {device}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; shapes, {args.limit:,} images")  # fmt: skip
    on_cpu = device.type == "cpu"
    if on_cpu:
        print(
            f"ceiling: the epoch's matrix products alone (convolutions as im2col products; "
            f"bench/limits.py), copy bandwidth {bandwidth_gbs():.1f} GB/s"
        )
    print(
        "| model | s / epoch | ceiling (s) | fraction | images / s | test -ELBO (bits/dim) "
        "| slider p50 (ms) | slider p95 (ms) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = {}
    for name, config in MODELS.items():
        runs = [epoch_figures(config, args) for _ in range(args.runs)]
        seconds = statistics.median(r[0] for r in runs)
        ceiling = epoch_ceiling(config, args.limit) if on_cpu else None
        limit = f"{ceiling:.2f} | {ceiling / seconds:.0%}" if ceiling else "- | -"
        ms = sorted(slider_ms(config, device, args.repeats))
        rows[name] = seconds
        p50, p95 = statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]
        figures = f"{spread([r[0] for r in runs])} | {limit} | {spread([r[1] for r in runs], ',.0f')}"
        print(f"| {name} | {figures} | {runs[-1][2]:.3f} | {p50:.2f} | {p95:.2f} |")
    conv, mlp = rows.values()
    print(f"\nconv / MLP epoch time: {conv / mlp:.2f}x (after {args.epochs} epochs: not converged)")


if __name__ == "__main__":
    main()
