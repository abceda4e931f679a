"""The shapes dataset, generated on the user's machine: coloured sprites (square, ellipse, heart)
on black, 32x32x3, each drawn from six independent factors stored with it: shape, scale,
rotation, x and y position, and hue, in the spirit of dSprites (Matthey et al. 2017) with colour.
It gives an offline machine real colour data to train on, and lets the explorer compare what a
latent dimension does with the factors that made the images.

The images are drawn 4x larger with Pillow and downsampled (anti-aliased). The same seed gives
the same images on the same Pillow version; the cache records their SHA-256.
"""

from __future__ import annotations

import colorsys
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from explorer.data.arrays import write_arrays
from explorer.data.specs import SHAPES_CLASSES, spec

SIDE = 32  # pixels of an image's side
SUPERSAMPLE = 4  # drawn at 4x and downsampled
TRAIN_IMAGES, TEST_IMAGES = 20_000, 2_000
SEED = 0  # the built-in dataset's seed; the test split follows the training split's stream
# The factors' ranges (scale: the sprite's half-size as a fraction of the side; x, y: its centre).
SCALE = (0.18, 0.34)
POSITION = (0.3, 0.7)
ELLIPSE_ASPECT = 0.55  # minor / major axis: an ellipse shows its rotation


def _outline(kind: int, n: int = 64) -> np.ndarray:
    """The shape's outline (P, 2) around the origin, of half-size about 1, pointing up."""
    if kind == 0:  # square
        return np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=np.float64) * 0.85
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    if kind == 1:  # ellipse
        return np.stack([np.cos(t), ELLIPSE_ASPECT * np.sin(t)], 1)
    # heart: the classic parametric curve, scaled to about [-1, 1]; image rows grow downwards
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return np.stack([x / 17.0, -(y + 2.5) / 17.0], 1)


def draw_sprite(shape: int, scale: float, rotation: float, x: float, y: float, hue: float) -> np.ndarray:
    """One image (3, SIDE, SIDE) uint8 of the given factors: ``shape`` an index of SHAPES_CLASSES,
    ``scale`` the half-size as a fraction of the side, ``rotation`` in degrees, ``x``, ``y`` the
    centre as fractions of the side, ``hue`` in [0, 1) (saturation 0.85, value 1)."""
    big = SIDE * SUPERSAMPLE
    angle = math.radians(rotation)
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = _outline(shape) @ turn.T * (scale * big) + np.array([x * big, y * big])
    colour = tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, 1.0))
    image = Image.new("RGB", (big, big), (0, 0, 0))
    ImageDraw.Draw(image).polygon([tuple(p) for p in points], fill=colour)
    small = image.resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    return np.array(small, dtype=np.uint8).transpose(2, 0, 1)


def generate(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` sprites with factors drawn independently and uniformly: (images (n, 3, 32, 32)
    uint8, labels (n,) the shape index, factors (n, 6) float32 in SHAPES_FACTORS order)."""
    factors = np.stack(
        [
            rng.integers(0, len(SHAPES_CLASSES), n).astype(np.float64),
            rng.uniform(*SCALE, n),
            rng.uniform(0, 360, n),
            rng.uniform(*POSITION, n),
            rng.uniform(*POSITION, n),
            rng.uniform(0, 1, n),
        ],
        axis=1,
    )
    images = np.empty((n, 3, SIDE, SIDE), dtype=np.uint8)
    for i, (shape, scale, rotation, x, y, hue) in enumerate(factors):
        images[i] = draw_sprite(int(shape), scale, rotation, x, y, hue)
    return images, factors[:, 0].astype(np.int64), factors.astype(np.float32)


def make_shapes(train: int = TRAIN_IMAGES, test: int = TEST_IMAGES, seed: int = SEED) -> dict:
    """Both splits, from one seeded stream: {split: (images, labels, factors)}."""
    rng = np.random.default_rng(seed)
    return {"train": generate(train, rng), "test": generate(test, rng)}


def shapes_source(name: str, dest: Path) -> None:
    """The shapes dataset's one source (``explorer.data.sources.SOURCES``): generated here into
    ``dest`` (no download)."""
    folder = write_arrays(dest / "shapes", spec("shapes"), make_shapes(), {"generated": f"seed {SEED}"})
    for file in folder.iterdir():
        os.replace(file, dest / file.name)
    folder.rmdir()
