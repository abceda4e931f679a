"""VAE Explorer: train, evaluate and explore Variational Autoencoders (Kingma & Welling, 2013).

The public API, re-exported here::

    from explorer import ModelConfig, TrainConfig, start_run, resume_run, load_checkpoint, VAE

Each name is imported when first used (PEP 562), so ``import explorer.config`` or the CLI's
argument parsing do not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from explorer.version import __version__

_HOMES = {
    "load_checkpoint": "checkpoints",
    "save_checkpoint": "checkpoints",
    "ModelConfig": "config",
    "TrainConfig": "config",
    "load_dataset": "data.cache",
    "ExplorerError": "errors",
    "DatasetError": "errors",
    "CheckpointError": "errors",
    "ImageError": "errors",
    "VAE": "model",
    "elbo_terms": "objectives",
    "importance_log_likelihood": "objectives",
    "kl_standard_normal": "objectives",
    "preprocess_image": "data.uploads",
    "evidence": "theory.evidence",
    "start_run": "train.run",
    "resume_run": "train.run",
}
__all__ = [
    "VAE",
    "ModelConfig",
    "TrainConfig",
    "start_run",
    "resume_run",
    "load_checkpoint",
    "save_checkpoint",
    "load_dataset",
    "preprocess_image",
    "elbo_terms",
    "importance_log_likelihood",
    "kl_standard_normal",
    "evidence",
    "ExplorerError",
    "DatasetError",
    "CheckpointError",
    "ImageError",
    "__version__",
]  # the names of _HOMES, and the version

if TYPE_CHECKING:  # what editors and type checkers see
    from explorer.checkpoints import load_checkpoint, save_checkpoint
    from explorer.config import ModelConfig, TrainConfig
    from explorer.data.cache import load_dataset
    from explorer.data.uploads import preprocess_image
    from explorer.errors import CheckpointError, DatasetError, ExplorerError, ImageError
    from explorer.model import VAE
    from explorer.objectives import elbo_terms, importance_log_likelihood, kl_standard_normal
    from explorer.theory.evidence import evidence
    from explorer.train.run import resume_run, start_run


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(importlib.import_module(f"explorer.{_HOMES[name]}"), name)
        globals()[name] = value  # once imported, an ordinary attribute
        return value
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
