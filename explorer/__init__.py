"""VAE Explorer: train, evaluate and explore Variational Autoencoders (Kingma & Welling, 2013).

The public API, re-exported here::

    from explorer import load_checkpoint, load_dataset, VAE, ModelConfig, TrainConfig, train
"""

__version__ = "0.1.0"

from explorer.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from explorer.data import load_dataset  # noqa: E402
from explorer.errors import CheckpointError, DatasetError, ExplorerError, ImageError  # noqa: E402
from explorer.model import VAE, ModelConfig  # noqa: E402
from explorer.objectives import (  # noqa: E402
    elbo_terms,
    importance_log_likelihood,
    kl_standard_normal,
)
from explorer.preprocess import preprocess_image  # noqa: E402
from explorer.train import TrainConfig, train  # noqa: E402

__all__ = [
    "VAE",
    "ModelConfig",
    "TrainConfig",
    "train",
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
