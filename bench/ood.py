"""Strangers: how well each shipped model's stranger verdict tells its own data from other data.

    python bench/ood.py [--models mnist-z2,mnist-z20,fashion-mnist-z2] [--marks 800] [--noise 400]
    nice -n 5 python bench/ood.py --models shapes-conv-z8,shapes-conv-bce-z8 --marks 200 \
        --noise 100 --uploads 300 --drawn 150    # 70 s on a shared 2-core CPU

For every model, the detector (``explorer.explore.strangers``, as the app and the CLI fit it) is fitted
on the first 5,000 images of its dataset's test set and on synthetic outliers (marks drawn at 140
pixels, seed 11, noise, and for the MNIST models photographed objects); the other 5,000 test
images are the in-distribution images it is judged on. Against them: the other shipped
dataset's test images (never shown to the detector), as they are and as a user would upload
them (1,000 of them saved as 28x28 PNGs and prepared the way the model's dataset made its
images: a clothing item shrunk into MNIST's 20x20 box; those the preparation refuses as blank
are left out, and n says how many were judged), new non-digit marks (drawn at 280 pixels from
another seed, preprocessed the way the model's dataset made its images, as an upload would be)
and new noise. Printed per pair:

- AUROC of the detector's strangeness, and of the candidates it was chosen over: -ELBO alone (as
  the old percentile warning used it), Serrà et al.'s complexity-corrected likelihood, and the
  density of (ELBO, PNG size) alone;
- "flagged": the share of the other images that the verdict calls strangers (its detection rate)
  and, on the first row, the share of the model's own unseen test images it flags (its false
  positive rate);
- the old warning's detection rate (ELBO below the 1st percentile of the test set's).

Then, for each kind of mark, the AUROC of a detector fitted *without* that kind among its
outliers: how it does on marks of a kind it has never seen. Marks and clothing items that the
preparation refuses (as blank) are left out of both, and n says how many were judged.

A model of the generated shapes (``--models shapes-conv-z8``) has 2,000 test images, all of
them the detector's fit (as in the app); its own unseen images are 2,000 fresh shapes from the
generator (another seed). It is judged against the digit and clothing datasets uploaded as
pictures, the marks and noise in its own colour and size, and two more rows say how often its
verdict flags what it should let through: fresh shapes drawn at 128 pixels and uploaded (its
own kind through the upload path), and filled discs in bright colours, as a user would draw a
shape (the red disc it called a stranger; its ellipses are narrower).

Needs torch, numpy, Pillow and scikit-learn; scipy for the marks' preprocessing. The datasets
must be in the cache (``vae-explorer data fetch mnist``, ``... fashion-mnist``).
"""

from __future__ import annotations

import argparse
import colorsys
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.checkpoints import dataset_of, load_checkpoint, read_config  # noqa: E402
from explorer.data.cache import load_dataset  # noqa: E402
from explorer.data.uploads import preprocess_image  # noqa: E402
from explorer.errors import ImageError  # noqa: E402
from explorer.explore.outliers import MARK_KINDS, noise_images, outlier_set, synthetic_marks  # noqa: E402
from explorer.explore.strangers import (  # noqa: E402
    REFERENCE_IMAGES,
    StrangerDetector,
    image_statistics,
    reads_ink,
)

DATASETS = ("mnist", "fashion-mnist")  # the other data every model is judged against
OTHER_UPLOADS = 1000  # other datasets' test images uploaded as PNGs, per dataset
UNSEEN_SEED = 2027  # the fresh shapes that stand for a shapes model's own unseen images


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Area under the ROC curve of a score that should be higher for ``outside`` (scikit-learn)."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    s = np.r_[inside, outside]
    s = np.where(np.isfinite(s), s, np.finfo(np.float64).max)
    return float(roc_auc_score(y, s))


def candidates(detector: StrangerDetector) -> dict:
    """Score functions (statistics (N, 4) -> (N,), higher = stranger): the verdict's strangeness
    and the candidates it was chosen over."""
    return {
        "detector": detector.strangeness,
        "-ELBO": lambda s: -(s[:, 0] - s[:, 1]),
        "Serra": lambda s: -(s[:, 0] - s[:, 1]) / math.log(2) - s[:, 2],
        "density alone": detector.density_score,
    }


