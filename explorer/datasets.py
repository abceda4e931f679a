"""What each dataset is: its image shape, labels, likelihood, binarisation, and how its own images
were made from pictures (the convention that preprocessing of a user's image must repeat).

One place for these facts; everything else (the trainer, evaluation, the CLI, the pages and the
preprocessing of uploads) asks here. Pure Python: importing it loads no torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Convention:
    """How a dataset turned a picture into one of its images; ``preprocess_image`` repeats it.

    ``kind``:
    - ``"ink"``: a drawing (ink on paper): the ink is found against a local background, cropped
      to the main drawing, fitted into a ``box`` x ``box`` square keeping its aspect ratio
      (anti-aliased), then moved by whole pixels so that its centre of mass lands at
      ``centre_at`` (row, column, 0-indexed). MNIST (LeCun et al. 1998): 20x20 box, centre of mass
      at the field's centre.
    - ``"frame"``: an object photographed on a plain ground: the ground is removed, the object
      cropped to its bounding box, its longest side scaled to ``box`` and its box centred
      (Fashion-MNIST, Xiao et al. 2017: trimmed, longest side resized to 28, negated).
    - ``"photo"``: a photograph kept as it is: greyscale, centre-cropped to the image's aspect
      ratio and resized (Frey Face: frames of a face filling the picture).
    """

    kind: str  # "ink", "frame" or "photo"
    box: int  # longest side of the drawing or object after scaling, pixels
    centre_at: tuple[float, float] | None = None  # "ink": target centre of mass (row, col)
    summary: str = ""  # one line for help texts: what is done to a picture


@dataclass(frozen=True)
class DatasetSpec:
    """The facts about one dataset that the rest of VAE Explorer needs."""

    name: str
    image_shape: tuple[int, int, int]  # (C, H, W)
    label_names: tuple[str, ...] | None  # class names by label; None: labels are not classes
    likelihood: str  # the default p(x|z): "bernoulli" or "gaussian"
    binarize: bool  # dynamic binarisation in training, fixed-seed binarised test set (bernoulli only)
    convention: Convention
    item: str  # what one image shows, for page text: "digit", "clothing item", "face"


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
    ),
}
DATASETS = tuple(SPECS)


def spec(name: str) -> DatasetSpec:
    """The description of dataset ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def binarized(dataset: str, likelihood: str) -> bool:
    """Whether a model of ``likelihood`` on ``dataset`` sees binarised images (the MNIST
    likelihood protocol): only a Bernoulli decoder on a dataset that is binarised."""
    return likelihood == "bernoulli" and spec(dataset).binarize
