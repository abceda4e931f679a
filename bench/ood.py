"""Strangers: how well each shipped model's stranger verdict tells its own data from other data.

    python bench/ood.py [--models mnist-z2,mnist-z20,fashion-mnist-z2] [--marks 800] [--noise 400]

For every model, the detector (``explorer.explore.strangers``, as the app and the CLI fit it) is fitted
on the first 5,000 images of its dataset's test set and on synthetic outliers (marks drawn at 140
pixels, seed 11, and noise); the other 5,000 test images are the in-distribution images it is
judged on. Against them: the other shipped dataset's test images (never shown to the detector),
as they are and as a user would upload them (1,000 of them saved as 28x28 PNGs and prepared the
way the model's dataset made its images: a clothing item shrunk into MNIST's 20x20 box),
new non-digit marks (drawn at 280 pixels from another seed, preprocessed the way the model's
dataset made its images, as an upload would be) and new noise. Printed per pair:

- AUROC of the detector's strangeness, and of the candidates it was chosen over: -ELBO alone (as
  the old percentile warning used it), Serrà et al.'s complexity-corrected likelihood, and the
  density of (ELBO, PNG size) alone;
- "flagged": the share of the other images that the verdict calls strangers (its detection rate)
  and, on the first row, the share of the model's own unseen test images it flags (its false
  positive rate);
- the old warning's detection rate (ELBO below the 1st percentile of the test set's).

Then, for each kind of mark, the AUROC of a detector fitted *without* that kind among its
outliers: how it does on marks of a kind it has never seen.

Needs torch, numpy, Pillow and scikit-learn; scipy for the marks' preprocessing. The datasets
must be in the cache (``vae-explorer data fetch mnist``, ``... fashion-mnist``).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.checkpoints import dataset_of, load_checkpoint, read_config  # noqa: E402
from explorer.data.cache import load_dataset  # noqa: E402
from explorer.data.uploads import preprocess_image  # noqa: E402
from explorer.explore.outliers import (  # noqa: E402
    MARK_KINDS,
    OUTLIER_MARKS,
    OUTLIER_SEED,
    noise_images,
    outlier_images,
    synthetic_marks,
)
from explorer.explore.strangers import REFERENCE_IMAGES, StrangerDetector, image_statistics  # noqa: E402

DATASETS = ("mnist", "fashion-mnist")


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


def other_images(test: dict, dataset: str, marks: list, noise: int) -> dict[str, torch.Tensor]:
    """The images a model of ``dataset`` should call strangers, by name: the other datasets' test
    images as they are and uploaded as PNGs (prepared as the model's data), the drawn ``marks``
    and ``noise`` noise images."""
    others = {d: test[d][:5000] for d in DATASETS if d != dataset}
    for d in DATASETS:
        if d != dataset:
            uploads = [
                preprocess_image(Image.fromarray(a[0].mul(255).byte().numpy()), dataset)
                for a in test[d][5000:6000]
            ]
            others[f"{d}, uploaded"] = torch.stack(uploads)
    others["non-digit marks"] = torch.stack([preprocess_image(im, dataset) for _, im in marks])
    others["noise"] = noise_images(noise, seed=2)
    return others


def unseen_kind_aurocs(ref_stats, own_stats, outlier_stats, mark_stats, marks) -> dict[str, float]:
    """AUROC of each kind of mark against the model's own test images, for a detector fitted
    without that kind among its outliers."""
    kinds_seen = np.array([k for k, _ in synthetic_marks(OUTLIER_MARKS, OUTLIER_SEED, size=140)])
    mark_kinds = np.array([k for k, _ in marks])
    out = {}
    for kind in MARK_KINDS:
        keep = np.r_[kinds_seen != kind, np.ones(len(outlier_stats) - len(kinds_seen), bool)]
        blind = StrangerDetector().fit(ref_stats, outlier_stats[keep])
        out[kind] = auroc(blind.strangeness(own_stats), blind.strangeness(mark_stats[mark_kinds == kind]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mnist-z2,mnist-z20,fashion-mnist-z2")
    p.add_argument("--marks", type=int, default=800, help="new non-digit marks per model")
    p.add_argument("--noise", type=int, default=400, help="new noise images per model")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    print(f"# Strangers: host {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(
        f"# detector fitted on test images 0-{REFERENCE_IMAGES - 1} and synthetic outliers; own = "
        f"test images {REFERENCE_IMAGES}-9,999 (unseen by the fit)\n"
    )
    test = {d: load_dataset(d, "test").images.float() / 255.0 for d in DATASETS}
    marks = synthetic_marks(args.marks, seed=1)
    header = (
        "| model | other images | n | AUROC detector | -ELBO | Serra | density (ELBO, PNG) alone "
        "| flagged (detector) | flagged (old: ELBO < 1st pct) |"
    )
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    unseen_kinds = {}
    for name in args.models.split(","):
        start = time.perf_counter()
        model = load_checkpoint(name)
        dataset = dataset_of(read_config(name))
        own = test[dataset]
        ref_stats = image_statistics(model, own[:REFERENCE_IMAGES])
        own_stats = image_statistics(model, own[REFERENCE_IMAGES:])
        outlier_stats = image_statistics(model, outlier_images(dataset))
        detector = StrangerDetector().fit(ref_stats, outlier_stats)
        scores = candidates(detector)
        old_threshold = np.percentile(ref_stats[:, 0] - ref_stats[:, 1], 1.0)
        others = other_images(test, dataset, marks, args.noise)
        own_flagged = float((detector.strangeness(own_stats) > detector.threshold).mean())
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
        unseen_kinds[name] = unseen_kind_aurocs(ref_stats, own_stats, outlier_stats, mark_stats, marks)
        print(f"<!-- {name}: {time.perf_counter() - start:.1f} s -->")
    print("\nAUROC on each kind of mark, for a detector fitted without that kind among its outliers:\n")
    print("| model | " + " | ".join(MARK_KINDS) + " |")
    print("|---|" + "---:|" * len(MARK_KINDS))
    for name, row in unseen_kinds.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in MARK_KINDS) + " |")


if __name__ == "__main__":
    main()
