"""What each dataset is: its image shape, labels, likelihood, binarisation, and how its own images
were made from pictures (the convention that preprocessing of a user's image must repeat).

One place for these facts; everything else (the trainer, evaluation, the CLI, the pages and the
preprocessing of uploads) asks here. Pure Python: importing it loads no torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from explorer.pictures.convention import Convention

# A folder of the user's images (``explorer.data.folders``): the sizes it may be added at, as
# ``data add --size`` and the Train page's form say them.
MIN_SIDE = 4  # pixels: the smallest side a folder may be added at
MAX_SIDE = 256  # pixels: larger images would make a model this tool cannot train on a laptop
SIZE_HELP = f"32 for 32x32, or 48x32 for height x width; sides of {MIN_SIDE} to {MAX_SIDE} pixels"


@dataclass(frozen=True)
class DatasetSpec:
    """The facts about one dataset that the rest of VAE Explorer needs."""

    name: str
    image_shape: tuple[int, int, int]  # (C, H, W)
    label_names: tuple[str, ...] | None  # class names by label; None: labels are not classes
    likelihood: str  # the default p(x|z): "bernoulli", "gaussian" or "logistic"
    binarize: bool  # dynamic binarisation in training, fixed-seed binarised test set (bernoulli only)
    convention: Convention
    item: str  # what one image shows, for page text: "digit", "clothing item", "face"
    form: str = "idx"  # how its files are stored: "idx", "frey", "cifar" or "arrays" (.npy)
    factors: tuple[str, ...] = ()  # names of the true generative factors stored with the images

    @property
    def a_item(self) -> str:
        """The item with its article, for page text: "a digit", "an image"."""
        return f"{'an' if self.item[:1] in 'aeiou' else 'a'} {self.item}"

    def to_dict(self) -> dict:
        """JSON-ready (an image folder's dataset.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DatasetSpec:
        convention = Convention(**{**d["convention"], "centre_at": None})
        labels = tuple(d["label_names"]) if d.get("label_names") else None
        return cls(
            name=d["name"],
            image_shape=tuple(d["image_shape"]),
            label_names=labels,
            likelihood=d["likelihood"],
            binarize=bool(d["binarize"]),
            convention=convention,
            item=d["item"],
            form="arrays",
            factors=tuple(d.get("factors") or ()),
        )


# Measured on MNIST's 60,000 training images: the mean centre of mass is (13.996, 14.007) in
# 0-indexed (row, column), with a standard deviation of 0.29 on each axis, that of a uniform
# rounding error: the digits were moved by whole pixels to put their centre of mass at (14, 14).
# 59,846 of them (99.7%) have a bounding box whose longest side is exactly 20 pixels.
MNIST_CONVENTION = Convention(
    "ink",
    box=20,
    centre_at=(14.0, 14.0),
    summary="greyscale, light ink on black, the main drawing cropped, fitted into 20x20 and "
    "placed in 28x28 with its centre of mass at (14, 14), as MNIST was made",
)
# Measured on Fashion-MNIST's training images: the longest side of the bounding box is 28 pixels
# for 98.2% and 27 for 1.8%; the box is centred, and where the margin is odd the extra pixel lies
# above and to the left (the top row is ceil((28 - h) / 2) for 98.7% of the images, the left
# column ceil((28 - w) / 2) for 99.8%).
FASHION_CONVENTION = Convention(
    "frame",
    box=28,
    summary="greyscale, a light background turned black, the item cropped, its longest side "
    "scaled to 28 and centred, as Fashion-MNIST was made",
)
FREY_CONVENTION = Convention(
    "photo",
    box=28,
    summary="greyscale, centre-cropped to 28:20 and resized, as the Frey Face frames",
)
CIFAR_CONVENTION = Convention(
    "photo",
    box=32,
    summary="colour, centre-cropped to a square and resized to 32x32, as CIFAR-10's images",
)
SHAPES_CONVENTION = Convention(
    "photo",
    box=32,
    summary="colour, centre-cropped to a square and resized to 32x32 (the shapes are drawn on black)",
)
SHAPES_CLASSES = ("square", "ellipse", "heart")
SHAPES_FACTORS = ("shape", "scale", "rotation", "x", "y", "hue")

SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist",
        (1, 28, 28),
        tuple(str(i) for i in range(10)),
        likelihood="bernoulli",
        binarize=True,
        convention=MNIST_CONVENTION,
        item="digit",
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        (1, 28, 28),
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        likelihood="bernoulli",
        binarize=True,
        convention=FASHION_CONVENTION,
        item="clothing item",
    ),
    "frey-face": DatasetSpec(
        "frey-face",
        (1, 28, 20),
        None,  # labels are frame numbers
        likelihood="gaussian",
        binarize=False,
        convention=FREY_CONVENTION,
        item="face",
        form="frey",
    ),
    "cifar10": DatasetSpec(
        "cifar10",
        (3, 32, 32),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        likelihood="logistic",
        binarize=False,
        convention=CIFAR_CONVENTION,
        item="photo",
        form="cifar",
    ),
    "shapes": DatasetSpec(
        "shapes",
        (3, 32, 32),
        SHAPES_CLASSES,
        likelihood="logistic",
        binarize=False,
        convention=SHAPES_CONVENTION,
        item="shape",
        form="arrays",
        factors=SHAPES_FACTORS,
    ),
}
DATASETS = tuple(SPECS)  # the built-in datasets; an image folder added by a user joins them
SPEC_FILE = "dataset.json"  # an added dataset's description, in its cache folder


def data_root() -> Path:
    """The dataset cache: ``$VAE_EXPLORER_DATA`` or ``~/.cache/vae-explorer``."""
    return Path(os.environ.get("VAE_EXPLORER_DATA") or Path.home() / ".cache" / "vae-explorer")


def added_datasets() -> tuple[str, ...]:
    """Names of the image folders added to the cache (``vae-explorer data add``), sorted."""
    root = data_root()
    if not root.is_dir():
        return ()
    names = [p.parent.name for p in root.glob(f"*/{SPEC_FILE}") if p.parent.name not in SPECS]
    return tuple(sorted(names))


def all_datasets() -> tuple[str, ...]:
    """The built-in datasets, then the added ones."""
    return DATASETS + added_datasets()


def spec(name: str) -> DatasetSpec:
    """The description of dataset ``name``: a built-in one, or an image folder added to the cache.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    if name in SPECS:
        return SPECS[name]
    path = data_root() / str(name) / SPEC_FILE
    if name and "/" not in str(name) and not str(name).startswith(".") and path.is_file():
        try:
            return DatasetSpec.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"dataset {name!r}: its description {path} is damaged ({exc})") from None
    raise ValueError(
        f"unknown dataset {name!r}; choose one of: {', '.join(all_datasets())} (or add a folder of "
        "images with: vae-explorer data add NAME PATH)"
    )


def binarized(dataset: str, likelihood: str) -> bool:
    """Whether a model of ``likelihood`` on ``dataset`` sees binarised images (the MNIST
    likelihood protocol): only a Bernoulli decoder on a dataset that is binarised."""
    return likelihood == "bernoulli" and spec(dataset).binarize
