"""Training speed: VAE Explorer's trainer against the usual PyTorch VAE loop, in the same run.

The reference is written in the style of pytorch/examples' vae: a torchvision MNIST dataset with
ToTensor, a DataLoader, per-batch host-to-device copies, ``loss.item()`` every step. Both train the
same 784-400-20 ReLU VAE (grey-level Bernoulli likelihood, analytic KL, Adam 1e-3, batch 128) on
the same files for the same epochs. Printed: seconds per epoch (training only), samples/s, the
final test loss (nats per image: BCE + KL on the grey-level test set) and the speed-up.

    python bench/train_speed.py --epochs 2 [--runs 3] [--device cuda] [--batch-size 128] [--limit N]

``--limit N`` trains both loops on the first N training images only (a quick check that the bench
runs, not a figure to report). The line under the table says how our trainer stepped: on CUDA,
whether its step was captured as a CUDA graph.

Needs only torch, torchvision, numpy, safetensors and tqdm; the data comes from
$VAE_EXPLORER_DATA (fetched there with `vae-explorer data fetch mnist` first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.limits import spread  # noqa: E402
from explorer.config import TrainConfig  # noqa: E402
from explorer.data.cache import fetch  # noqa: E402
from explorer.data.sources import MNIST_FILES  # noqa: E402
from explorer.devices import pick_device  # noqa: E402
from explorer.model import ModelConfig  # noqa: E402
from explorer.train.run import start_run  # noqa: E402
from explorer.train.runfolder import RunFolder  # noqa: E402


class ReferenceVAE(nn.Module):
    """784-400-20 as in the usual example: fc1 -> (fc21, fc22), fc3 -> fc4 -> sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def reference_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def torchvision_root() -> Path:
    """A folder laid out as torchvision's MNIST expects, linking the verified cached files."""
    cache = fetch("mnist")
    root = Path(tempfile.mkdtemp(prefix="bench-mnist-"))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        (raw / name).symlink_to(cache / name)
    return root


def run_reference(epochs: int, batch: int, device: torch.device, seed: int, limit: int | None) -> dict:
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    root = torchvision_root()
    kwargs = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    train_set = datasets.MNIST(root, train=True, transform=transforms.ToTensor())
    train_loader = DataLoader(
        train_set if limit is None else Subset(train_set, range(min(limit, len(train_set)))),
        batch_size=batch,
        shuffle=True,
        **kwargs,
    )
    test_loader = DataLoader(
        datasets.MNIST(root, train=False, transform=transforms.ToTensor()),
        batch_size=batch,
        shuffle=False,
        **kwargs,
    )
    model = ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seconds = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        train_loss = 0.0
        for data, _ in train_loader:
            data = data.to(device)
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = reference_loss(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    model.eval()
    test_loss = 0.0
    with torch.no_grad():
        for data, _ in test_loader:
            data = data.to(device)
            recon, mu, logvar = model(data)
            test_loss += reference_loss(recon, data, mu, logvar).item()
    n = len(train_loader.dataset)
    return {
        "seconds_per_epoch": sum(seconds) / epochs,
        "samples_per_s": n * epochs / sum(seconds),
        "test_loss": test_loss / len(test_loader.dataset),
    }


def run_ours(epochs: int, batch: int, device: torch.device, seed: int, limit: int | None) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-run-")) / "run"
    cfg = TrainConfig(
        dataset="mnist",
        epochs=epochs,
        batch_size=batch,
        binarize="none",
        seed=seed,
        device=str(device),
        log_every=10**9,
        limit=limit,
    )
    start_run(out, ModelConfig(hidden=(400,), latent_dim=20, activation="relu"), cfg, progress=False)
    rows = [r for r in RunFolder(out).read_metrics() if r["type"] == "epoch"]
    total = sum(r["epoch_seconds"] for r in rows)
    return {
        "seconds_per_epoch": total / epochs,
        "samples_per_s": sum(r["samples_per_s"] * r["epoch_seconds"] for r in rows) / total,
        "test_loss": -rows[-1]["test_elbo"],
        "path": (RunFolder(out).read_status() or {}).get("path", "unknown"),
    }


def epoch_ceiling(batch: int, limit: int | None) -> float:
    """Seconds one epoch's matrix products take on this CPU, back to back (``bench/limits.py``)."""
    from bench.limits import mm_seconds, step_shapes

    steps = -(-(limit or 60_000) // batch)
    return steps * mm_seconds(step_shapes(ModelConfig(hidden=(400,), latent_dim=20), batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--runs", type=int, default=3, help="times to run both loops (median, range)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    device = pick_device(args.device)
    refs, ours = [], []
    for _ in range(args.runs):  # alternating, so that a busy spell of the machine hits both
        refs.append(run_reference(args.epochs, args.batch_size, device, args.seed, args.limit))
        ours.append(run_ours(args.epochs, args.batch_size, device, args.seed, args.limit))
    threads = torch.get_num_threads()
    if args.json:
        print(json.dumps({"device": str(device), "reference": refs, "ours": ours}))
        return
    epochs = f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"
    images = "" if args.limit is None else f" of the first {args.limit:,} images"
    print(
        f"training speed, 784-400-20, batch {args.batch_size}, {epochs}{images}, {device} "
        f"({threads} threads), torch {torch.__version__}; {args.runs} runs: median (min-max)"
    )
    ceiling = epoch_ceiling(args.batch_size, args.limit) if device.type == "cpu" else None
    print("| loop | s / epoch | samples / s | final test loss (nats) | fraction of ceiling |")
    print("|---|---|---|---|---|")
    for name, runs in (("reference (DataLoader, .item() per step)", refs), ("VAE Explorer trainer", ours)):
        seconds = [r["seconds_per_epoch"] for r in runs]
        share = f"{ceiling / statistics.median(seconds):.0%}" if ceiling else "n/a (CPU only)"
        rate, loss = spread([r["samples_per_s"] for r in runs], ",.0f"), runs[-1]["test_loss"]
        print(f"| {name} | {spread(seconds)} | {rate} | {loss:.1f} | {share} |")
    ratios = [r["seconds_per_epoch"] / o["seconds_per_epoch"] for r, o in zip(refs, ours)]
    print(f"| speed-up (run by run) | {spread(ratios)}x | | | |")
    if ceiling:
        print(f"ceiling: {ceiling:.2f} s per epoch for the step's matrix products alone (bench/limits.py)")
    print(f"VAE Explorer trainer: {ours[-1]['path']}")


if __name__ == "__main__":
    main()
