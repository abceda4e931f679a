"""Where checkpoints are: the shipped models' folder, the runs' folder, and a checkpoint found from
a path or a name. No torch here, so that the command line refuses a checkpoint that is not there
before it loads torch (a second on a 2-core CPU)."""

from __future__ import annotations

import os
from pathlib import Path

from explorer.errors import CheckpointError

MODEL_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".bin")


def pretrained_root() -> Path:
    """Folder of the shipped models: ``$VAE_EXPLORER_PRETRAINED`` or ``pretrained/`` in the repo."""
    env = os.environ.get("VAE_EXPLORER_PRETRAINED")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "pretrained"


def runs_root() -> Path:
    """Where runs are kept (``resolve`` looks for a bare name here): ``$VAE_EXPLORER_RUNS`` or runs/."""
    return Path(os.environ.get("VAE_EXPLORER_RUNS") or "runs").resolve()


def pretrained_names() -> list[str]:
    """The shipped models' names: the folders of ``pretrained_root()`` holding weights, sorted."""
    root = pretrained_root()
    return sorted(p.name for p in root.iterdir() if (p / MODEL_FILE).is_file()) if root.is_dir() else []


def resolve(path_or_name: str | os.PathLike) -> Path:
    """A checkpoint folder from a path (folder or its model.safetensors), a shipped model's name
    or a run's name (in ``runs_root()``).

    Raises:
        CheckpointError: a pickle checkpoint (refused: loading one can run code), or nothing there.
    """
    path = Path(path_or_name)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path} looks like a PyTorch pickle checkpoint; VAE Explorer loads only safetensors "
            "checkpoints (a pickle can run code when loaded). Convert it with safetensors first."
        )
    if path.is_file() and path.name == MODEL_FILE:
        return path.parent
    if path.is_dir():
        return path
    shipped = pretrained_root() / str(path_or_name)
    if not path.is_absolute() and "/" not in str(path_or_name) and shipped.is_dir():
        return shipped
    named_run = runs_root() / str(path_or_name)
    if not path.is_absolute() and "/" not in str(path_or_name) and named_run.is_dir():
        return named_run  # a run's name, as --name gave it: runs/NAME or $VAE_EXPLORER_RUNS/NAME
    names = ", ".join(pretrained_names()) or "none"
    raise CheckpointError(
        f"no checkpoint at {path}: give a run folder, a run's name in {runs_root()}, or a shipped model "
        f"({names})"
    )
