"""Sample quality by the Fréchet distance between feature statistics (FID; Heusel et al. 2017,
"GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", eq. 6):
||m_r - m_g||^2 + Tr(C_r + C_g - 2 (C_r C_g)^(1/2)) over the means and covariances of features of
real and generated images.

The statistics and the matrix square root are torchmetrics' ``FrechetInceptionDistance``; this
module supplies the images and the feature network. Two kinds of features:

- ``inception``: the standard Inception-v3 pool features (2048-d) of torchmetrics, through
  torch-fidelity (``pip install vae-explorer[inception]``), whose weights
  (``weights-inception-2015-12-05``, the network of the original TensorFlow FID) are downloaded
  once from torch-fidelity's GitHub releases and cached by torch. The only FID comparable with published
  figures; it needs the internet once.
- ``classifier``: the 64-d penultimate layer of a small CNN trained on the same dataset
  (``FeatureClassifier``), shipped in ``pretrained/classifiers/<dataset>/``. Works offline and
  sees what matters in 28x28 digits, but its FID is on another scale: never compare it with an
  Inception FID, and every figure names its features.

Images go in as (N, C, H, W) floats in [0, 1]; generated images are decoder means at z ~ N(0, I).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from explorer.cards import Card
from explorer.errors import ExplorerError
from explorer.model import BATCH

FEATURES = ("classifier", "inception")
CLASSIFIER_FILE = "classifier.safetensors"
FEATURE_WIDTH = 64  # the classifier's penultimate layer: the features FID is computed on
POOLED = 4  # the classifier pools its last feature map to POOLED x POOLED, whatever the image size
INCEPTION_WIDTH = 2048  # Inception-v3's pool features
MIN_SAMPLES = 200  # images in every set FID compares, at the least: about 3 per classifier feature


def min_images(features: str) -> int:
    """The fewest images any set in an FID comparison may have, with ``features``: more than the
    features' dimension d (a covariance from n images has rank at most n - 1, so with n <= d it
    is singular), and at least ``MIN_SAMPLES`` (fewer estimate the 64-d covariance of the
    classifier's features too poorly for the figure to mean much). 200 for the classifier, 2,049
    for Inception."""
    return max(MIN_SAMPLES, (INCEPTION_WIDTH if features == "inception" else FEATURE_WIDTH) + 1)


def too_few(sets: dict[str, int], features: str) -> str | None:
    """Why FID cannot compare sets of these sizes ({"test images": 7, ...}), in words; None when
    every set has ``min_images(features)``."""
    need = min_images(features)
    short = [
        f"{n:,} {name.replace('images', 'image', 1) if n == 1 else name}"
        for name, n in sets.items()
        if n < need
    ]
    if not short:
        return None
    d = INCEPTION_WIDTH if features == "inception" else FEATURE_WIDTH
    return (
        f"too few images for FID: {' and '.join(short)}; every set it compares needs at least "
        f"{need:,} (the covariance of the {d:,} {features} features is estimated from each set)"
    )


class FeatureClassifier(nn.Module):
    """A small CNN for (N, C, H, W) images in [0, 1]: three 3x3 convolutions (16, 32, 64
    channels, stride 2), average-pooled to 4x4, a 64-unit layer (the features), and the class
    logits. About 90,000 parameters (360 KB) for one channel."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(POOLED), nn.Flatten(),
            nn.Linear(64 * POOLED * POOLED, FEATURE_WIDTH), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(FEATURE_WIDTH, classes)
        self.channels, self.classes = channels, classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, 64): the penultimate layer."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> class logits (N, classes)."""
        return self.head(self.body(x))


