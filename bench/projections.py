"""Maps of a wide latent space: seconds to fit PCA, t-SNE (openTSNE) and UMAP (umap-learn) on the
codes of 10,000 test images, and to place new points into each fitted map (what an upload or a
drawing costs on the Latent space page), with PCA as the baseline measured in the same run.

    python bench/projections.py [--model mnist-z20] [--points 10000] [--repeats 3]

Prints a Markdown table: median and range over the repeats (each repeat fits afresh; UMAP's first
fit in a process also compiles its numba kernels, reported as its own row). A second table gives
the placement error of jittered copies: ``JITTERED`` fitted codes plus Gaussian noise of each
scale, placed into the last fitted map; the distance from each to its original's place, in units
of the map's median nearest-neighbour distance (median, 95th percentile, largest). Target: p95 <= 2.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.checkpoints import dataset_of, load_checkpoint, read_config  # noqa: E402
from explorer.data.cache import eval_images  # noqa: E402
from explorer.evaluate import encode_means, fit_projection  # noqa: E402
from explorer.explore.projections import fit_nonlinear  # noqa: E402

NEW_POINTS = 5  # placed at once, as a handful of uploads
JITTERED = 500  # fitted codes copied with noise for the placement error
SCALES = (1e-4, 1e-2)  # the noise's standard deviation per latent dimension


def placement_error(fitted, means: torch.Tensor, scale: float) -> tuple[float, float, float]:
    """(median, p95, max) distance of jittered copies of fitted codes from their originals' places,
    in the map's median nearest-neighbour distance."""
    g = torch.Generator().manual_seed(1)
    rows = torch.randperm(len(means), generator=g)[:JITTERED]
    copies = means[rows] + scale * torch.randn(len(rows), means.shape[1], generator=g)
    points = fitted.points.double()
    d = torch.cdist(points, points)
    d.fill_diagonal_(float("inf"))
    spacing = float(d.min(1).values.median())
    error = (fitted(copies).double() - points[rows]).norm(dim=1) / spacing
    return float(error.median()), float(error.quantile(0.95)), float(error.max())


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mnist-z20")
    p.add_argument("--points", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_grad_enabled(False)
    model = load_checkpoint(args.model)
    x, _ = eval_images(dataset_of(read_config(args.model)), binarized=False, limit=args.points)
    means = encode_means(model, x)
    new = means[:NEW_POINTS] + 0.05 * torch.randn(
        NEW_POINTS, means.shape[1], generator=torch.Generator().manual_seed(0)
    )
    rows: dict[str, list[float]] = {}
    maps = {}
    first_umap = None
    for _ in range(args.repeats):
        seconds, pca = timed(fit_projection, means)
        rows.setdefault("PCA: fit", []).append(seconds)
        rows.setdefault(f"PCA: place {NEW_POINTS} new points", []).append(timed(pca, new)[0])
        for kind, name in (("tsne", "t-SNE (openTSNE)"), ("umap", "UMAP (umap-learn)")):
            seconds, fitted = timed(fit_nonlinear, kind, means)
            maps[name] = fitted
            if kind == "umap" and first_umap is None:
                first_umap = seconds  # includes numba's compilation
                continue
            rows.setdefault(f"{name}: fit", []).append(seconds)
            rows.setdefault(f"{name}: place {NEW_POINTS} new points", []).append(timed(fitted, new)[0])
    base = statistics.median(rows["PCA: fit"])
    host = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    print(
        f"Maps of {len(means):,} codes of {args.model} ({means.shape[1]}-D), {host}, {args.repeats} repeats\n"
    )
    print("| step | median s | min-max s | x PCA fit |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.3f} | {min(values):.3f}-{max(values):.3f} | {med / base:,.0f} |")
    if first_umap is not None:
        print(
            f"| UMAP: first fit in a process (numba compiles) | {first_umap:.3f} | one run "
            f"| {first_umap / base:,.0f} |"
        )
    print(f"\nPlacement of {JITTERED} fitted codes plus N(0, scale^2) noise, in the map's nearest-neighbour")
    print("distance (target: p95 <= 2)\n")
    print("| map | noise scale | median | p95 | max |")
    print("|---|---|---|---|---|")
    for name, fitted in maps.items():
        for scale in SCALES:
            med, p95, most = placement_error(fitted, means, scale)
            print(f"| {name} | {scale:g} | {med:.2f} | {p95:.2f} | {most:.2f} |")


if __name__ == "__main__":
    main()
