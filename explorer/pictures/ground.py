"""The paper under a drawing (step 2 of ``explorer.pictures.preprocess``): how wide its strokes
are, and the ground level under every pixel, so that a shadow or uneven light across the paper is
ground, not ink. Grey-level morphology from ``scipy.ndimage``."""

from __future__ import annotations

import numpy as np
from PIL import Image

from explorer.pictures.photos import shrink


def stroke_split(ink: np.ndarray) -> float:
    """The level (in the units of ``ink``, light on dark) above which a pixel is a stroke's core:
    the emptiest level between a half and nine tenths of the strongest ink (its 99.5th
    percentile). Where the picture holds a second, weaker kind of "ink" (what a shadow leaves: a
    shadow darkens paper by at most about two thirds, ink by nine tenths), that is the gap
    between the two; in a drawing alone, it is somewhere on the strokes' soft edges."""
    peak = float(np.percentile(ink, 99.5))
    if peak <= 0:
        return 0.0
    hist, edges = np.histogram(ink, bins=24, range=(0.5 * peak, 0.9 * peak))
    smooth = np.convolve(hist, np.ones(3) / 3, mode="same")
    return float(edges[int(np.argmin(smooth[1:-1])) + 2])


def stroke_width(ink: np.ndarray, cores: bool = True) -> float:
    """The width in pixels of the strongest strokes of a light-on-dark picture: twice the 95th
    percentile of the distance from a stroke pixel to the nearest other pixel. Stroke pixels are
    those above ``stroke_split`` (the strokes' cores, not a shadow's remains) with ``cores``,
    else those above half the strongest ink (once shadows are gone: faint parts of a stroke
    count)."""
    from scipy import ndimage

    level = stroke_split(ink) if cores else 0.5 * float(np.percentile(ink, 99.5))
    strokes = ink > level
    if not strokes.any() or strokes.all():
        return 1.0
    return 2.0 * float(np.percentile(ndimage.distance_transform_edt(strokes)[strokes], 95))


def local_ground(grey: np.ndarray) -> np.ndarray:
    """The ground level under every pixel (H, W) of a light-ink-on-dark picture, so that a shadow
    or uneven light across the paper counts as ground, not as ink.

    A grey-level opening (a minimum then a maximum filter, the "rolling ball" of background
    subtraction) with a square three times as wide as the strokes: it removes every stroke, and
    keeps the ground's steps and gradients (the edge of a shadow stays where it is).
    """
    from scipy import ndimage

    wide = max(5, min(grey.shape) // 2)
    rough = ndimage.grey_opening(grey, size=(wide, wide), mode="reflect")
    np.subtract(grey, rough, out=rough)  # the strokes, and what a shadow leaves, over the ground
    size = int(np.clip(3 * stroke_width(rough) + 3, 5, wide))
    del rough
    return ndimage.grey_opening(grey, size=(size, size), mode="reflect")


def typical_level(grey: np.ndarray, cells: int = 64) -> np.ndarray:
    """The median grey level (H, W) of each pixel's neighbourhood, half of the picture
    across: the paper's level where ink covers less than half of it. Computed on a copy shrunk
    to ``cells`` pixels a side (area averages), median-filtered, and enlarged back (bilinear)."""
    from scipy import ndimage

    h, w = grey.shape
    small = shrink(grey, cells)
    size = max(3, min(small.shape) // 2)
    typical = ndimage.median_filter(small, size=size, mode="reflect")
    big = Image.fromarray(typical.astype(np.float32), "F").resize((w, h), Image.BILINEAR)
    return np.asarray(big, np.float64)


def plane_ground(grey: np.ndarray) -> np.ndarray:
    """The ground level (H, W) as a plane fitted to the picture's border: for objects that fill
    most of the frame (a local estimate would take the object for ground); it still follows a
    gradient of light across the picture."""
    h, w = grey.shape
    ys, xs = np.indices((h, w))
    edge = np.zeros((h, w), dtype=bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    a = np.stack([np.ones(edge.sum()), ys[edge] / max(h - 1, 1), xs[edge] / max(w - 1, 1)], 1)
    values = grey[edge]
    coef = np.linalg.lstsq(a, values, rcond=None)[0]
    # Robust to an object touching the border: refit on the half of the border nearest the plane.
    resid = np.abs(a @ coef - values)
    keep = resid <= np.median(resid)
    if keep.sum() >= 3:
        coef = np.linalg.lstsq(a[keep], values[keep], rcond=None)[0]
    return coef[0] + coef[1] * ys / max(h - 1, 1) + coef[2] * xs / max(w - 1, 1)