class _Features(nn.Module):
    """The classifier's feature layer as torchmetrics wants a custom feature network: a module
    with ``num_features`` mapping a batch of images to (N, d)."""

    def __init__(self, classifier: FeatureClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.num_features = FEATURE_WIDTH

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.classifier.features(x.float())


# -- the shipped classifiers ----------------------------------------------------------------------


def classifier_dir(dataset: str) -> Path:
    """Where the feature classifier of ``dataset`` lives: pretrained/classifiers/<dataset>/."""
    from explorer.checkpoints import pretrained_root

    return pretrained_root() / "classifiers" / dataset


def load_classifier(dataset: str, folder: str | os.PathLike | None = None) -> tuple[FeatureClassifier, dict]:
    """The feature classifier of ``dataset`` and its card (test accuracy, how trained): the
    shipped one, or the one in ``folder`` (``vae-explorer classifier DATASET --out FOLDER``).

    Raises:
        ExplorerError: none is there (the message gives the command that trains one), it was
            trained on another dataset, or its file is damaged.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    given = folder is not None
    folder = Path(folder) if given else classifier_dir(dataset)
    if not (folder / CLASSIFIER_FILE).is_file():
        where = (
            f"{folder} holds no {CLASSIFIER_FILE}"
            if given
            else f"no feature classifier for {dataset} in {folder.parent}"
        )
        raise ExplorerError(
            f"{where}: train one with 'vae-explorer classifier {dataset} --out {folder}', or use "
            "--fid-features inception"
        )
    card = Card.read(folder).fields  # how it was trained, and the shape to build
    if card.get("dataset", dataset) != dataset:
        raise ExplorerError(
            f"the feature classifier in {folder} was trained on {card['dataset']}, and this model is of "
            f"{dataset}: give one trained on {dataset} (vae-explorer classifier {dataset} --out FOLDER)"
        )
    model = FeatureClassifier(card["channels"], card["classes"])
    try:
        model.load_state_dict(load_file(str(folder / CLASSIFIER_FILE)))
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise ExplorerError(
            f"the feature classifier in {folder} cannot be read ({exc}); train it again"
        ) from None
    return model.eval(), card


@torch.no_grad()
def accuracy(
    model: FeatureClassifier, x: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> float:
    """The fraction of images x (N, C, H, W) in [0, 1] whose arg-max class is their label (N,)."""
    model.eval()
    right = sum(
        int((model(x[i : i + batch_size]).argmax(1) == labels[i : i + batch_size]).sum())
        for i in range(0, len(x), batch_size)
    )
    return right / max(len(x), 1)


def train_classifier(
    dataset: str,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    out: str | os.PathLike,
    epochs: int = 5,
    seed: int = 0,
) -> dict:
    """Train ``FeatureClassifier`` on ``dataset``'s training images (``train``: images (N, C, H, W)
    uint8 and labels (N,), as ``explorer.data.cache.load_dataset`` gives them; grey levels / 255,
    cross-entropy, Adam 1e-3, batch 128, ``epochs`` passes), measure its accuracy on ``test``, and
    store classifier.safetensors and card.json in ``out`` (written to a temporary name first, then
    renamed). Returns the card.

    Raises:
        ExplorerError: the dataset has fewer than two classes (a folder without class
            subfolders): there is nothing to classify.
    """
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    (train_images, train_labels), (test_images, test_labels) = train, test
    classes = int(max(int(train_labels.max()), int(test_labels.max())) + 1)
    if classes < 2:
        raise ExplorerError(f"{dataset} has one class only: a feature classifier needs labels to learn from")
    x, y = train_images.float() / 255.0, train_labels.long()
    model = FeatureClassifier(x.shape[1], classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(128):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    test_accuracy = accuracy(model, test_images.float() / 255.0, test_labels.long())
    card = {
        "dataset": dataset,
        "channels": int(x.shape[1]),
        "classes": classes,
        "feature_width": FEATURE_WIDTH,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": round(test_accuracy, 4),
        "test_images": len(test_labels),
        "epochs": epochs,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "command": f"vae-explorer classifier {dataset} --epochs {epochs} --seed {seed}",
    }
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(folder / f".{CLASSIFIER_FILE}.tmp"))
    os.replace(folder / f".{CLASSIFIER_FILE}.tmp", folder / CLASSIFIER_FILE)
    Card(card).write(folder)  # atomically, as every card is written
    return card


# -- the distance ---------------------------------------------------------------------------------


@dataclass
class FID:
    """A Fréchet distance and what it was measured on."""

    value: float
    features: str  # "classifier" or "inception"
    feature_source: str  # which network, in words
    real: str  # the reference images, in words
    generated: str  # the compared images, in words
    n_real: int
    n_generated: int
    seconds: float

    def label(self) -> str:
        """How to name the figure wherever it is shown: 'FID (classifier features)'."""
        return f"FID ({self.features} features)"

    def to_dict(self) -> dict:
        return asdict(self)


def _near_chance(dataset: str, accuracy: float) -> str:
    """A warning to add to the features' description when the classifier is near chance on
    ``dataset`` (within a quarter of the way from chance to 100%): its features tell the images
    apart little, and a distance between them says little (a 2-class folder's classifier at 54%
    gave an FID of 0.013 against a floor of 0.000, with no word). Else ""."""
    from explorer.data.specs import spec

    names = spec(dataset).label_names
    chance = 1.0 / len(names) if names and len(names) > 1 else None
    if chance is None or accuracy >= chance + 0.25 * (1.0 - chance):
        return ""
    return (
        f"; WARNING: that is near chance ({100 * chance:.0f}% for {len(names)} classes): its features "
        "tell the images apart little, so this FID says little. Train it longer (vae-explorer "
        f"classifier {dataset} --epochs N) or use --fid-features inception"
    )


def _metric(features: str, dataset: str, classifier_folder: str | os.PathLike | None = None):
    """torchmetrics' FrechetInceptionDistance on the chosen features, and their description."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as exc:
        raise ExplorerError(f"FID needs torchmetrics ({exc}): pip install torchmetrics") from None
    if features == "classifier":
        classifier, card = load_classifier(dataset, classifier_folder)
        where = classifier_folder if classifier_folder is not None else f"pretrained/classifiers/{dataset}"
        source = (
            f"{dataset} feature classifier ({FEATURE_WIDTH}-d penultimate layer, test accuracy "
            f"{100 * card['test_accuracy']:.2f}%, {where})"
        )
        return FrechetInceptionDistance(feature=_Features(classifier), normalize=True), source + _near_chance(
            dataset, card["test_accuracy"]
        )
    if features != "inception":
        raise ExplorerError(f"unknown FID features {features!r}: use {' or '.join(FEATURES)}")
    try:
        metric = FrechetInceptionDistance(feature=2048, normalize=True)
    except ModuleNotFoundError:
        raise ExplorerError(
            'Inception features need torch-fidelity (pip install -e ".[inception]" in the project, or pip '
            "install torch-fidelity), which downloads the "
            "Inception-v3 weights once; offline, use --fid-features classifier"
        ) from None
    except Exception as exc:  # the weights' download: no internet, a proxy, a full disk
        raise ExplorerError(
            f"the Inception-v3 weights could not be had ({type(exc).__name__}: {exc}); they are "
            "downloaded once from torch-fidelity's releases. Offline, use --fid-features classifier"
        ) from None
    from importlib.metadata import version

    return metric, (
        f"Inception-v3 pool3 (2048-d), torch-fidelity {version('torch-fidelity')}'s "
        "weights-inception-2015-12-05 (the TensorFlow FID's network)"
    )


