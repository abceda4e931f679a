"""Distributed training throughput: samples/s of `vae-explorer train` with 1 and N processes in
the same run, and the scaling efficiency.

    python bench/distributed.py [--device cpu|cuda] [--nproc 2] [--limit 30000] [--epochs 2] [--runs 3]

Same model (784-400-20, ReLU, Bernoulli, Adam) and the same global batch of 128 for every row.
On the CPU each process gets one thread (torchrun's default), so the rows compare 1 process with
1 thread, 1 process with N threads, and N processes with 1 thread each; on CUDA one process per
GPU. samples/s is the last epoch's (training steps only, no evaluation). Efficiency is N-process
samples/s over N times the 1-process (1 thread or 1 GPU) figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.limits import spread  # noqa: E402
from explorer.train.runfolder import RunFolder  # noqa: E402


def run(out: Path, nproc: int, threads: int, args) -> float:
    cmd = [sys.executable, "-m", "explorer.cli", "train", "--out", str(out), "--nproc", str(nproc)]
    cmd += ["--hidden", "400", "--latent-dim", "20", "--batch-size", "128", "--epochs", str(args.epochs)]
    cmd += ["--limit", str(args.limit), "--test-limit", "1000", "--log-every", "100"]
    cmd += ["--device", args.device, "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    epochs = [r for r in RunFolder(out).read_metrics() if r["type"] == "epoch"]
    return epochs[-1]["samples_per_s"]


def ceiling_rate(procs: int, threads: int, batch: int = 128) -> float:
    """Samples per second if every process did nothing but its step's matrix products (its share
    of the global batch, on ``threads`` threads), all processes at once on their own cores."""
    import torch

    from bench.limits import mm_seconds, step_shapes
    from explorer.config import ModelConfig

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        local = batch // procs
        seconds = mm_seconds(step_shapes(ModelConfig(hidden=(400,), latent_dim=20), local), 10)
    finally:
        torch.set_num_threads(saved)
    return procs * local / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--limit", type=int, default=30_000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="runs per row (median, range)")
    args = parser.parse_args()
    n = args.nproc
    rows = [(1, 1)] + ([(1, n)] if args.device == "cpu" else []) + [(n, 1)]
    print(
        f"# distributed training on {args.device}: 784-400-20, global batch 128, {args.limit:,} images/epoch"
    )
    on_cpu = args.device == "cpu"
    if on_cpu:
        print(
            "ceiling: the processes' matrix products alone, each process's share of the batch on its "
            "own threads, the processes side by side (bench/limits.py); no gradient exchange counted"
        )
    print("| processes | threads each | samples/s (median, range) | vs 1 x 1 | ceiling (samples/s) | share |")
    print("|---:|---:|---:|---:|---:|---:|")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for procs, threads in rows:
            folders = [Path(tmp) / f"p{procs}t{threads}r{i}" for i in range(args.runs)]
            rates = [run(folder, procs, threads, args) for folder in folders]
            sps = statistics.median(rates)
            base = base or sps
            limit = ceiling_rate(procs, threads) if on_cpu else None
            limit_cells = f"{limit:,.0f} | {sps / limit:.0%}" if limit else "- | -"
            print(f"| {procs} | {threads} | {spread(rates, ',.0f')} | {sps / base:.2f}x | {limit_cells} |")
            if procs == n and n > 1:
                print(f"\nscaling efficiency with {n} processes: {sps / (n * base):.0%}")


if __name__ == "__main__":
    main()
