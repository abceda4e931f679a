"""Model cards: ship a trained run as ``pretrained/NAME`` with the figures that describe it.

A shipped folder holds ``model.safetensors`` (weights only, no optimiser state), ``config.json``
and ``card.json``: dataset and its checksums, the commands that trained it, seed, epochs,
hardware, wall time, and the ``vae-explorer evaluate`` figures.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from explorer.checkpoints import dataset_of, load_checkpoint, read_config, save_checkpoint
from explorer.data.cache import dataset_files
from explorer.evaluate import Evaluation
from explorer.train.runfolder import RunFolder
from explorer.version import __version__


def hardware() -> str:
    """A short description of this machine: CPU model and threads, or the GPU."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, {threads} torch thread{'s' if threads != 1 else ''}"


def export(
    run: str | os.PathLike, dest: str | os.PathLike, evaluation: Evaluation, eval_command: str
) -> Path:
    """Copy the run's model into ``dest`` with config.json and card.json; return ``dest``."""
    run, dest = Path(run), Path(dest)
    model = load_checkpoint(run)
    config = read_config(run)
    train_cfg = config.get("train") or {}
    rows = RunFolder(run).read_metrics()
    epochs = [r for r in rows if r.get("type") == "epoch"]
    save_checkpoint(
        dest,
        model,
        epoch=config["epoch"],
        step=config["step"],
        train_config=train_cfg,
        best_test_elbo=config.get("best_test_elbo"),
    )
    commands = RunFolder(run).read_commands()
    dataset = dataset_of(config)
    card = {
        "name": dest.name,
        "dataset": dataset,
        "dataset_md5": {k: v for k, v in dataset_files(dataset).items() if v},
        **_generated_checksums(dataset),
        "commands": commands,
        "seed": train_cfg.get("seed"),
        "epochs": config["epoch"],
        "steps": config["step"],
        "hardware": hardware(),
        "train_seconds": round(epochs[-1]["seconds"], 1) if epochs else None,
        **_final_test_figure(epochs),
        "evaluation": {**evaluation.to_dict(), "command": eval_command},
        "library_version": __version__,
        "exported": time.strftime("%Y-%m-%d"),
    }
    tmp = dest / ".card.json.tmp"
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(tmp, dest / "card.json")
    return dest


def _final_test_figure(epochs: list[dict]) -> dict:
    """The last epoch's test figure under its own name: the ELBO of a VAE, or the reconstruction
    term of an autoencoder (which has no ELBO)."""
    key = "test_elbo" if not epochs or "test_elbo" in epochs[-1] else "test_recon"
    return {f"final_{key}_during_training": epochs[-1][key] if epochs else None}


def _generated_checksums(dataset: str) -> dict:
    """For a dataset stored as arrays (generated here or imported from a folder): the SHA-256 of
    its files as its dataset.json records them; nothing for the others."""
    from explorer.data.arrays import record
    from explorer.data.cache import cache_dir
    from explorer.data.specs import spec

    if spec(dataset).form != "arrays":
        return {}
    return {"dataset_sha256": record(cache_dir(dataset)).get("files", {})}