def _for_features(x: torch.Tensor, features: str) -> torch.Tensor:
    """Inception wants three channels; the classifier takes the dataset's own."""
    return x.expand(-1, 3, -1, -1) if features == "inception" and x.shape[1] == 1 else x


@torch.no_grad()
def frechet_distance(
    real: torch.Tensor,
    generated: torch.Tensor,
    dataset: str,
    features: str = "classifier",
    real_name: str = "real images",
    generated_name: str = "generated images",
    batch_size: int = BATCH,
    classifier_folder: str | os.PathLike | None = None,
) -> FID:
    """FID between two sets of images (N, C, H, W) and (M, C, H, W) in [0, 1], in the chosen
    ``features`` of ``dataset`` (the classifier's: the shipped one, or the one in
    ``classifier_folder``). Zero for identical sets (up to the square root's rounding).

    Raises:
        ExplorerError: fewer than ``min_images(features)`` images on a side, the features cannot
            be had (no classifier shipped for the dataset; Inception weights not downloadable).
    """
    short = too_few({"real images": len(real), "generated images": len(generated)}, features)
    if short:
        raise ExplorerError(short)
    start = time.perf_counter()
    metric, source = _metric(features, dataset, classifier_folder)
    for images, is_real in ((real, True), (generated, False)):
        for i in range(0, len(images), batch_size):
            metric.update(
                _for_features(images[i : i + batch_size].float().clamp(0, 1), features), real=is_real
            )
    value = float(metric.compute())
    return FID(
        value=max(value, 0.0) if math.isfinite(value) else value,
        features=features,
        feature_source=source,
        real=real_name,
        generated=generated_name,
        n_real=len(real),
        n_generated=len(generated),
        seconds=time.perf_counter() - start,
    )


@torch.no_grad()
def model_samples(model, n: int, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """n decoder means (n, C, H, W) at z ~ N(0, I), seeded: the model's samples as FID sees them."""
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([model.sample(min(batch_size, n - i), gen).cpu() for i in range(0, n, batch_size)])
