"""Helpers for the trainer tests: a small model and recipe on real MNIST subsets, a run's files,
and a CLI training command long enough to be interrupted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from explorer.checkpoints import load_checkpoint
from explorer.config import TrainConfig
from explorer.model import ModelConfig
from explorer.train.runfolder import RunFolder

SMALL = ModelConfig(hidden=(64,), latent_dim=2)


def small_config(**changes) -> TrainConfig:
    """Two epochs of 1,000 training images (tested on 500), logged every 5 steps, on the CPU."""
    base = dict(epochs=2, limit=1000, test_limit=500, log_every=5, device="cpu", seed=3)
    return TrainConfig(**{**base, **changes})


def read_metrics(folder: Path) -> list[dict]:
    return RunFolder(folder).read_metrics()


def read_status(folder: Path) -> dict:
    return RunFolder(folder).read_status()


def read_latent_snapshots(folder: Path):
    return RunFolder(folder).read_latent_snapshots()


def weights(folder: Path) -> dict:
    return load_checkpoint(folder).state_dict()


def cli_train_command(out: Path) -> list[str]:
    """`vae-explorer train` of 2 epochs x 300 steps, logging every 10 steps: long enough to be
    interrupted mid-epoch by a test."""
    flags = "--limit 3000 --test-limit 200 --batch-size 10 --hidden 32 --epochs 2 --log-every 10"
    return [sys.executable, "-m", "explorer.cli", "train", "--out", str(out), *flags.split(),
            "--device", "cpu", "--no-progress"]  # fmt: skip


def cli_resume(out: Path) -> subprocess.CompletedProcess:
    """`vae-explorer train --resume OUT` to its end (at most 5 minutes), output captured."""
    command = [sys.executable, "-m", "explorer.cli", "train", "--resume", str(out), "--no-progress"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)
