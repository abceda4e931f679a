"""Pictures in and out: MNIST-style preprocessing of user images, image grids, PNG files, and the
latent grid of the paper's Figure 4."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.errors import ImageError

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
MAX_PIXELS = 40_000_000  # refuse larger images before decoding them (decompression bombs)
MAX_UPLOADS = 20  # images per upload on the Reconstruct page; more are listed but not processed
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # per file; also server.maxUploadSize in .streamlit/config.toml


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) or (C, H, W) floats in [0, 1] -> uint8 (B, H, W, C) or (H, W, C), C squeezed
    when 1."""
    a = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    a = np.moveaxis(a, -3, -1)
    return a[..., 0] if a.shape[-1] == 1 else a


def make_grid(images: torch.Tensor, ncol: int, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile (B, C, H, W) images in [0, 1] into one uint8 picture, ``ncol`` per row."""
    tiles = to_uint8(images)  # (B, H, W[, C])
    b, h, w = tiles.shape[:3]
    rest = tiles.shape[3:]
    nrow = -(-b // ncol)
    if b < nrow * ncol:  # blank tiles fill the last row
        tiles = np.concatenate([tiles, np.full((nrow * ncol - b, h, w, *rest), pad_value, np.uint8)])
    # Each tile gets its pad above and to the left; one more strip closes the bottom and right.
    framed = np.pad(tiles, [(0, 0), (pad, 0), (pad, 0)] + [(0, 0)] * len(rest), constant_values=pad_value)
    rows = framed.reshape(nrow, ncol, h + pad, w + pad, *rest).swapaxes(1, 2)
    body = rows.reshape(nrow * (h + pad), ncol * (w + pad), *rest)
    return np.pad(body, [(0, pad), (0, pad)] + [(0, 0)] * len(rest), constant_values=pad_value)


def upscale(picture: np.ndarray, scale: int) -> np.ndarray:
    """Enlarge a picture by an integer factor with nearest neighbour (crisp pixels)."""
    return picture if scale <= 1 else picture.repeat(scale, axis=0).repeat(scale, axis=1)


def png_bytes(picture: np.ndarray, scale: int = 1, compress_level: int = 1) -> bytes:
    """PNG of a uint8 picture, upscaled by ``scale`` with nearest neighbour. The app makes one per
    interaction, so zlib's fastest level is the default: half the time of PIL's default (6) for
    a 20 x 20 manifold grid, for a file about 10% larger."""
    image = Image.fromarray(upscale(picture, scale))
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def save_png(picture: np.ndarray, path: str | os.PathLike, scale: int = 1) -> Path:
    """Write a PNG atomically (temporary file + rename); the folder must exist."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ImageError(f"cannot write {path}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(png_bytes(picture, scale, compress_level=6))  # a file to keep: smaller
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ImageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def latent_grid(n: int, lo: float = 0.05, hi: float = 0.95, latent_dim: int = 2) -> torch.Tensor:
    """The paper's Figure 4 grid: n x n points, linearly spaced in [lo, hi]^2 on the unit square,
    mapped through the inverse Gaussian CDF. Returns z (n*n, latent_dim), row-major with z_2
    decreasing down the rows (so the picture reads like a plot); other dimensions are 0."""
    if not 0 < lo < hi < 1:
        raise ValueError(f"the grid range must satisfy 0 < lo < hi < 1, got ({lo}, {hi})")
    q = torch.special.ndtri(torch.linspace(lo, hi, n, dtype=torch.float64)).float()
    z1, z2 = torch.meshgrid(q, q.flip(0), indexing="xy")  # (n, n): columns vary z1, rows z2
    z = torch.zeros(n * n, latent_dim)
    z[:, 0] = z1.reshape(-1)
    if latent_dim > 1:
        z[:, 1] = z2.reshape(-1)
    return z


# ----------------------------------------------------------------------------------------------
# User images -> MNIST-style input


def open_image(source: str | os.PathLike | bytes) -> Image.Image:
    """Open an image file or bytes, refusing empty, oversized and unknown files, and images of
    too many pixels (decompression bombs), before any pixel is decoded."""
    name = "the image" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{name} does not exist")
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise ImageError(
                f"{name} is {path.stat().st_size / 2**20:.1f} MB, over the limit of "
                f"{MAX_UPLOAD_BYTES / 2**20:.0f} MB"
            )
        source = path.read_bytes()
    if not source:
        raise ImageError(f"{name} is empty; use a PNG, JPEG, BMP, GIF or WebP image")
    if len(source) > MAX_UPLOAD_BYTES:
        raise ImageError(
            f"{name} is {len(source) / 2**20:.1f} MB, over the limit of {MAX_UPLOAD_BYTES / 2**20:.0f} MB"
        )
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


def _to_grey(image: Image.Image) -> np.ndarray:
    """First frame, EXIF rotation applied, transparency flattened onto white; grey float [0, 1]."""
    image.seek(0)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(image, dtype=np.float64)
        return a / (65535.0 if a.max() > 255 else 255.0)
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def preprocess_image(source: str | os.PathLike | bytes | Image.Image) -> torch.Tensor:
    """An image as MNIST shows digits: (1, 28, 28) float in [0, 1], light ink on black.

    Greyscale; inverted when the background (the border) is light; cropped to the ink; scaled to
    fit 20x20 keeping the aspect ratio; placed in 28x28 with its centre of mass at the centre.
    """
    image = source if isinstance(source, Image.Image) else open_image(source)
    try:
        grey = _to_grey(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the image could not be decoded (truncated or damaged?): {exc}") from None
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on light paper: flip to MNIST's light ink on black
        grey, background = 1.0 - grey, 1.0 - background
    # Subtract the background level so that paper texture or a grey backdrop is not taken as ink.
    grey = np.clip((grey - background) / max(1e-6, 1.0 - background), 0.0, 1.0)
    ink = grey > 0.2 * grey.max() if grey.max() > 0 else np.zeros_like(grey, dtype=bool)
    if grey.max() < 0.1 or not ink.any():
        raise ImageError("the image is blank: nothing stands out from the background")
    rows, cols = np.nonzero(ink)
    crop = grey[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = (
        np.asarray(
            Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.LANCZOS), dtype=np.float64
        )
        / 255.0
    )
    canvas = np.zeros((28, 28))
    top, left = (28 - small.shape[0]) // 2, (28 - small.shape[1]) // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    total = canvas.sum()
    if total > 0:  # shift the centre of mass to (13.5, 13.5), as MNIST was made
        ys, xs = np.indices(canvas.shape)
        dy = int(round(13.5 - (ys * canvas).sum() / total))
        dx = int(round(13.5 - (xs * canvas).sum() / total))
        dy = int(np.clip(dy, -top, 28 - top - small.shape[0]))
        dx = int(np.clip(dx, -left, 28 - left - small.shape[1]))
        canvas = np.roll(canvas, (dy, dx), axis=(0, 1))
    return torch.from_numpy(canvas.astype(np.float32)).unsqueeze(0)


def _rgb(colour: str) -> tuple[int, int, int]:
    """'#1f77b4' or 'rgb(31,119,180)' -> (31, 119, 180)."""
    if colour.startswith("#"):
        return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return tuple(int(v) for v in colour[colour.index("(") + 1 : -1].split(",")[:3])


class ScatterPicture:
    """A small static scatter of 2-D points coloured by label, drawn once; ``with_star`` adds a
    star at one point. Cheap to redraw on every slider move (a PNG, no chart to re-render)."""

    def __init__(
        self,
        points: torch.Tensor,
        labels: torch.Tensor,
        colours: list[str],
        size: int = 320,
        lim: float = 4.0,
    ) -> None:
        from PIL import ImageDraw

        self.size, self.lim = size, lim
        self.base = Image.new("RGB", (size, size), (255, 255, 255))
        draw = ImageDraw.Draw(self.base)
        mid = size // 2
        draw.line([(0, mid), (size, mid)], fill=(220, 220, 220))
        draw.line([(mid, 0), (mid, size)], fill=(220, 220, 220))
        for (x, y), k in zip(self.to_pixels(points).tolist(), labels.tolist()):
            draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=_rgb(colours[int(k) % len(colours)]))

    def to_pixels(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 2) latent coordinates in [-lim, lim]^2 -> (N, 2) pixel positions (y down)."""
        scale = self.size / (2 * self.lim)
        px = (points[:, 0] + self.lim) * scale
        py = (self.lim - points[:, 1]) * scale
        return torch.stack([px, py], 1)

    def with_star(self, point: tuple[float, float]) -> np.ndarray:
        """The scatter with a black star at ``point`` (clamped to the frame): uint8 (H, W, 3)."""
        import math

        from PIL import ImageDraw

        image = self.base.copy()
        x, y = self.to_pixels(torch.tensor([point], dtype=torch.float32)).clamp(6, self.size - 6)[0].tolist()
        star = [
            (x + r * math.sin(a), y - r * math.cos(a))
            for i in range(10)
            for a, r in [(i * math.pi / 5, 11 if i % 2 == 0 else 4.5)]
        ]
        ImageDraw.Draw(image).polygon(star, fill=(0, 0, 0), outline=(255, 255, 255))
        return np.asarray(image)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 16) -> np.ndarray:
    """Two uint8 pictures (H, W) or (H, W, 3) on one white RGB canvas, vertically centred."""
    left, right = (np.repeat(a[..., None], 3, 2) if a.ndim == 2 else a for a in (left, right))
    height = max(left.shape[0], right.shape[0])
    canvas = np.full((height, left.shape[1] + gap + right.shape[1], 3), 255, dtype=np.uint8)
    for x0, a in ((0, left), (left.shape[1] + gap, right)):
        y0 = (height - a.shape[0]) // 2
        canvas[y0 : y0 + a.shape[0], x0 : x0 + a.shape[1]] = a
    return canvas


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
