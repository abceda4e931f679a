"""A user's picture (upload, drawing, file) made into model input the way the model's dataset
made its own images (its ``explorer.pictures.convention.Convention``; ``explorer.data.uploads``
looks up a dataset's by name).

For drawings (MNIST's "ink" convention) the steps are:

1. open safely (size, format and pixel-count limits before decoding), first frame, EXIF rotation,
   transparency resolved (ink carried by the alpha channel alone is kept, light or dark);
2. turn light-ground pictures into light ink on black, and divide out the lighting: the ground is
   estimated *locally* (a shadow or uneven light across the paper is ground, not ink);
3. keep the main drawing: connected strokes, not specks or pencil dots far from it;
4. fit it into the dataset's box keeping the aspect ratio (anti-aliased), and move it by whole
   pixels so that its centre of mass lands where the dataset's digits have theirs.

Image filtering and connected components come from ``scipy.ndimage``; decoding and resampling
from Pillow.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from explorer.errors import ImageError
from explorer.pictures.convention import Convention
from explorer.pictures.framing import fit_box, place, thickened
from explorer.pictures.ground import local_ground, plane_ground, stroke_split, stroke_width, typical_level
from explorer.pictures.photos import WORK_SIDE, photo_array, shrink
from explorer.pictures.reading import decoded, open_image, to_grey

MIN_CONTRAST = 0.1  # ink weaker than this against its ground (0..1) is not a drawing
# A drawing is sized by the box of its ink above BOX_LEVEL of full strength: on MNIST's own digits
# the longest side of that box is the same as the longest side of all their ink (checked on
# 2,000 test images for levels up to 0.3), and unlike the faintest pixels it does not move with
# the noise of a photo. Faint ink up to BOX_MARGIN pixels around the box is kept.
BOX_LEVEL = 0.25
# Noise is refused before it is prepared (it would become a blob a model may find ordinary). Its
# ``smoothness`` is 0.57-0.59; MNIST's and Fashion's 28x28 images >= 0.82; a 1-px line 0.67.
NOISE_SMOOTHNESS = 0.65
NOISE = (
    "the picture looks like noise: its neighbouring pixels agree no more than random ones would; "
    "use a drawing, or a photo of one object on a plain background"
)
SCATTERED = (
    "nothing in the picture stands out from its background: it looks like noise or scattered "
    "specks; use a picture of one object on a plain background"
)
BLANK = "the image is blank: nothing stands out from the background (an empty page, or only noise)"
BOX_MARGIN = 2


# -- finding the ink ----------------------------------------------------------------------------


def _light_ground(grey: np.ndarray) -> bool:
    """Whether the picture's ground is lighter than its ink (judged on its border)."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return float(np.median(border)) > 0.5