def other_images(
    test: dict, dataset: str, marks: list, noise: int, uploads: int
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The images a model of ``dataset`` should call strangers, by name: the other datasets' test
    images as they are (where they have the model's shape) and ``uploads`` of them uploaded as
    PNGs (prepared as the model's data), the drawn ``marks`` and ``noise`` noise images; and the
    kind of each mark judged (those the preparation refuses, as blank, are left out)."""
    shape = tuple(test[dataset].shape[1:])
    others = {d: test[d][:5000] for d in DATASETS if d != dataset and tuple(test[d].shape[1:]) == shape}
    for d in DATASETS:
        if d != dataset:
            pictures = [Image.fromarray(a[0].mul(255).byte().numpy()) for a in test[d][5000 : 5000 + uploads]]
            others[f"{d}, uploaded"] = prepared(pictures, dataset)
    others["non-digit marks"], kept = prepared([im for _, im in marks], dataset, kept=True)
    others["noise"] = noise_images(noise, seed=2, shape=shape)
    return others, [marks[i][0] for i in kept]


def prepared(pictures: list[Image.Image], dataset: str, kept: bool = False):
    """``pictures`` prepared as uploads to a model of ``dataset`` (N, C, H, W); those it refuses
    (a nearly empty one, "blank", as the app refuses it) are left out, so n says how many were
    judged. With ``kept``, also the indices of the pictures prepared."""
    out, index = [], []
    for i, picture in enumerate(pictures):
        try:
            out.append(preprocess_image(picture, dataset))
        except ImageError:
            continue
        index.append(i)
    return (torch.stack(out), index) if kept else torch.stack(out)


def drawn_discs(n: int, seed: int = 5) -> list[Image.Image]:
    """``n`` filled discs as a user would draw a shape: 40-100 pixels across, in a bright
    colour, anywhere on a black 128-pixel picture. Seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image = Image.new("RGB", (128, 128), "black")
        size, hue = int(rng.integers(40, 101)), float(rng.random())
        colour = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, 1.0))
        x, y = (int(v) for v in rng.integers(4, 124 - size, 2))
        ImageDraw.Draw(image).ellipse((x, y, x + size, y + size), fill=colour)
        out.append(image)
    return out


def fresh_shapes(n: int, seed: int = UNSEEN_SEED) -> torch.Tensor:
    """``n`` new shapes (n, 3, 32, 32) in [0, 1] from the dataset's generator with another seed:
    the shapes' own images that neither the model nor the detector has seen."""
    from explorer.data.shapes import generate

    return torch.from_numpy(generate(n, np.random.default_rng(seed))[0]).float() / 255.0


def uploaded(x: torch.Tensor, dataset: str, scale: int = 4) -> torch.Tensor:
    """Images x (N, C, H, W) in [0, 1] saved as pictures ``scale`` times their size and
    prepared as uploads to a model of ``dataset``."""
    pictures = []
    for a in x:
        picture = Image.fromarray(a.mul(255).round().byte().permute(1, 2, 0).squeeze(-1).numpy())
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
        pictures.append(preprocess_image(picture, dataset))
    return torch.stack(pictures)


def own_images(test: dict, dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(the detector's reference images, the model's own unseen images): the test set's first
    REFERENCE_IMAGES and the rest; for the shapes, whose 2,000 test images are all the reference,
    fresh shapes."""
    own = test[dataset]
    if len(own) > REFERENCE_IMAGES:
        return own[:REFERENCE_IMAGES], own[REFERENCE_IMAGES:]
    if dataset != "shapes":
        raise SystemExit(f"{dataset}'s test set has no images beyond the detector's {len(own):,}")
    return own, fresh_shapes(len(own))


def judge_model(name: str, test: dict, marks: list, args) -> dict[str, float]:
    """Print the rows of model ``name`` (see the module's docstring); return the AUROC of each
    kind of mark for a detector fitted without it."""
    start = time.perf_counter()
    model = load_checkpoint(name)
    dataset = dataset_of(read_config(name))
    reference, own = own_images(test, dataset)
    ref_stats, own_stats = image_statistics(model, reference), image_statistics(model, own)
    outliers, outlier_kinds = outlier_set(dataset)
    outlier_stats = image_statistics(model, outliers)
    detector = StrangerDetector(ink=reads_ink(dataset)).fit(ref_stats, outlier_stats)
    scores = candidates(detector)
    old_threshold = np.percentile(ref_stats[:, 0] - ref_stats[:, 1], 1.0)
    others, mark_kinds = other_images(test, dataset, marks, args.noise, args.uploads)
    own_flagged = float((detector.strangeness(own_stats) > detector.threshold).mean())
    if dataset == "shapes":  # what its verdict should let through (own_flagged's target: <= 5%)
        through = {
            "fresh shapes, uploaded at 128 px (own kind)": uploaded(
                fresh_shapes(args.drawn, UNSEEN_SEED + 1), dataset
            ),
            "filled discs drawn at 128 px, uploaded": prepared(drawn_discs(args.drawn), dataset),
        }
        for label, x in through.items():
            flagged = float((detector.strangeness(image_statistics(model, x)) > detector.threshold).mean())
            print(f"| {name} | {label} | {len(x):,} | | | | | {flagged:.1%} | |")
    for i, (label, x) in enumerate(others.items()):
        s = image_statistics(model, x)
        aucs = [auroc(f(own_stats), f(s)) for f in scores.values()]
        flagged = float((detector.strangeness(s) > detector.threshold).mean())
        old = float(((s[:, 0] - s[:, 1]) < old_threshold).mean())
        own_note = f" (own: {own_flagged:.1%})" if i == 0 else ""
        print(
            f"| {name} | {label} | {len(x):,} | **{aucs[0]:.3f}** | {aucs[1]:.3f} | {aucs[2]:.3f} "
            f"| {aucs[3]:.3f} | {flagged:.1%}{own_note} | {old:.1%} |"
        )
    mark_stats = image_statistics(model, others["non-digit marks"])
    print(f"<!-- {name}: {time.perf_counter() - start:.1f} s -->")
    blind = unseen_kind_aurocs(
        ref_stats, own_stats, (outlier_stats, outlier_kinds), mark_stats, mark_kinds, dataset
    )
    return blind


def unseen_kind_aurocs(ref_stats, own_stats, outliers, mark_stats, mark_kinds, dataset) -> dict[str, float]:
    """AUROC of each kind of mark (``mark_kinds``, one per row of ``mark_stats``) against the
    model's own test images, for a detector fitted without that kind among its ``outliers``
    (statistics, kinds)."""
    outlier_stats, kinds_seen = outliers[0], np.array(outliers[1])
    mark_kinds = np.array(mark_kinds)
    out = {}
    for kind in MARK_KINDS:
        blind = StrangerDetector(ink=reads_ink(dataset)).fit(ref_stats, outlier_stats[kinds_seen != kind])
        out[kind] = auroc(blind.strangeness(own_stats), blind.strangeness(mark_stats[mark_kinds == kind]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mnist-z2,mnist-z20,fashion-mnist-z2")
    p.add_argument("--marks", type=int, default=800, help="new non-digit marks per model")
    p.add_argument("--noise", type=int, default=400, help="new noise images per model")
    p.add_argument("--uploads", type=int, default=OTHER_UPLOADS, help="other datasets' images uploaded")
    p.add_argument("--drawn", type=int, default=300, help="shapes and discs uploaded, for models of shapes")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    print(f"# Strangers: host {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(
        f"# detector fitted on test images 0-{REFERENCE_IMAGES - 1} and synthetic outliers; own = "
        f"test images {REFERENCE_IMAGES}-9,999 (unseen by the fit; the shapes: all 2,000 test images "
        "fitted, own = 2,000 fresh shapes)\n"
    )
    datasets = {dataset_of(read_config(name)) for name in args.models.split(",")} | set(DATASETS)
    test = {d: load_dataset(d, "test").images.float() / 255.0 for d in sorted(datasets)}
    marks = synthetic_marks(args.marks, seed=1)
    header = (
        "| model | other images | n | AUROC detector | -ELBO | Serra | density (ELBO, PNG) alone "
        "| flagged (detector) | flagged (old: ELBO < 1st pct) |"
    )
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    unseen_kinds = {name: judge_model(name, test, marks, args) for name in args.models.split(",")}
    print("\nAUROC on each kind of mark, for a detector fitted without that kind among its outliers:\n")
    print("| model | " + " | ".join(MARK_KINDS) + " |")
    print("|---|" + "---:|" * len(MARK_KINDS))
    for name, row in unseen_kinds.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in MARK_KINDS) + " |")


if __name__ == "__main__":
    main()
