"""Speed against the machine's own limit: each workload beside its ceiling, measured in the same run.

The ceiling of a workload is the time this machine takes for the float32 matrix products it cannot
avoid (the model's shapes, forward and backward), run back to back with torch.mm on random data;
the fraction is ceiling / measured time (1.0: nothing but those products). Memory bandwidth (a
256 MB copy) is printed beside it, since the element-wise work is bound by it.

Workloads (three runs each: median and range):
  - one training epoch of the default model (784-512-512-2, batch 100) through `start_run`;
  - L_5000 on mnist-z2 (seconds per image, K = 5000), the blocked path and the plain one;
  - the whole `vae-explorer train --epochs 1` process against the epoch it contains, beside a
    process that only imports torch (and torch._dynamo, which torch.optim imports): the floor.

    python bench/limits.py [--runs 3] [--eval-images 16]

Needs only torch, numpy, safetensors and tqdm (and MNIST in $VAE_EXPLORER_DATA).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.checkpoints import load_checkpoint  # noqa: E402
from explorer.config import ModelConfig, TrainConfig  # noqa: E402
from explorer.data.cache import eval_images  # noqa: E402
from explorer.evaluate import importance_per_image  # noqa: E402
from explorer.train.run import start_run  # noqa: E402
from explorer.train.runfolder import RunFolder  # noqa: E402


def mm_seconds(shapes: list[tuple[int, int, int]], repeats: int = 20) -> float:
    """Best time of one pass of torch.mm over (m, k) x (k, n) products, back to back."""
    pairs = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes]
    outs = [torch.empty(m, n) for m, _, n in shapes]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for (a, b), out in zip(pairs, outs):
            torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return best


def bandwidth_gbs() -> float:
    """Copy bandwidth, GB/s (bytes read + written), best of 5 copies of 256 MB."""
    src, dst = torch.randn(64 * 2**20), torch.empty(64 * 2**20)
    best = min(_timed(dst.copy_, src) for _ in range(5))
    return 2 * src.numel() * 4 / best / 1e9


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


Products = list[tuple[int, int, int]]  # (m, k, n) of each (m, k) x (k, n) matrix product


def forward_products(config: ModelConfig, batch: int) -> tuple[Products, Products]:
    """The (m, k, n) matrix products of the encoder's and the decoder's forward pass for ``batch``
    images, found by running the model once with hooks: a Linear layer is (rows, in, out); a
    convolution is one row per output position with k = in-channels x kernel area (im2col); a
    transposed convolution is one row per input position with n = out-channels x kernel area."""
    from torch import nn

    from explorer.model import VAE

    model = VAE(config).eval()
    found: list[tuple[int, int, int]] = []

    def record(module, inputs, output) -> None:
        x = inputs[0]
        if isinstance(module, nn.Linear):
            found.append((x.numel() // x.shape[-1], module.in_features, module.out_features))
        elif isinstance(module, nn.Conv2d):
            area = module.kernel_size[0] * module.kernel_size[1]
            rows = output.shape[0] * output.shape[2] * output.shape[3]
            found.append((rows, module.in_channels // module.groups * area, module.out_channels))
        elif isinstance(module, nn.ConvTranspose2d):
            area = module.kernel_size[0] * module.kernel_size[1]
            rows = x.shape[0] * x.shape[2] * x.shape[3]
            found.append((rows, module.in_channels, module.out_channels * area))

    layers = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, layers)]
    with torch.no_grad():
        code = model.encode(torch.rand(batch, *config.image_shape))[0]
        encoder = list(found)
        found.clear()
        model.decoder_params(code)
    for hook in hooks:
        hook.remove()
    return encoder, list(found)


def step_shapes(config: ModelConfig, batch: int) -> list[tuple[int, int, int]]:
    """The matrix products of one training step: per layer, the forward product and the two of
    the backward pass (the weight's gradient, and the input's except for the first layer's)."""
    encoder, decoder = forward_products(config, batch)
    shapes = []
    for i, (m, k, n) in enumerate(encoder + decoder):
        shapes.append((m, k, n))  # forward
        shapes.append((k, m, n))  # weight gradient
        if i != 0:
            shapes.append((m, n, k))  # input gradient
    return shapes


def decoder_seconds(config: ModelConfig, rows: int) -> float:
    """Seconds of the decoder's forward matrix products for ``rows`` latent points."""
    return mm_seconds(forward_products(config, rows)[1])


def spread(values: list[float], fmt: str = ".2f") -> str:
    """'median (min-max)' of repeated measurements; the median alone for one."""
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:{fmt}}"
    return f"{med:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def row(name: str, measured: list[float], ceilings: list[float], unit: str = "s") -> str:
    """A table row: the measured median and range, the ceilings' median and range, and the median
    of the run-by-run fractions (each run against the ceiling measured just before it: this
    shared machine's speed drifts by up to a quarter between minutes)."""
    fractions = [c / m for c, m in zip(ceilings, measured)]
    return (
        f"| {name} | {spread(measured, '.3f')} {unit} | {spread(ceilings, '.3f')} {unit} | "
        f"{statistics.median(fractions):.0%} ({min(fractions):.0%}-{max(fractions):.0%}) |"
    )


