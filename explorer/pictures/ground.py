"""The paper under a drawing (step 2 of ``explorer.pictures.preprocess``): how wide its strokes
are, and the ground level under every pixel, so that a shadow or uneven light across the paper is
ground, not ink: estimated at two scales (three stroke widths, and two for shadows narrower than
that), each a grey-level opening that passes under the strokes. Grey-level morphology from
``scipy.ndimage``."""

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


# A shadow leaves paper at least this share of its light (a pole's or a hand's: 0.35-0.7); ink
# leaves a tenth or less. The narrow window's ground is taken only where it is that light.
SHADE_FLOOR = 0.3
# The narrow window, in stroke widths (plus 3 px): wider than the strokes' cores, narrower than a
# hand's fingers. (Where it fits inside a grey stroke, the stroke's grey is taken as ground only
# if no darker than SHADE_FLOOR; 2.0 kept more of MNIST's grey strokes on a card, and lost 3% of
# bench/shadows.py's draws, whose fingers and bands it no longer fitted.)
NARROW = 1.5
SEEN = 0.02  # the narrow window sees paper this much darker (a share of its light) or more
SHADOWED = 0.8  # paper darker than this share of the picture's lightest: a shadow


def local_ground(grey: np.ndarray) -> np.ndarray:
    """The ground level under every pixel (H, W) of a light-ink-on-dark picture (levels in
    [0, 1]), so that a shadow or uneven light across the paper counts as ground, not as ink.

    A grey-level opening (a minimum then a maximum filter, the "rolling ball" of background
    subtraction) with a square three times as wide as the strokes: it removes every stroke, and
    keeps the ground's steps and gradients (the edge of a shadow stays where it is). A shadow
    narrower than that square (a pole's band, a finger) is refined by ``narrow_shadows``.
    """
    from scipy import ndimage

    wide = max(5, min(grey.shape) // 2)
    rough = ndimage.grey_opening(grey, size=(wide, wide), mode="reflect")
    np.subtract(grey, rough, out=rough)  # the strokes, and what a shadow leaves, over the ground
    width = stroke_width(rough)
    del rough
    size = int(np.clip(3 * width + 3, 5, wide))
    ground = ndimage.grey_opening(grey, size=(size, size), mode="reflect")
    return narrow_shadows(grey, ground, width, size)


def narrow_shadows(grey: np.ndarray, ground: np.ndarray, width: float, size: int) -> np.ndarray:
    """``ground`` (H, W), the opening of ``grey`` by a ``size``-pixel square, refined where a
    shadow narrower than that square lies: the ground at a second, narrower scale (an opening
    by ``NARROW`` stroke widths, ``width`` in pixels), taken wherever the paper it sees keeps at
    least ``SHADE_FLOOR`` of the light the wide one sees, as a shadow's does and ink's does not.

    The ground at two scales, each robust (an opening passes under noise and strokes narrower
    than its square): the wide one never takes a stroke for paper, the narrow one follows a
    shadow's band or finger; where the narrow one sinks into ink (a blob of strokes wider than
    its square), its level is as dark as ink, below the floor, and the wide one stays.
    """
    from scipy import ndimage

    small = int(np.clip(NARROW * width + 3, 5, size))
    if small >= size:
        return ground
    narrow = ndimage.grey_opening(grey, size=(small, small), mode="reflect")  # >= ground
    # Light left on the paper (the levels are 1 - paper's), narrow over wide, in place.
    share = np.subtract(1.0, narrow)
    share /= np.maximum(1.0 - ground, 1e-6)
    darker = (share >= SHADE_FLOOR) & (share < 1.0 - SEEN)
    del share
    # A shadow comes from outside the drawing: it reaches the picture's edge (a band across the
    # sheet) or the shade the wide window sees (a hand's fingers, from its palm). What the narrow
    # window takes for darker paper inside a drawing is a grey stroke of it.
    paper = 1.0 - ground
    shade = ndimage.binary_dilation(paper < SHADOWED * np.percentile(paper, 99), iterations=2)
    del paper
    parts, _ = ndimage.label(darker, structure=np.ones((3, 3)))
    edge = np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1], parts[shade]])
    cast = np.isin(parts, np.unique(edge[edge > 0]))
    return np.where(cast, narrow, ground)


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
