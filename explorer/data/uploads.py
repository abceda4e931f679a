"""A person's picture (an upload, a drawing, a file) as one of a dataset's images: the dataset's
convention and image shape (``explorer.data.specs``) handed to ``explorer.pictures.preprocess``."""

from __future__ import annotations

import os

import torch
from PIL import Image

from explorer.data.specs import spec
from explorer.pictures.preprocess import prepare_picture


def preprocess_image(source: str | os.PathLike | bytes | Image.Image, dataset: str = "mnist") -> torch.Tensor:
    """A picture as the images of ``dataset``: (C, H, W) float32 in [0, 1], C the dataset's.

    ``source``: a file path, the file's bytes, or an opened PIL image. The steps follow the
    dataset's convention (``explorer.pictures.preprocess.prepare_picture``).

    Raises:
        ImageError: unreadable, unsafe or blank pictures, with what to do.
        ValueError: an unknown dataset.
    """
    described = spec(dataset)
    return prepare_picture(source, described.convention, described.image_shape)
