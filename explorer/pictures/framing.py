"""Fitting a user's ink into a dataset's frame (step 4 of ``explorer.pictures.preprocess``): the
strong ink's box scaled to the dataset's box keeping its aspect ratio (area averaging when
shrinking, Lanczos when enlarging; Pillow), then moved by whole pixels so that its centre of mass
lands where the dataset's images have theirs (MNIST's convention: LeCun et al. 1998)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from explorer.pictures.convention import Convention

# -- fitting into the frame -----------------------------------------------------------------------


def fit_box(ink: np.ndarray, box: int, level: float, margin: int) -> np.ndarray:
    """The ink resampled so that the bounding box of its pixels above ``level`` has its longest
    side ``box`` pixels, with ``margin`` output pixels of what lies around that box (fainter ink)
    on every side. Returns (h, w), at most (box + 2 margin) on its longest side.

    The output grid is anchored at the strong ink's box, not at the faintest pixel: two pictures
    of one drawing that differ only in faint pixels (a noise-free render and a photo of it) come
    out on the same grid, at the same scale. Area averaging when shrinking, Lanczos when enlarging.
    """
    rows, cols = np.nonzero(ink > level)
    if len(rows) == 0:
        rows, cols = np.nonzero(ink > 0)
    r0, c0 = rows.min(), cols.min()
    h, w = rows.max() - r0 + 1, cols.max() - c0 + 1
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


# MNIST's strokes, measured as ``stroke_width`` measures a picture's, on the 20x20 box: 1.4 px at
# the 1st percentile of 300 test images drawn 8 times larger, 1.65 at the 5th, 2.5 the median.
THIN_STROKE = 0.8  # strokes thinner than this on the box (no MNIST digit's) are thickened,
MNIST_STROKE = 1.6  # the thinnest to this width: w -> THIN + (THIN - w) (MNIST - THIN) / THIN


def thickened(ink: np.ndarray, box: int, level: float) -> np.ndarray:
    """The strokes of ``ink`` (H, W, light on dark, full strength 1) thickened where thinner than
    THIN_STROKE pixels of the ``box``-pixel box they will be fitted into (the box of the ink above
    ``level``), a line of no width to MNIST_STROKE; else
    ``ink`` as it is. A digit written with a fine pen, photographed large (a 4-16 px line on a
    1000 px sheet), came out of the box as faint grey lines a tenth to a half of a pixel wide: read
    as another digit, and called a stranger for ink "grey, like a photo". MNIST's digits were
    written with a pen whose line, size-normalised, is 1.4-4 px wide. The strokes are widened by
    the distance to them (a soft edge), keeping their own levels inside."""
    from scipy import ndimage

    rows, cols = np.nonzero(ink > level)
    if len(rows) == 0:
        return ink
    side = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    scale = box / side  # box pixels per picture pixel
    # its strokes: the ink at half of full strength and up (ink is scaled to its strokes' level:
    # ``stroke_width``'s own level, half its 99.5th percentile, fell to the paper for a 3 px line
    # on a 1000 px sheet, under 0.5% of the pixels, and measured 137 px)
    strokes = ink > 0.5
    if not strokes.any() or strokes.all():
        return ink
    width = 2.0 * float(np.percentile(ndimage.distance_transform_edt(strokes)[strokes], 95))
    if width * scale >= THIN_STROKE:
        return ink
    # continuous at THIN_STROKE (two photos of one drawing whose widths straddle it come out
    # alike); a thinner line comes out wider, up to MNIST_STROKE for a line of no width
    wanted = THIN_STROKE + (THIN_STROKE - width * scale) * (MNIST_STROKE - THIN_STROKE) / THIN_STROKE
    grow = (wanted / scale - width) / 2  # picture pixels on each side of a stroke
    distance = ndimage.distance_transform_edt(ink <= 0.5)  # 0 on the strokes
    return np.maximum(ink, np.clip(grow + 0.5 - distance, 0.0, 1.0))  # nothing added at grow 0


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
