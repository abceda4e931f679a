"""Synthetic outliers, the "outlier exposure" half of the stranger score (Hendrycks et al. 2019,
"Deep Anomaly Detection with Outlier Exposure"; ``explorer.explore.strangers``): non-digit marks
drawn as a person would draw them (letters, signs, shapes, scribbles, silhouettes) and noise,
uploaded-size or image-size, prepared the way the dataset made its images. No image of another
dataset is used. ``bench/ood.py`` and the tests use the same probes to measure the detector."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

OUTLIER_MARKS, OUTLIER_NOISE, OUTLIER_SEED = 300, 100, 11  # the synthetic outliers it is shown


def outlier_images(
    dataset: str, marks: int = OUTLIER_MARKS, noise: int = OUTLIER_NOISE, seed: int = OUTLIER_SEED
) -> torch.Tensor:
    """Synthetic outliers for ``dataset`` (marks + noise, C, H, W): non-digit marks drawn at
    140 pixels and preprocessed the way the dataset made its images (those that preprocessing
    refuses, as at 4x4 pixels where a thin mark vanishes, are left out), then noise. Seeded."""
    from explorer.data.specs import spec
    from explorer.data.uploads import preprocess_image
    from explorer.errors import ImageError

    shape = spec(dataset).image_shape
    drawn = [torch.zeros((0, *shape))]
    for _, image in synthetic_marks(marks, seed, size=140):
        try:
            drawn.append(preprocess_image(image, dataset)[None])
        except ImageError:
            continue
    prepared = noise_pictures(noise, seed, dataset)
    return torch.cat([*drawn, noise_images(noise, seed, shape), prepared])


def noise_pictures(n: int, seed: int, dataset: str) -> torch.Tensor:
    """Up to ``n`` pictures of noise as a user would upload them (80 to 240 pixels a side:
    uniform, Gaussian, salt and pepper; grey or colour as the dataset is), prepared the way
    ``dataset`` made its images. Pictures that preprocessing refuses (as noise) are left out."""
    from explorer.data.specs import spec
    from explorer.data.uploads import preprocess_image
    from explorer.errors import ImageError

    rng = np.random.default_rng(seed + 1)
    channels = spec(dataset).image_shape[0]
    out = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(80, 241, 2))
        shape = (h, w) if channels == 1 else (h, w, 3)
        if i % 3 == 0:
            levels = rng.uniform(0, 1, shape)
        elif i % 3 == 1:
            levels = np.clip(rng.normal(rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3), shape), 0, 1)
        else:
            levels = (rng.uniform(0, 1, shape) < rng.uniform(0.05, 0.5)).astype(float)
        try:
            out.append(preprocess_image(Image.fromarray((levels * 255).astype(np.uint8)), dataset))
        except ImageError:
            continue
    return torch.stack(out) if out else torch.zeros((0, *spec(dataset).image_shape))


# -- probes for measuring the detector (bench/ood.py, tests) --------------------------------------

# Glyphs that no reader takes for a digit; left out: those that look like one (O, o, I, l, S, s,
# Z, z, B, b, g, q, G, and the strokes L, T, J, f, r, y, !, ? that a digit model reads as 1, 7, 9).
MARK_GLYPHS = "AEFHKMNPRWXYaehkmnpwx%@*&#"
MARK_KINDS = ("letter", "plus", "cross", "square", "triangle", "star", "lines", "scribble", "silhouette")


def synthetic_marks(n: int, seed: int = 0, size: int = 280) -> list[tuple[str, Image.Image]]:
    """``n`` pictures of non-digit marks (letters, plus and cross signs, squares, triangles,
    stars, parallel lines, random scribbles, filled and shaded silhouettes), each (kind, a
    greyscale ``size`` x ``size`` PIL image), dark on light or light on dark, in a random stroke
    width and slant. Seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = MARK_KINDS[i % len(MARK_KINDS)]
        dark_on_light = bool(rng.random() < 0.5)
        paper, ink = (255, 0) if dark_on_light else (0, 255)
        image = Image.new("L", (size, size), paper)
        _draw_mark(image, kind, ink, rng)
        out.append((kind, image.rotate(rng.uniform(-20, 20), fillcolor=paper)))
    return out


