"""The model's own test digits, uploaded: how often the stranger verdict flags MNIST test images
saved as pictures the ways a user might make them (at their own 28x28, inverted to dark ink on
white, scaled up by nearest neighbour, bilinear or bicubic) and prepared as uploads
(``preprocess_image``), against the same images judged as test images.

    python bench/own_uploads.py [--models mnist-z2,mnist-z20] [--n 200] [--first 5000]

Prints, per model and way: the share flagged (the goal for own images: <= 5%), the same images'
share as test images, the median correlation of the prepared input with the original, and the
median full-ink share of the prepared inputs (``explorer.explore.ink``; MNIST's own: 0.50).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.checkpoints import load_checkpoint, resolve  # noqa: E402
from explorer.data.cache import load_dataset  # noqa: E402
from explorer.data.uploads import preprocess_image  # noqa: E402
from explorer.explore.derived import ensure  # noqa: E402
from explorer.explore.ink import ink_statistics  # noqa: E402
from explorer.explore.strangers import Reference  # noqa: E402

WAYS = {  # name: how the 28x28 test image becomes the picture uploaded
    "28x28 as it is": lambda a: Image.fromarray(a),
    "28x28, dark on white": lambda a: Image.fromarray(255 - a),
    "x4 nearest, dark on white": lambda a: Image.fromarray(255 - a).resize((112, 112), Image.NEAREST),
    "x8 bicubic, dark on white": lambda a: Image.fromarray(255 - a).resize((224, 224), Image.BICUBIC),
    "x20 bilinear, dark on white": lambda a: Image.fromarray(255 - a).resize((560, 560), Image.BILINEAR),
}


def prepared(way, images: np.ndarray) -> torch.Tensor:
    """The uint8 test images (N, 28, 28) made into pictures by ``way`` and prepared as uploads:
    (N, 1, 28, 28) in [0, 1]."""
    out = []
    for a in images:
        buffer = io.BytesIO()
        way(a).save(buffer, "PNG")
        out.append(preprocess_image(buffer.getvalue(), "mnist"))
    return torch.stack(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mnist-z2,mnist-z20")
    p.add_argument("--n", type=int, default=200)
    p.add_argument(
        "--first", type=int, default=5000, help="first test image (the detector is fitted on the first 5,000)"
    )
    args = p.parse_args()
    test = load_dataset("mnist", "test")
    images = test.images[args.first : args.first + args.n, 0].numpy()
    originals = torch.from_numpy(images[:, None]).float() / 255.0
    print(f"# MNIST test images #{args.first}-{args.first + args.n - 1}, uploaded")
    print(
        "| model | uploaded as | flagged | as test images | correlation with the original (median) "
        "| full-ink share (median) |"
    )
    print("|---|---|---:|---:|---:|---:|")
    inputs = {name: prepared(way, images) for name, way in WAYS.items()}
    for name in args.models.split(","):
        model = load_checkpoint(name)
        figures = ensure(resolve(name), model, ("elbo", "detector"))
        reference = Reference(figures.elbo, figures.detector)
        own = np.mean([j.verdict.stranger for j in reference.judge(model, originals)])
        for way, x in inputs.items():
            flagged = np.mean([j.verdict.stranger for j in reference.judge(model, x)])
            r = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(x.numpy(), originals.numpy())]
            full = np.median(ink_statistics(x)[:, 0])
            print(
                f"| {name} | {way} | {100 * flagged:.1f}% | {100 * own:.1f}% | {np.median(r):.3f} "
                f"| {full:.2f} |"
            )


if __name__ == "__main__":
    main()
