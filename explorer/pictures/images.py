"""Pictures out: image grids, PNG files, looping GIFs, the latent grid of the paper's Figure 4,
small scatter pictures. (Pictures in, a user's images made into model input, are in
``explorer.pictures.preprocess``.)"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from explorer.errors import ImageError


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

        self.size, self.lim, self.labels = size, lim, labels
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

    def with_star(self, point: tuple[float, float], radius: float = 11.0) -> np.ndarray:
        """The scatter with a black star of ``radius`` pixels at ``point`` (clamped to the
        frame): uint8 (H, W, 3)."""
        import math

        from PIL import ImageDraw

        image = self.base.copy()
        edge = radius / 2
        x, y = (
            self.to_pixels(torch.tensor([point], dtype=torch.float32))
            .clamp(edge, self.size - edge)[0]
            .tolist()
        )
        star = [
            (x + r * math.sin(a), y - r * math.cos(a))
            for i in range(10)
            for a, r in [(i * math.pi / 5, radius if i % 2 == 0 else 0.41 * radius)]
        ]
        ImageDraw.Draw(image).polygon(
            star, fill=(0, 0, 0), outline=(255, 255, 255), width=max(1, round(radius / 8))
        )
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


def gif_bytes(frames: list[np.ndarray], frame_ms: int = 120, bounce: bool = True) -> bytes:
    """An endlessly looping animated GIF of uint8 frames (H, W) or (H, W, 3); ``bounce`` plays
    the frames forwards then backwards so that the loop has no jump."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    seq = list(frames) + (list(frames[-2:0:-1]) if bounce else [])
    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE) for f in seq]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return buf.getvalue()
