"""Scaling: how the trainer's time per MNIST epoch grows with the batch size and the hidden width,
and where the time of the default model goes, against the device's measured ceilings.

    python bench/scaling.py [--device cpu|cuda] [--seconds 1.5] [--runs 3]

Each configuration times the trainer's own training step (``Trainer.train_step``: dynamic
binarisation, forward, ELBO, backward, optimiser step) over at least ``--seconds`` of steps after a
warm-up, and reports the time one 60,000-image epoch takes at that rate. The default model is
784-400-20 (ReLU, Bernoulli, Adam), batch 128. The ceilings are measured in the same run: a large
float32 matrix product (compute) and a large tensor copy (memory bandwidth). On CUDA a last table
times the default model's step with and without the CUDA graph (``VAE_EXPLORER_CUDA_GRAPHS=0``):
the gap is the launch cost the graph removes.

Needs only torch, numpy, safetensors and tqdm; the data comes from $VAE_EXPLORER_DATA.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.limits import spread  # noqa: E402
from explorer.config import TrainConfig  # noqa: E402
from explorer.model import ModelConfig  # noqa: E402
from explorer.train.cuda_graph import DISABLE_ENV  # noqa: E402
from explorer.train.distributed import World  # noqa: E402
from explorer.train.loop import Trainer  # noqa: E402
from explorer.train.runfolder import RunFolder  # noqa: E402

EPOCH = 60_000


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_seconds(
    hidden: int, batch: int, device: str, seconds: float, graphs: bool = True
) -> tuple[float, str]:
    """Seconds per 60k-image epoch of the trainer's step for 784-hidden-20 at this batch size, and
    how the step ran (the step runner's ``path``); ``graphs=False`` turns CUDA-graph capture off
    (otherwise the environment decides, as in training)."""
    if graphs:
        return _epoch_seconds(hidden, batch, device, seconds)
    saved = os.environ.get(DISABLE_ENV)
    os.environ[DISABLE_ENV] = "0"
    try:
        return _epoch_seconds(hidden, batch, device, seconds)
    finally:
        if saved is None:
            del os.environ[DISABLE_ENV]
        else:
            os.environ[DISABLE_ENV] = saved


def _epoch_seconds(hidden: int, batch: int, device: str, seconds: float) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(batch_size=batch, device=device, test_limit=100, epochs=1)
        model_config = ModelConfig(hidden=(hidden,), latent_dim=20)
        trainer = Trainer(RunFolder(out), model_config, cfg, World(), progress=False)
        dev = trainer.device
        n = len(trainer.data.train_x)
        perm = torch.randperm(n, device=dev)

        def steps(count: int, first: int = 0) -> None:
            for i in range(first, first + count):
                start = (i * batch) % (n - batch)
                trainer.train_step(perm[start : start + batch])

        steps(5)  # warm-up: allocations, kernels, the optimiser's state
        sync(dev)
        count, done, start = 4, 0, time.perf_counter()
        while True:
            steps(count, done)
            done += count
            sync(dev)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
            count *= 2
        return elapsed / done * (EPOCH / batch), trainer.step_runner.path


def ceilings(device: torch.device) -> tuple[float, float]:
    """(float32 matmul GFLOP/s, copy GB/s) measured on the device."""
    n = 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1.0:
        a @ b
        reps += 1
        sync(device)
    flops = 2 * n**3 * reps / (time.perf_counter() - start) / 1e9
    src = torch.randn(64 * 1024 * 1024, device=device)  # 256 MB of real pages (an untouched empty
    # buffer reads back one shared zero page and overstates the bandwidth: 49.9 against 32.4 GB/s)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1.0:
        dst.copy_(src)
        reps += 1
        sync(device)
    bandwidth = 2 * src.numel() * 4 * reps / (time.perf_counter() - start) / 1e9  # read + write
    return flops, bandwidth


def work_per_epoch(hidden: int, latent: int = 20, batch: int = 128) -> tuple[float, float]:
    """(GFLOP, GB moved) for one epoch of 784-hidden-latent: matrix products forward and backward
    (3x the forward's 2 x MACs), and bytes of activations (forward, backward) plus parameters,
    gradients and Adam's two moments streamed once per step."""
    macs = 784 * hidden + hidden * 2 * latent + latent * hidden + hidden * 784  # per image, forward
    flop = 3 * 2 * macs * EPOCH
    activations = (
        (784 + hidden + 2 * latent + latent + hidden + 784) * 4 * 3 * EPOCH
    )  # fwd write, bwd read+write
    params = macs + 2 * hidden + 2 * latent + 784
    optimizer = params * 4 * 8 * (EPOCH // batch)  # weight, grad, 2 moments: read and write each
    return flop / 1e9, (activations + optimizer) / 1e9


def _repeat(hidden: int, batch: int, args) -> list[float]:
    """Seconds per epoch of 784-hidden-20 at this batch, measured --runs times."""
    return [epoch_seconds(hidden, batch, args.device, args.seconds)[0] for _ in range(args.runs)]


def _ceiling(hidden: int, batch: int, measured: float, on_cpu: bool) -> str:
    """'ceiling s | fraction' of a 784-hidden-20 epoch at this batch: its matrix products alone."""
    if not on_cpu:
        return "- | -"
    from bench.limits import mm_seconds, step_shapes

    shapes = step_shapes(ModelConfig(hidden=(hidden,), latent_dim=20), batch)
    ceiling = -(-EPOCH // batch) * mm_seconds(shapes, 5)
    return f"{ceiling:.3f} | {ceiling / measured:.0%}"


def where_the_time_goes(device: torch.device, s: float) -> None:
    """The default model's measured epoch ``s`` against a large matrix product and a large copy."""
    peak_flops, peak_bw = ceilings(device)
    gflop, gbytes = work_per_epoch(400)
    print("\n## where the time goes (784-400-20, batch 128)")
    print("| quantity | per epoch | at the device's ceiling | share of the measured epoch |")
    print("|---|---:|---:|---:|")
    print(
        f"| matrix products | {gflop:.0f} GFLOP | {gflop / peak_flops:.3f} s ({peak_flops:.0f} GFLOP/s) "
        f"| {gflop / peak_flops / s:.0%} |"
    )
    print(
        f"| memory traffic | {gbytes:.1f} GB | {gbytes / peak_bw:.3f} s ({peak_bw:.1f} GB/s) "
        f"| {gbytes / peak_bw / s:.0%} |"
    )
    steps = EPOCH // 128
    print(f"| measured | {s:.3f} s, {steps} steps | | {s / steps * 1e3:.2f} ms per step |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=1.5, help="timed steps per configuration")
    parser.add_argument("--batches", default="32,64,128,256,512,1024,2048,4096")
    parser.add_argument("--widths", default="100,200,400,800,1600")
    parser.add_argument("--runs", type=int, default=3, help="measurements per configuration (median, range)")
    args = parser.parse_args()
    device = torch.device(args.device)
    threads = torch.get_num_threads() if device.type == "cpu" else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} threads"
    print(f"# scaling on {name}, torch {torch.__version__}; seconds per 60k-image epoch")

    on_cpu = device.type == "cpu"
    if on_cpu:
        print("ceiling: each configuration's own matrix products alone, forward and back (bench/limits.py)")
    print("\n## batch size (784-400-20)")
    print("| batch | s/epoch, median (min-max) | samples/s | vs batch 128 | ceiling (s) | fraction |")
    print("|---:|---:|---:|---:|---:|---:|")
    runs = {b: _repeat(400, b, args) for b in map(int, args.batches.split(","))}
    rows = {b: statistics.median(r) for b, r in runs.items()}
    base = rows.get(128) or next(iter(rows.values()))
    for b, s in rows.items():
        limit = _ceiling(400, b, s, on_cpu)
        print(f"| {b} | {spread(runs[b], '.3f')} | {EPOCH / s:,.0f} | {base / s:.2f}x | {limit} |")

    print("\n## hidden width (784-W-20, batch 128)")
    print("| width | s/epoch, median (min-max) | GFLOP/epoch | achieved GFLOP/s | ceiling (s) | fraction |")
    print("|---:|---:|---:|---:|---:|---:|")
    for w in map(int, args.widths.split(",")):
        measured = _repeat(w, 128, args)
        s = statistics.median(measured)
        gflop, _ = work_per_epoch(w)
        limit = _ceiling(w, 128, s, on_cpu)
        print(f"| {w} | {spread(measured, '.3f')} | {gflop:.0f} | {gflop / s:.1f} | {limit} |")

    where_the_time_goes(device, rows.get(128) or epoch_seconds(400, 128, args.device, args.seconds)[0])

    if device.type == "cuda":
        print("\n## the step with and without the CUDA graph (784-400-20)")
        print(
            "| batch | graph: s/epoch | ms/step | eager: s/epoch | ms/step | eager / graph | graphed step |"
        )
        print("|---:|---:|---:|---:|---:|---:|---|")
        for b in (100, 128, 1024):
            graphed, path = epoch_seconds(400, b, args.device, args.seconds)
            eager, _ = epoch_seconds(400, b, args.device, args.seconds, graphs=False)
            per = 1e3 * b / EPOCH
            print(
                f"| {b} | {graphed:.3f} | {graphed * per:.3f} | {eager:.3f} | {eager * per:.3f} "
                f"| {eager / graphed:.1f}x | {path} |"
            )


if __name__ == "__main__":
    main()