def _draw_mark(image: Image.Image, kind: str, ink: int, rng: np.random.Generator) -> None:
    """Draw one mark of ``kind`` (one of MARK_KINDS) in grey level ``ink`` on the square
    ``image``, in a random size and stroke width from ``rng``."""
    size = image.size[0]
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(size // 35, size // 10))
    c, r = size / 2, rng.uniform(0.2, 0.4) * size
    if kind == "letter":
        font = ImageFont.load_default(size=int(rng.uniform(0.55, 0.8) * size))
        draw.text((c, c), str(rng.choice(list(MARK_GLYPHS))), font=font, fill=ink, anchor="mm")
    elif kind == "plus":
        draw.line([(c - r, c), (c + r, c)], fill=ink, width=width)
        draw.line([(c, c - r), (c, c + r)], fill=ink, width=width)
    elif kind == "cross":
        draw.line([(c - r, c - r), (c + r, c + r)], fill=ink, width=width)
        draw.line([(c - r, c + r), (c + r, c - r)], fill=ink, width=width)
    elif kind == "square":
        fill = ink if rng.random() < 0.3 else None
        draw.rectangle(
            [c - r, c - r * rng.uniform(0.5, 1), c + r, c + r], outline=ink, width=width, fill=fill
        )
    elif kind == "triangle":
        draw.polygon([(c, c - r), (c + r, c + r), (c - r, c + r)], outline=ink, width=width)
    elif kind == "star":
        points = [
            (c + (r if k % 2 == 0 else 0.4 * r) * math.sin(k * math.pi / 5),
             c - (r if k % 2 == 0 else 0.4 * r) * math.cos(k * math.pi / 5))
            for k in range(10)
        ]  # fmt: skip
        draw.polygon(points, outline=ink, width=width)
    elif kind == "silhouette":  # a filled, shaded shape: an object rather than a stroke
        corners = int(rng.integers(4, 10))
        angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
        radii = r * rng.uniform(0.6, 1.3, corners)
        outline = [(c + q * math.cos(a), c + q * math.sin(a)) for q, a in zip(radii, angles)]
        shade = Image.new("L", image.size, 0)
        ImageDraw.Draw(shade).polygon(outline, fill=255)
        levels = rng.uniform(0.3, 1.0) * np.linspace(rng.uniform(0.4, 1), 1, size)[None, :]
        texture = np.clip(levels + rng.normal(0, 0.08, (size, size)), 0, 1)
        fill = (texture * 255).astype(np.uint8) if ink == 255 else (255 - texture * 255).astype(np.uint8)
        image.paste(Image.fromarray(fill), mask=shade)
    elif kind == "lines":
        for _ in range(int(rng.integers(2, 5))):
            y = rng.uniform(0.15, 0.85) * size
            end = y + rng.uniform(-0.15, 0.15) * size
            draw.line([(0.1 * size, y), (0.9 * size, end)], fill=ink, width=width)
    else:  # a scribble: a random walk of 6 to 15 points, joined smoothly
        p = rng.uniform(0.2, 0.8, 2) * size
        points = [tuple(p)]
        for _ in range(int(rng.integers(5, 15))):
            p = np.clip(p + rng.normal(0, 0.18 * size, 2), 0.07 * size, 0.93 * size)
            points.append(tuple(p))
        draw.line(points, fill=ink, width=width, joint="curve")


def noise_images(n: int, seed: int = 0, shape: tuple[int, int, int] = (1, 28, 28)) -> torch.Tensor:
    """``n`` images (n, C, H, W) of noise in [0, 1], four kinds in turn: uniform, Gaussian
    (mean 0.5, sd 0.25, clipped), sparse salt (20% white) and smooth blobs. Seeded."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, *shape))
    for i in range(n):
        kind = i % 4
        if kind == 0:
            a = rng.random(shape)
        elif kind == 1:
            a = np.clip(rng.normal(0.5, 0.25, shape), 0, 1)
        elif kind == 2:
            a = (rng.random(shape) < 0.2).astype(float)
        else:
            coarse = rng.random((shape[0], max(2, shape[1] // 5), max(2, shape[2] // 5)))
            a = torch.nn.functional.interpolate(
                torch.from_numpy(coarse)[None], size=shape[1:], mode="bicubic", align_corners=False
            )[0].numpy()
            a = (a - a.min()) / max(a.max() - a.min(), 1e-9)
        out[i] = a
    return torch.from_numpy(out.astype(np.float32))
