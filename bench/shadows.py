"""Shadows across the paper: how close a photo of a drawing under a shadow comes to its clean twin
once prepared as an MNIST input (``preprocess_image``), over the seeded family of
``tests/shadows.py`` (straight and curved shadow edges, bands, corners, a hand's shadow, hard and
soft, with gradients, vignettes, grain and JPEG).

    python bench/shadows.py [--draws 200] [--first 0] [--worst 10] [--save DIR]

Prints the share of draws whose correlation with the clean twin's input is >= 0.95 (target: 97%),
the lowest (target: >= 0.85), percentiles, the worst draws with what was drawn, and the time per
upload. With ``--save``, the worst draws' photo, clean twin and both inputs are written as PNGs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.data.uploads import preprocess_image  # noqa: E402
from explorer.errors import ImageError  # noqa: E402
from tests.shadows import shadow_photo  # noqa: E402


def correlation(seed: int) -> tuple[float, dict, tuple]:
    """The draw's correlation with its clean twin (0 when the photo is refused)."""
    photo, clean, info = shadow_photo(seed)
    twin = preprocess_image(clean).numpy()
    try:
        x = preprocess_image(photo).numpy()
    except ImageError as exc:
        info["refused"] = str(exc)
        return 0.0, info, (photo, clean, None, twin)
    return float(np.corrcoef(x.ravel(), twin.ravel())[0, 1]), info, (photo, clean, x, twin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--worst", type=int, default=10, help="how many of the worst to list")
    parser.add_argument("--save", type=Path, help="folder for the worst draws' pictures")
    args = parser.parse_args()
    rows, start = [], time.perf_counter()
    for seed in range(args.first, args.first + args.draws):
        corr, info, pictures = correlation(seed)
        rows.append((corr, seed, info, pictures))
    seconds = (time.perf_counter() - start) / (2 * args.draws)
    corr = np.array([r[0] for r in rows])
    print(
        f"{args.draws} draws (seeds {args.first}-{args.first + args.draws - 1}), {seconds:.2f} s per upload"
    )
    print(f">= 0.95: {np.mean(corr >= 0.95):.1%}   < 0.85: {int(np.sum(corr < 0.85))}   min {corr.min():.3f}")
    print("percentiles 1/5/10/50: " + " ".join(f"{np.percentile(corr, q):.3f}" for q in (1, 5, 10, 50)))
    for corr_i, seed, info, pictures in sorted(rows, key=lambda r: r[0])[: args.worst]:
        print(f"  seed {seed:4d}  {corr_i:.3f}  {info}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            photo, clean, x, twin = pictures
            (args.save / f"{seed}-photo.{'jpg' if info['format'].startswith('JPEG') else 'png'}").write_bytes(
                photo
            )
            for name, a in (("input", x), ("twin", twin)):
                if a is not None:
                    big = Image.fromarray((a[0] * 255).astype(np.uint8)).resize((140, 140), Image.NEAREST)
                    big.save(args.save / f"{seed}-{name}.png")


if __name__ == "__main__":
    main()
