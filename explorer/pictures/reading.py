"""Reading a user's picture safely: the accepted formats and size limits, checked before any
pixel is decoded (empty, oversized, unknown files, folders, decompression bombs), then grey levels
with the EXIF rotation and transparency resolved; and a drawing canvas's pixels as an image.
Decoding is Pillow's. Making the picture into model input is ``explorer.pictures.preprocess``'s work."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.errors import ImageError

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
UPLOAD_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]  # file extensions the uploaders accept
MAX_PIXELS = 40_000_000  # refuse larger images before decoding them (decompression bombs)
MAX_UPLOADS = 20  # images per upload on the Reconstruct page; more are listed but not processed
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # per upload; also server.maxUploadSize in .streamlit/config.toml
MAX_FILE_BYTES = 50 * 1024 * 1024  # per file read from disk (the CLI): a phone's full-size photo fits


def open_image(source: str | os.PathLike | bytes) -> Image.Image:
    """Open an image file or bytes, refusing empty, oversized and unknown files, folders, and
    images of too many pixels (decompression bombs), before any pixel is decoded.

    Raises:
        ImageError: with what was wrong and what to do.
    """
    name = "this file" if isinstance(source, bytes) else str(source)
    limit = MAX_UPLOAD_BYTES if isinstance(source, bytes) else MAX_FILE_BYTES
    if not isinstance(source, bytes):
        path = Path(source)
        if path.is_dir():
            raise ImageError(f"{name} is a folder, not an image file; give the image files in it")
        if not path.is_file():
            raise ImageError(f"{name} does not exist")
        if path.stat().st_size > limit:
            raise ImageError(
                f"{name} is {path.stat().st_size / 2**20:.1f} MB, over the limit of {limit / 2**20:.0f} MB"
            )
        source = path.read_bytes()
    if not source:
        raise ImageError(f"{name} is empty; use a PNG, JPEG, BMP, GIF or WebP image")
    if len(source) > limit:
        raise ImageError(f"{name} is {len(source) / 2**20:.1f} MB, over the limit of {limit / 2**20:.0f} MB")
    too_big = f"more pixels than the limit of {MAX_PIXELS:,} (a decompression bomb?); scale it down first"
    try:
        image = Image.open(io.BytesIO(source), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise ImageError(
            f"{name} is not an image in an accepted format ({', '.join(ACCEPTED_FORMATS)})"
        ) from None
    except Image.DecompressionBombError:
        raise ImageError(f"{name} has {too_big}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name} could not be read (truncated or damaged?): {exc}") from None
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"{name} is {image.width}x{image.height} pixels: {too_big}")
    return image


# How each mode is box-averaged: palettes and bits as colours or grey levels, transparency
# premultiplied (a transparent pixel's colour must not count), 16-bit as 32-bit integers.
_REDUCE_MODE = {"P": "RGBA", "PA": "RGBA", "1": "L", "LA": "La", "RGBA": "RGBa",
                "I;16": "I", "I;16B": "I", "I;16L": "I"}  # fmt: skip
_STRIP_BLOCKS = 16  # rows of output pixels reduced at a time (strips of a few MB)
_ORIENTATION = {  # EXIF Orientation -> the transpose that undoes it
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def decoded(image: Image.Image, side: int | None = None) -> Image.Image:
    """The first frame, EXIF rotation applied, decoded at reduced size when ``side`` is given:
    a JPEG by its decoder's DCT scaling (``Image.draft``), any picture then box-averaged by the
    largest whole factor (``Image.reduce``, strip by strip) that keeps its longest side at least
    ``side``. No copy of the full-size picture is made beyond its decoding (a 6300x6300 RGBA PNG:
    its 160 MB of pixels, then 4 MB), and no float array is made here at all."""
    image.seek(0)
    if side is None or max(image.size) < 2 * side:
        return ImageOps.exif_transpose(image)
    orientation = image.getexif().get(0x0112, 1)
    w, h = image.size
    if image.format == "JPEG":
        image.draft(image.mode, (math.ceil(w * side / max(w, h)), math.ceil(h * side / max(w, h))))
    factor = max(image.size) // side
    if factor >= 2:
        image = _reduce(image, factor)
    method = _ORIENTATION.get(orientation)
    if method:
        image = image.transpose(method)
        image.info.pop("exif", None)  # applied: a later exif_transpose must not turn it again
    return image


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """``image`` box-averaged by ``factor`` (1x1 output pixel per factor x factor block; the last
    blocks average what they hold), converted for averaging and reduced strip by strip."""
    work = _REDUCE_MODE.get(image.mode, image.mode)
    if image.mode == "P" and "transparency" not in image.info:
        work = "RGB"
    w, h = image.size
    out = Image.new(work, (math.ceil(w / factor), math.ceil(h / factor)))
    rows = factor * _STRIP_BLOCKS
    for top in range(0, h, rows):
        strip = image.crop((0, top, w, min(h, top + rows)))
        out.paste((strip if strip.mode == work else strip.convert(work)).reduce(factor), (0, top // factor))
    return out.convert({"La": "LA", "RGBa": "RGBA"}[work]) if work in ("La", "RGBa") else out


def to_grey(image: Image.Image, side: int | None = None) -> np.ndarray:
    """Grey levels (H, W) in [0, 1] of the first frame, EXIF rotation applied; decoded with its
    longest side reduced towards ``side`` when given (``decoded``).

    Transparency: where the picture has transparent parts, its opaque parts are the drawing, so
    they are laid on a ground of the opposite brightness (light strokes on transparency, as
    dark-mode drawing apps export them, go on black; dark ones on white). A picture that is
    opaque everywhere is laid on white.
    """
    image = decoded(image, side)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(image, dtype=np.float64)
        return a / (65535.0 if a.max() > 255 else 255.0)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
        alpha = rgba[..., 3]
        lum = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
        ground = 1.0
        if (alpha < 0.5).mean() > 0.01 and alpha.sum() > 0:  # a drawing on transparency
            figure = float((lum * alpha).sum() / alpha.sum())  # mean brightness of the strokes
            ground = 0.0 if figure > 0.5 else 1.0
        return alpha * lum + (1.0 - alpha) * ground
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def to_rgb(image: Image.Image, side: int | None = None) -> np.ndarray:
    """Colour levels (H, W, 3) in [0, 1] of the first frame, EXIF rotation applied, reduced
    towards ``side`` as ``to_grey`` is.

    Transparency, as ``to_grey`` lays it: the opaque parts are the drawing, laid on a ground of the
    opposite brightness, brightness being a colour's value (its largest channel): bright or
    saturated colours (the shapes' discs and squares) on black, as the shapes datasets draw them;
    dark ones (a black ring) on white. Everything went on black, and a dark drawing on
    transparency was refused as blank."""
    image = decoded(image, side)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = to_grey(image)
        return np.repeat(grey[..., None], 3, axis=2)
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
    colour, alpha = rgba[..., :3], rgba[..., 3:4]
    ground = 0.0
    if (alpha < 0.5).mean() > 0.01 and alpha.sum() > 0:  # a drawing on transparency
        value = colour.max(axis=2, keepdims=True)
        ground = 0.0 if float((value * alpha).sum() / alpha.sum()) > 0.5 else 1.0
    return colour * alpha + (1.0 - alpha) * ground


def canvas_image(rgba: np.ndarray | None) -> Image.Image | None:
    """A drawing canvas's RGBA pixels (H, W, 4), composited over black, as a greyscale image
    for ``preprocess_image``; None when nothing has been drawn (no pixel brighter than black)."""
    if rgba is None or rgba.ndim != 3 or rgba.shape[2] not in (3, 4) or rgba.size == 0:
        return None
    rgb = rgba[..., :3].astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0 if rgba.shape[2] == 4 else 1.0
    grey = (rgb * alpha) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if grey.max() < 8:  # a few stray levels are not a drawing
        return None
    return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), mode="L")
