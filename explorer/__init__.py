"""VAE Explorer: train, evaluate and explore Variational Autoencoders (Kingma & Welling, 2013).

The public API, re-exported here::

    from explorer import ModelConfig, TrainConfig, start_run, resume_run, load_checkpoint, VAE
"""

from explorer.checkpoints import load_checkpoint, save_checkpoint
from explorer.config import ModelConfig, TrainConfig
from explorer.data import load_dataset
from explorer.errors import CheckpointError, DatasetError, ExplorerError, ImageError
from explorer.model import VAE
from explorer.objectives import elbo_terms, importance_log_likelihood, kl_standard_normal
from explorer.preprocess import preprocess_image
from explorer.train import resume_run, start_run
from explorer.version import __version__

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
    "ExplorerError",
    "DatasetError",
    "CheckpointError",
    "ImageError",
    "__version__",
]