def training(runs: int) -> tuple[list[float], list[float]]:
    """(seconds of each run's epoch of the default model, the ceiling measured before each)."""
    config, cfg = ModelConfig(), TrainConfig(epochs=1, device="cpu", seed=0)
    steps = 60_000 // cfg.batch_size
    seconds, ceilings = [], []
    for _ in range(runs):
        ceilings.append(steps * mm_seconds(step_shapes(config, cfg.batch_size), repeats=10))
        with tempfile.TemporaryDirectory() as tmp:
            out = start_run(Path(tmp) / "run", config, cfg, progress=False)
            epoch = [r for r in RunFolder(out).read_metrics() if r["type"] == "epoch"][0]
            seconds.append(epoch["epoch_seconds"])
    return seconds, ceilings


def evaluation(runs: int, images: int) -> tuple[list[float], list[float], list[float]]:
    """Seconds per image of L_5000 on mnist-z2, blocked and plain, and the ceiling per image
    measured before each run."""
    from explorer.likelihood import importance

    model = load_checkpoint("mnist-z2").eval()
    x, _ = eval_images("mnist", limit=images)
    blocked, plain, ceilings = [], [], []
    rows = importance.BLOCK_ROWS
    for _ in range(runs):
        ceilings.append(decoder_seconds(model.config, rows) * 5000 / rows)
        torch.manual_seed(0)
        blocked.append(_timed(importance_per_image, model, x, 5000) / images)
        torch.manual_seed(0)
        plain.append(_timed(lambda: importance_per_image(model, x, 5000, blocked=False)) / images)
    return blocked, plain, ceilings


def whole_process(runs: int) -> tuple[list[float], list[float]]:
    """(whole `vae-explorer train --epochs 1` wall seconds, its epoch's seconds) per run."""
    total, epoch = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            command = [
                sys.executable,
                "-m",
                "explorer.cli",
                "train",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--out",
                f"{tmp}/run",
                "--no-progress",
            ]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
            total.append(time.perf_counter() - start)
            rows = [json.loads(line) for line in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()]
            epoch.append(next(r["epoch_seconds"] for r in rows if r["type"] == "epoch"))
    return total, epoch


def import_seconds(runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds of a process that only imports torch, and of one that imports torch and
    torch._dynamo (which torch.optim's step imports): the floor under any training command. Both
    end as `vae-explorer` does, without the interpreter's teardown (explorer.cli.entry)."""
    plain, dynamo = [], []
    quick_exit = "; import os; os._exit(0)"
    for _ in range(runs):
        for out, code in ((plain, "import torch"), (dynamo, "import torch, torch._dynamo")):
            code += quick_exit
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            out.append(time.perf_counter() - start)
    return plain, dynamo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--eval-images", type=int, default=16)
    args = p.parse_args()
    torch.set_grad_enabled(True)
    cpu = platform.processor() or platform.machine()
    host = f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    print(f"{host}, torch {torch.__version__}; copy bandwidth {bandwidth_gbs():.1f} GB/s\n")
    print(f"{args.runs} runs each: median (min-max); each run against the ceiling measured just before it\n")
    print("| workload | measured | ceiling (its matrix products alone) | fraction of the ceiling |")
    print("|---|---|---|---|")
    epochs, ceilings = training(args.runs)
    print(row("training epoch, 784-512-512-2, batch 100", epochs, ceilings))
    blocked, plain, per_image = evaluation(args.runs, args.eval_images)
    print(row("L_5000 per image, mnist-z2, blocked", blocked, per_image))
    print(row("L_5000 per image, mnist-z2, plain", plain, per_image))
    total, epoch = whole_process(args.runs)
    outside = [t - e for t, e in zip(total, epoch)]
    print(
        f"\nWhole `vae-explorer train --epochs 1`: {statistics.median(total):.2f} s "
        f"({min(total):.2f}-{max(total):.2f}); its epoch {statistics.median(epoch):.2f} s; outside the "
        f"epoch {statistics.median(outside):.2f} s ({min(outside):.2f}-{max(outside):.2f}). "
        f"L_5000 blocked: {1 / statistics.median(blocked):.1f} images/s, plain "
        f"{1 / statistics.median(plain):.1f}."
    )
    torch_only, with_dynamo = import_seconds(args.runs)
    print(
        f"A process that only imports torch: {spread(torch_only)} s; torch and torch._dynamo (imported "
        f"by torch.optim's first step): {spread(with_dynamo)} s."
    )


if __name__ == "__main__":
    main()