def noisy(grey: np.ndarray) -> bool:
    """Whether a picture's border shows noise (a photo's grain, a scan's speckle, JPEG's
    artefacts): its grey levels there vary at all about their median. A rendered drawing's do
    not."""
    edge = max(1, min(grey.shape) // 50)
    border = np.concatenate(
        [grey[:edge].ravel(), grey[-edge:].ravel(), grey[:, :edge].ravel(), grey[:, -edge:].ravel()]
    )
    return bool(np.median(np.abs(border - np.median(border))) > 0)


def _denoised(grey: np.ndarray) -> np.ndarray:
    """A 3x3 median filter for a picture whose border shows noise (``noisy``): it keeps edges,
    and steadies the strokes' profiles and so their centre of mass. A noise-free picture (a
    rendered drawing) is returned as it is."""
    from scipy import ndimage

    if not noisy(grey):
        return grey
    return ndimage.median_filter(grey, size=3, mode="reflect")


def ink_map(grey: np.ndarray, local: bool = True) -> np.ndarray:
    """Ink strength (H, W) in [0, 1], light on black, from grey levels (H, W) in [0, 1].

    Light-ground pictures are inverted; the ground (local, or a plane for objects) is divided out:
    ink = (g - ground) / (1 - ground), the flat-field correction of dark ink on paper lit
    unevenly. Then the bias of the ground estimate is taken off, and ink within three standard
    deviations of the ground's noise is dropped (both measured on the picture's border). A
    noise-free picture (a rendered drawing) keeps all its ink: its faint pixels are anti-aliasing.

    Which way round: an object is judged by its border (its ground surrounds it). A drawing is
    taken both ways, and the way in which something differs most from its local ground, in grey
    levels, wins: dark ink on paper, even where a shadow covers most of the page or a photo shows
    the table around the sheet. (Not the flat-field ratio: a white card on a table a few grey
    levels darker is a faint difference, which the division by 1 - ground, near 0 at white, would
    make as strong as ink.)
    """
    if not local:
        return _ink_against(1.0 - grey if _light_ground(grey) else grey, local=False)
    ways, strength = [], []
    for inverted in (True, False):
        ink, level, base, ground = _ink_against(1.0 - grey if inverted else grey, local=True, raw=True)
        ways.append((ink, ground))
        # A way round whose ink is nothing (the black around a filled garment, taken as ink on
        # its light paper) cannot be the drawing, however strong its contrast.
        strength.append(_contrast(level, base, inverted) if ink.max() >= MIN_CONTRAST else -1.0)
        del level, base, ground  # 16 MB at the working size: a huge upload's peak is counted
    ink, ground = ways[int(np.argmax(strength))]
    del ways
    return without_rules(without_shade(ink, photo=noisy(grey), paper=1.0 - ground))


def without_rules(ink: np.ndarray) -> np.ndarray:
    """``ink`` (H, W) without the faint rules of lined or squared paper: in a row (or column)
    where faint ink (under half the strokes' strength) covers more than 30% of the picture and
    reaches both of its outer tenths (a rule runs from edge to edge; a stroke's soft edge does
    not), the faint ink is a rule and is dropped; the strokes crossing it stay."""
    if not (ink > 0).any():
        return ink
    strength = float(np.percentile(ink[ink > 0.5 * ink.max()], 90))
    faint = (ink > 0) & (ink < 0.5 * strength)
    h, w = ink.shape
    rows = (faint.mean(1) > 0.3) & faint[:, : w // 10].any(1) & faint[:, -(w // 10) :].any(1)
    cols = (faint.mean(0) > 0.3) & faint[: h // 10].any(0) & faint[-(h // 10) :].any(0)
    return np.where((rows[:, None] | cols[None, :]) & faint, 0.0, ink)


def _ink_against(grey: np.ndarray, local: bool, raw: bool = False):
    """Ink (H, W) of a light-on-dark picture against its ground (see ``ink_map``); with ``raw``,
    (ink, level, base, ground): the denoised levels, the higher of the local ground and the
    typical level of each pixel's neighbourhood (``typical_level``; a ground estimate that sinks
    into the ink between large light areas, a card's white read as light ink on its dark digit,
    makes no strength), and the ground itself (H, W) in [0, 0.95]."""
    grey = _denoised(grey)
    ground = local_ground(grey) if local else plane_ground(grey)
    ground = np.clip(ground, 0.0, 0.95)
    base = np.maximum(ground, typical_level(grey)) if raw else None
    ink = (grey - ground) / (1.0 - ground)
    # The ground as corrected, measured on the picture's border (ground, apart from what a
    # drawing, an object or a shadow's remains cover of it): its median is the bias left by the
    # ground estimate, its spread up to the 80th percentile about one standard deviation of the
    # noise (whether or not the noise is clipped at white). Only the border pixels near the
    # ground's level count: an object that fills the frame touches the border. The bias is taken
    # off every pixel; what does not rise three standard deviations above it is as likely noise
    # or a trace of the lighting as ink, and is dropped. Stroke profiles are kept as they are, so
    # a photo's strokes match a clean render's.
    edge = max(1, min(ink.shape) // 50)
    border = np.concatenate(
        [ink[:edge].ravel(), ink[-edge:].ravel(), ink[:, :edge].ravel(), ink[:, -edge:].ravel()]
    )
    level = min(float(np.median(border)), 0.95)
    near = border[np.abs(border - level) < 0.15]
    sigma = max(0.0, float(np.percentile(near, 80)) - level) / 0.84 if len(near) else 0.0
    ink = np.clip(np.where(ink > level + 3.0 * sigma, (ink - level) / (1.0 - level), 0.0), 0.0, 1.0)
    return (ink, grey, base, ground) if raw else ink


def _contrast(level: np.ndarray, base: np.ndarray, inverted: bool) -> float:
    """How strongly a picture's ink stands out: the 99.9th percentile over its pixels of the log
    ratio of the lighter to the darker of (the pixel, its ground ``base``), in the picture's own
    grey levels (``inverted``: ``level`` and ``base`` are 1 - those), where the pixel is ink.
    A ratio, as the eye and the light see it: a shadow or a patch of light changes the paper's
    level by a factor of at most about three, ink by ten or more; a few grey levels' difference
    between a white card and a table is nothing. (Levels are offset by 0.05 so that noise in
    black is no contrast.)"""
    above = level > base
    top = 0.001 * level.size  # how many pixels lie above the 99.9th percentile
    if above.sum() <= top:
        return 0.0
    level, base = level[above], base[above]  # copies, worked on in place
    light, dark = (
        (np.subtract(1.0, base, out=base), np.subtract(1.0, level, out=level)) if inverted else (level, base)
    )
    light += 0.05
    dark += 0.05
    ratio = np.log(np.divide(light, dark, out=light), out=light)  # > 0; every other pixel's is 0
    return float(np.percentile(ratio, 100.0 * (1.0 - top / len(ratio))))


def without_shade(ink: np.ndarray, photo: bool = True, paper: np.ndarray | None = None) -> np.ndarray:
    """``ink`` (H, W) with wide areas of moderate darkness removed: a shadow narrower than both
    of the ground estimate's windows (a pole's thin shadow across the page) is left in the ink,
    but it is much weaker than the strokes (a shadow darkens paper by half, ink by nine tenths)
    and wider than their soft edges.

    In a photo (``photo``: its border shows noise) under a shadow (``shadowed``, judged on
    ``paper``, the light (H, W) left on the paper by the ground estimate, when given), areas
    between 5% and 80% of the strokes' cores that are half a stroke wide or more are shade. Else
    (a render, or a photo of evenly lit paper, whose drawing may have whole strokes of grey:
    MNIST's digits drawn large on a card) only areas under 60% of the strokes, one and a half
    stroke widths across, are.
    """
    if not (ink > 0).any():
        return ink
    if photo:
        wide = _shade(ink, cores=True)
        if paper is None or shadowed(ink, paper, wide):
            return np.where(wide, 0.0, ink)
    return np.where(_shade(ink, cores=False), 0.0, ink)


def _shade(ink: np.ndarray, cores: bool) -> np.ndarray:
    """The mask (H, W) of ``without_shade``'s areas: with ``cores`` (a shadowed photo) those
    between 5% and 80% of the strokes' cores (``stroke_split``), at least half a stroke wide in
    every direction; else those between 5% and 60% of the strokes, one and a half wide."""
    from scipy import ndimage

    width = stroke_width(ink, cores=cores)
    if cores:
        strength = float(np.median(ink[ink > stroke_split(ink)]))
        shade = (ink > 0.05 * strength) & (ink < 0.8 * strength)
        size = int(np.ceil(0.5 * width)) + 2
    else:
        strength = float(np.percentile(ink[ink > 0.5 * ink.max()], 90))
        shade = (ink > 0.05 * strength) & (ink < 0.6 * strength)
        size = int(np.ceil(1.5 * width)) + 1
    # A binary opening by a square, as a minimum then a maximum filter (separable: fast).
    return ndimage.maximum_filter(ndimage.minimum_filter(shade, size=size), size=size)


SHADOWED = 0.8  # paper under the drawing darker than this share of its lightest: a shadow


def shadowed(ink: np.ndarray, paper: np.ndarray, shade: np.ndarray) -> bool:
    """Whether a shadow falls on the drawing of ``ink`` (H, W): the light left on the ``paper``
    (H, W, in [0, 1]) within the box of the strokes' cores drops below ``SHADOWED`` of its 99th
    percentile there (a shadow the ground estimate followed), or an area of ``shade`` (H, W bool)
    reaches the picture's edge (a shadow too narrow for it, cast from outside the sheet)."""
    if shade[0].any() or shade[-1].any() or shade[:, 0].any() or shade[:, -1].any():
        return True
    rows, cols = np.nonzero(ink > stroke_split(ink))
    if not len(rows):
        return True
    inside = paper[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return bool(inside.min() < SHADOWED * np.percentile(inside, 99))


def smoothness(grey: np.ndarray) -> float:
    """How much of a picture's variation survives a blur of one pixel: the correlation (in
    [-1, 1]) between the grey levels (H, W) and their Gaussian blur with sigma 1. Strokes and
    edges spanning pixels score near 1, pixel noise near 0.57; a flat picture 1."""
    from scipy import ndimage

    if grey.std() < 1e-6:
        return 1.0
    blurred = ndimage.gaussian_filter(grey, sigma=1.0)
    return float(np.corrcoef(grey.ravel(), blurred.ravel())[0, 1])


def _whole_object(ink: np.ndarray) -> np.ndarray:
    """``main_drawing`` of a photographed object: every blob of 2% of the ink or more, and the
    small blobs within 5% of its size around its box. Raises ImageError when no blob is that big
    (specks scattered over the picture, no object)."""
    from scipy import ndimage

    blobs, n = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    mass = ndimage.sum(ink, blobs, index=np.arange(1, n + 1))
    big = 1 + np.flatnonzero(mass >= 0.02 * mass.sum())
    if not len(big):  # thousands of specks and no object: noise, or a texture
        raise ImageError(SCATTERED)
    rows, cols = np.nonzero(np.isin(blobs, big))
    reach = int(0.05 * max(rows.max() - rows.min(), cols.max() - cols.min())) + 1
    near = np.zeros_like(ink, dtype=bool)
    near[
        max(0, rows.min() - reach) : rows.max() + reach + 1,
        max(0, cols.min() - reach) : cols.max() + reach + 1,
    ] = True
    return ink * np.isin(blobs, np.unique(blobs[near & (blobs > 0)]))


def main_drawing(ink: np.ndarray, whole_object: bool = False) -> np.ndarray:
    """The ink of the main drawing (H, W): strokes connected to the largest one, or large enough
    to be part of it, are kept; specks and dots away from it are dropped.

    Strong ink (over a third of the peak) is split into connected parts (8-neighbours, after
    closing gaps of 1.5% of the picture); the part with the most ink leads. Another part is kept
    when it does not touch the picture's edge (where shadows and page edges lie) and holds at
    least 1% of the leader's ink within a quarter of the leader's size from it, or at least a
    quarter of it farther away. Faint ink (anti-aliasing) stays where it touches a kept stroke
    and lies within a stroke's width of it.

    With ``whole_object`` (a photographed object, whose parts can be faint or lie apart), the
    object is every blob of ink holding 2% of it or more; smaller blobs stay within 5% of the
    object's size around its box (its own faint edges), and go farther out (specks).
    """
    from scipy import ndimage

    if whole_object:
        return _whole_object(ink)
    peak = float(ink.max())
    strong = ink > peak / 3
    reach = max(1, int(round(0.015 * max(ink.shape))))
    joined = ndimage.binary_dilation(strong, iterations=reach)
    labels, n = ndimage.label(joined, structure=np.ones((3, 3)))
    if n <= 1:
        keep = joined
    else:
        mass = ndimage.sum(ink * strong, labels, index=np.arange(1, n + 1))
        boxes = ndimage.find_objects(labels)
        lead = int(np.argmax(mass))
        h, w = ink.shape
        (r0, r1), (c0, c1) = ((s.start, s.stop) for s in boxes[lead])
        size = max(r1 - r0, c1 - c0)
        kept = []
        for i, (m, box) in enumerate(zip(mass, boxes)):
            gap_r = max(0, r0 - box[0].stop, box[0].start - r1)
            gap_c = max(0, c0 - box[1].stop, box[1].start - c1)
            near = max(gap_r, gap_c) <= 0.25 * size
            edge = box[0].start == 0 or box[1].start == 0 or box[0].stop == h or box[1].stop == w
            if i == lead or (not edge and m >= (0.01 if near else 0.25) * mass[lead]):
                kept.append(i + 1)
        keep = np.isin(labels, kept)
    # Hysteresis, as in edge detection: faint ink stays where it touches a kept stroke, and lies
    # within a stroke's width of one (a stroke's soft edge, not the faint rule of lined paper).
    faint, _ = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    touching = np.unique(faint[keep & strong])
    width = max(1, int(np.ceil(stroke_width(ink, cores=False))))
    close = ndimage.maximum_filter(keep & strong, size=2 * width + 1)
    return ink * (np.isin(faint, touching[touching > 0]) & close)


def prepare_picture(
    source: str | os.PathLike | bytes | Image.Image,
    convention: Convention,
    image_shape: tuple[int, int, int],
) -> torch.Tensor:
    """A picture (a file path, the file's bytes, or an opened PIL image) made the way
    ``convention`` says, as an image of ``image_shape`` (C, H, W), float32 in [0, 1]. MNIST's:
    light ink on black, the main drawing fitted into 20x20 and placed in 28x28 with its centre of
    mass at (14, 14); Fashion-MNIST's: the item on black, its longest side 28, centred.

    Raises:
        ImageError: unreadable, unsafe or blank pictures, with what to do.
    """
    _, height, width = image_shape
    image = source if isinstance(source, Image.Image) else open_image(source)
    try:
        work = decoded(image, WORK_SIDE)  # at reduced size: no float array of a huge picture
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the image could not be decoded (truncated or damaged?): {exc}") from None
    if image is not source and work is not image:
        image.close()  # its full-size pixels (160 MB for 40 M RGBA) go before any array of floats
    if convention.kind == "photo":
        picture = photo_array(work, image_shape, convention.fit)
        if np.ptp(picture, axis=(1, 2)).max() < MIN_CONTRAST:  # one colour all over
            raise ImageError(BLANK)
        return torch.from_numpy(picture.astype(np.float32))
    try:
        grey = to_grey(work)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the image could not be decoded (truncated or damaged?): {exc}") from None
    grey = shrink(grey, WORK_SIDE)
    if smoothness(grey) < NOISE_SMOOTHNESS:
        raise ImageError(NOISE)
    ink = ink_map(grey, local=convention.kind == "ink")
    if ink.max() < MIN_CONTRAST:
        raise ImageError(BLANK)
    ink = main_drawing(ink, whole_object=convention.kind == "frame")  # specks are not part of it
    if convention.kind == "ink":
        # Strokes as MNIST has them: the drawing's own strong ink at full strength.
        ink = np.clip(ink / np.percentile(ink[ink > ink.max() / 3], 90), 0.0, 1.0)
    if convention.kind == "ink":  # the box of the strokes at a quarter of full strength and up
        ink = thickened(ink, convention.box, BOX_LEVEL)
        small = fit_box(ink, convention.box, BOX_LEVEL, BOX_MARGIN)
    else:  # an object's box spans all of it: a white item's faint areas are part of it
        small = fit_box(ink, convention.box, 0.0, 0)
    if small.sum() <= 0:
        raise ImageError(BLANK)
    return torch.from_numpy(place(small, (height, width), convention).astype(np.float32))[None]
