"""Fitting a user's ink into a dataset's frame (step 4 of ``explorer.pictures.preprocess``): the
strong ink's box scaled to the dataset's box keeping its aspect ratio (area averaging when
shrinking, Lanczos when enlarging; Pillow), then moved by whole pixels so that its centre of mass
lands where the dataset's images have theirs (MNIST's convention: LeCun et al. 1998)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from explorer.pictures.convention import Convention

# -- fitting into the frame -----------------------------------------------------------------------

# A picture whose ink box spans at least this many times the dataset's box has its box's edges
# placed to a fraction of a pixel; a smaller one (a dataset's own image uploaded as it is, whose
# grey edge pixels are part of the drawing) keeps the whole-pixel box.
SUBPIXEL = 4


def _edge(profile: np.ndarray, first: int, step: int) -> float:
    """Where ``profile`` (the strongest ink of each row, or column) rises to half the level it
    reaches within six pixels of ``first`` (the outermost row or column of the box), coming
    from outside (``step`` +1 from the top or left, -1 from the bottom or right): the half-level
    crossing, interpolated between pixel centres, in pixel-edge coordinates (pixel i spans
    [i, i + 1]). A step edge (square pixels drawn large) gives the pixel boundary itself; a
    blurred edge (a photo) the same place as the sharp one, since a symmetric blur leaves the
    half level where it was; an edge sampled by coverage, within a tenth of a pixel. (Local on
    purpose: an estimate from the ink's area beyond the edge, exact for both, took in what lies
    near the box and did worse on bench/shadows.py, 95.0% against 97.0%.)"""
    n = len(profile)
    near = profile[first : first + 6] if step > 0 else profile[max(0, first - 5) : first + 1]
    half = 0.5 * float(near.max())
    i = first
    while 0 <= i + step < n and profile[i] < half:
        i += step  # the first pixel at half the level or more
    j = i - step  # the one outside it
    if not 0 <= j < n:
        return float(i if step > 0 else i + 1)
    a, b = float(profile[j]), float(profile[i])
    t = min(1.0, max(0.0, (half - a) / (b - a))) if b > a else 0.5
    return j + 0.5 + step * t


def box_edges(profile: np.ndarray, first: int, last: int) -> tuple[float, float]:
    """The two edges (pixel-edge coordinates: pixel i spans [i, i + 1]) of a box whose outermost
    rows (or columns) are ``first`` and ``last`` of ``profile`` (the strongest ink of each), each
    at the half-level crossing of ``_edge``."""
    return _edge(profile, first, 1), _edge(profile, last, -1)


def fit_box(ink: np.ndarray, box: int, level: float, margin: int) -> np.ndarray:
    """The ink resampled so that the bounding box of its pixels above ``level`` has its longest
    side ``box`` pixels, with ``margin`` output pixels of what lies around that box (fainter ink)
    on every side. Returns (h, w), at most (box + 2 margin) on its longest side.

    The output grid is anchored at the strong ink's box, not at the faintest pixel: two pictures
    of one drawing that differ only in faint pixels (a noise-free render and a photo of it) come
    out on the same grid, at the same scale. In a picture at least ``SUBPIXEL`` times the box, the
    box's edges are placed to a fraction of a pixel (``box_edges``): a whole pixel there moves the
    grid by a twentieth of an output pixel, enough to tip the centre of mass across a rounding
    edge. Area averaging when shrinking, Lanczos when enlarging.
    """
    rows, cols = np.nonzero(ink > level)
    if len(rows) == 0:
        rows, cols = np.nonzero(ink > 0)
    r0, c0 = rows.min(), cols.min()
    h, w = rows.max() - r0 + 1, cols.max() - c0 + 1
    if max(h, w) >= SUBPIXEL * box:  # a large picture: its box's edges to a fraction of a pixel
        top, bottom = box_edges(ink.max(axis=1), r0, rows.max())
        left, right = box_edges(ink.max(axis=0), c0, cols.max())
        r0, c0, h, w = top, left, bottom - top, right - left
    scale = box / max(h, w)
    out_h, out_w = max(1, round(h * scale)) + 2 * margin, max(1, round(w * scale)) + 2 * margin
    # Zeros around the picture, enough for the margin and for rounding the output size up.
    pad = int(np.ceil((margin + 1) / scale)) + 2
    padded = np.pad(ink, pad).astype(np.float32)
    x0, y0 = c0 + pad - margin / scale, r0 + pad - margin / scale
    method = Image.BOX if scale <= 1 else Image.LANCZOS
    out = Image.fromarray(padded, mode="F").resize(
        (out_w, out_h), method, box=(x0, y0, x0 + out_w / scale, y0 + out_h / scale)
    )
    out = np.clip(np.asarray(out, dtype=np.float64), 0.0, 1.0)
    rows, cols = np.nonzero(out > 0)  # the margin's empty rows and columns carry nothing
    if len(rows) == 0:
        return out
    return out[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


TIE = 0.002  # shifts within this of half a pixel count as half a pixel (see _round_shift)


def _round_shift(shift: float) -> int:
    """The whole-pixel move nearest to ``shift``, half a pixel rounding up. A symmetric drawing
    (a 0, an 8) has its centre of mass half-way between pixels, to a few thousandths of a pixel
    that differ from one picture of it to another (a render, a photo); those count as exactly
    half-way, so that every picture of the drawing moves the same way. (MNIST's own digits drawn
    on paper and preprocessed: 3 of the first 1,000 test images move a pixel from where MNIST put
    them because of this, against 1 in 100 of drawings lit differently moving between pictures
    without it.)"""
    frac = shift - np.floor(shift)
    if abs(frac - 0.5) < TIE:
        return int(np.floor(shift)) + 1
    return int(np.floor(shift + 0.5))


FAINT = 0.3  # a margin row or column no stronger than this holds no stroke (fit_box's level: 0.25)


def _trim_outside(small: np.ndarray, top: int, left: int, shape: tuple[int, int]):
    """``small`` placed at (``top``, ``left``) in a field of ``shape``, without its outer rows
    and columns that fall outside the field and hold only faint ink (at most ``FAINT``).
    Returns (small, top, left)."""
    height, width = shape
    while small.shape[0] > 1 and top < 0 and small[0].max() <= FAINT:
        small, top = small[1:], top + 1
    while small.shape[0] > 1 and top + small.shape[0] > height and small[-1].max() <= FAINT:
        small = small[:-1]
    while small.shape[1] > 1 and left < 0 and small[:, 0].max() <= FAINT:
        small, left = small[:, 1:], left + 1
    while small.shape[1] > 1 and left + small.shape[1] > width and small[:, -1].max() <= FAINT:
        small = small[:, :-1]
    return small, top, left


def place(small: np.ndarray, shape: tuple[int, int], convention: Convention) -> np.ndarray:
    """Put ``small`` into a black field of ``shape``: by its centre of mass (whole pixels, as
    MNIST) or by its box's centre."""
    height, width = shape
    h, w = small.shape
    if h > height or w > width:  # a margin of faint ink that does not fit: trim it evenly
        dh, dw = max(0, h - height), max(0, w - width)
        small = small[dh // 2 : h - (dh - dh // 2), dw // 2 : w - (dw - dw // 2)]
        h, w = small.shape
    if convention.centre_at is not None:
        ys, xs = np.indices(small.shape)
        total = small.sum()
        cy, cx = (ys * small).sum() / total, (xs * small).sum() / total
        top = _round_shift(convention.centre_at[0] - cy)
        left = _round_shift(convention.centre_at[1] - cx)
        # Faint rows and columns of the margin that land outside the field are cut off; only the
        # drawing's own ink is moved back in (a photo's faint margin, which a clean picture of
        # the same drawing lacks, must not move its strokes by a pixel).
        small, top, left = _trim_outside(small, top, left, shape)
        h, w = small.shape
        top, left = int(np.clip(top, 0, height - h)), int(np.clip(left, 0, width - w))
    else:
        top, left = (height - h + 1) // 2, (width - w + 1) // 2  # an odd margin: the extra pixel above
    field = np.zeros(shape)
    field[top : top + h, left : left + w] = small
    return field
