"""Holes in the prior: the Latent space page's "Prior mass in holes" from the test images, against
the same figure from many more images of the model's data.

    nice -n 5 python bench/holes.py [--models mnist-z2,...] [--reference 30000]

For each shipped VAE the aggregate posterior q(z) in the map's plane (the page's PCA plane, or z
itself for a 2-D model) is the mixture of the posteriors of the images the page uses (its first
``DENSITY_IMAGES`` test images) and the prior's mass in holes is where q < 0.1 p inside 2 sigma
(``explorer.explore.density``). Printed per model:

- "raw mixture": the mixture of those posteriors as they are (the page's figure before the
  posteriors were widened to the spacing of their neighbours);
- "page": the figure the page shows (each posterior widened by ``SPACING`` x the distance to its
  ``NEIGHBOUR``-th nearest mean);
- "reference": the raw mixture of many more images of the same data (the training set for MNIST
  and Fashion-MNIST, ``--reference`` fresh shapes from the generator for the shapes models), in
  the same plane: gaps that more images fill were never holes of the model.

Needs torch and the datasets in the cache (``vae-explorer data fetch mnist``, ``... fashion-mnist``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.checkpoints import dataset_of, load_checkpoint  # noqa: E402
from explorer.evaluate import fit_projection  # noqa: E402
from explorer.explore import density  # noqa: E402
from explorer.explore.derived import DENSITY_IMAGES, test_images  # noqa: E402
from explorer.explore.latent import encode_means  # noqa: E402
from explorer.explore.posterior import posterior  # noqa: E402

MODELS = ("mnist-z2", "fashion-mnist-z2", "mnist-z20", "shapes-conv-z8", "shapes-conv-bce-z8",
          "paper-aevb-z20", "paper-wake-sleep-z20")  # fmt: skip


def reference_images(dataset: str, count: int) -> torch.Tensor:
    """Many images of ``dataset`` other than its test set, in [0, 1]: (count, C, H, W)."""
    if dataset == "shapes":
        from explorer.data.shapes import generate

        return torch.from_numpy(generate(count, np.random.default_rng(123))[0]).float() / 255
    from explorer.data.cache import load_dataset

    return load_dataset(dataset, "train").images[:count].float() / 255


@torch.no_grad()
def posteriors(model, x: torch.Tensor, chunk: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [posterior(model, x[i : i + chunk]) for i in range(0, len(x), chunk)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def raw_hole_mass(projection, mu: torch.Tensor, sigma: torch.Tensor) -> float:
    """The hole mass of the mixture of the posteriors as they are (no widening)."""
    kept = density.SPACING
    density.SPACING = 0.0
    try:
        return density.density_map(projection, mu, sigma).hole_mass
    finally:
        density.SPACING = kept


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--reference", type=int, default=30000, help="images of the reference mixture")
    args = parser.parse_args()
    print(f"host: {platform.node()}, {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"estimator: {density.ESTIMATOR}\n")
    print("| model | test images | raw mixture | page | reference images | reference | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        start = time.perf_counter()
        folder = ROOT / "pretrained" / name
        model = load_checkpoint(folder).eval()
        dataset = dataset_of(json.loads((folder / "config.json").read_text()))
        x = test_images(dataset)
        with torch.no_grad():
            projection = fit_projection(encode_means(model, x))
        mu, sigma = posteriors(model, x[:DENSITY_IMAGES])
        page = density.density_map(projection, mu, sigma).hole_mass
        raw = raw_hole_mass(projection, mu, sigma)
        big_mu, big_sigma = posteriors(model, reference_images(dataset, args.reference))
        reference = raw_hole_mass(projection, big_mu, big_sigma)
        print(f"| {name} | {len(mu):,} | {raw:.1%} | {page:.1%} | {len(big_mu):,} | {reference:.1%} | "
              f"{time.perf_counter() - start:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
