"""Resampling pictures, and the "photo" convention: a picture kept as it is (colour or grey),
centre-cropped or padded to the dataset's shape and resized. Shared by the preprocessing of
uploads (``explorer.pictures.preprocess``) and the import of image folders (``explorer.data.folders``)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from explorer.errors import ImageError
from explorer.pictures.reading import to_grey, to_rgb

WORK_SIDE = 1024  # a picture is analysed at most this large (a phone photo: about a tenth of its pixels)


def shrink(grey: np.ndarray, side: int) -> np.ndarray:
    """Area-averaged copy whose longest side is at most ``side`` (unchanged if already smaller)."""
    h, w = grey.shape
    if max(h, w) <= side:
        return grey
    s = side / max(h, w)
    small = Image.fromarray(grey.astype(np.float32), mode="F").resize(
        (max(1, round(w * s)), max(1, round(h * s))), Image.BOX
    )
    return np.asarray(small, dtype=np.float64)


def resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased resize of a float picture to (width, height): area averaging when shrinking,
    Lanczos when enlarging."""
    w, h = size
    method = Image.BOX if w <= a.shape[1] and h <= a.shape[0] else Image.LANCZOS
    out = Image.fromarray(a.astype(np.float32), mode="F").resize(size, method)
    return np.clip(np.asarray(out, dtype=np.float64), 0.0, 1.0)


def fit_photo(picture: np.ndarray, shape: tuple[int, int], fit: str = "crop") -> np.ndarray:
    """The "photo" convention: (h, w) or (h, w, C) levels fitted to ``shape`` (height, width) by
    ``fit``: "crop" centre-crops to the field's aspect ratio, then resizes; "pad" resizes to fit
    inside the field, then centres it on black. Returns (height, width[, C])."""
    height, width = shape
    h, w = picture.shape[:2]
    if fit == "pad":
        scale = min(height / h, width / w)
        inner = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = _resize_levels(picture, inner)
        out = np.zeros((height, width, *picture.shape[2:]))
        top, left = (height - inner[1]) // 2, (width - inner[0]) // 2
        out[top : top + inner[1], left : left + inner[0]] = small
        return out
    if h * width > w * height:  # too tall
        ch = max(1, round(w * height / width))
        picture = picture[(h - ch) // 2 : (h - ch) // 2 + ch]
    else:
        cw = max(1, round(h * width / height))
        picture = picture[:, (w - cw) // 2 : (w - cw) // 2 + cw]
    return _resize_levels(picture, (width, height))


def _resize_levels(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``resize`` of a grey (h, w) or colour (h, w, C) picture, channel by channel."""
    if picture.ndim == 2:
        return resize(picture, size)
    return np.stack([resize(picture[..., c], size) for c in range(picture.shape[2])], axis=2)


def photo_array(image: Image.Image, image_shape: tuple[int, int, int], fit: str = "crop") -> np.ndarray:
    """An opened picture as one image of ``image_shape`` (C, H, W) by the "photo" convention:
    (C, H, W) float in [0, 1], colour kept when C = 3, greyscale when C = 1.

    Raises:
        ImageError: the picture cannot be decoded.
    """
    channels, height, width = image_shape
    try:
        levels = to_rgb(image, WORK_SIDE) if channels == 3 else to_grey(image, WORK_SIDE)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the image could not be decoded (truncated or damaged?): {exc}") from None
    if levels.ndim == 2:
        levels = shrink(levels, WORK_SIDE)
    else:
        levels = np.stack([shrink(levels[..., c], WORK_SIDE) for c in range(3)], axis=2)
    fitted = fit_photo(levels, (height, width), fit)
    return fitted[None] if fitted.ndim == 2 else fitted.transpose(2, 0, 1)


GROUND_FRAME = 2  # px: a picture's ground is read on its outer frame this wide
GROUND_SLACK = 0.15  # brightness (0-1) beyond the test images' range before a ground is called unlike theirs


def ground_levels(images: np.ndarray) -> np.ndarray:
    """The brightness of each picture's ground: the mean over its channels of its outer frame,
    ``GROUND_FRAME`` pixels wide (images (N, C, H, W) in [0, 1] -> (N,) in [0, 1])."""
    images = np.asarray(images, dtype=np.float32)
    frame = np.ones(images.shape[-2:], dtype=bool)
    frame[GROUND_FRAME:-GROUND_FRAME, GROUND_FRAME:-GROUND_FRAME] = False
    return images[..., frame].mean(axis=(-2, -1))


def ground_note(picture: np.ndarray, test_levels: np.ndarray, dataset: str) -> str | None:
    """Why a picture (C, H, W) in [0, 1], prepared as a "photo" dataset's images, will come back
    unlike itself when its ground is far lighter or darker than the test images' (``test_levels``,
    ``ground_levels`` of them): a pen drawing on white given to a model of shapes on black. None
    where its ground lies within ``GROUND_SLACK`` of the test images' 1st to 99th percentiles (of
    fewer than 100 test images, their whole range)."""
    level = float(ground_levels(picture[None])[0])
    count = len(test_levels)
    few = count < 100  # percentiles of a few images mean little: their whole range, said as such
    low, high = (float(v) for v in np.percentile(test_levels, [0, 100] if few else [1, 99]))
    if low - GROUND_SLACK <= level <= high + GROUND_SLACK:
        return None
    lighter = level > high
    spread = f"at {low:.0%}" if f"{low:.0%}" == f"{high:.0%}" else f"at {low:.0%} to {high:.0%}"
    theirs = (
        f"the one test image's {spread}" if count == 1
        else f"the test images' {spread} (all {count} of them)" if few
        else f"the test images' {spread} (98 in 100 of them)"
    )  # fmt: skip
    return (
        f"This picture's ground is {'lighter' if lighter else 'darker'} than that of the {dataset} "
        f"images: its edges are at {level:.0%} brightness, {theirs}. "
        "The model draws the ground it has learnt, so the "
        "reconstruction will differ most there, and its ELBO and place on the map say more about "
        "the ground than the subject. "
        + (
            "A dark drawing on white paper reads better inverted (light on black)."
            if lighter
            else "A picture on a ground like the training images' reads better."
        )
    )
