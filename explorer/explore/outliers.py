"""Synthetic outliers, the "outlier exposure" half of the stranger score (Hendrycks et al. 2019,
"Deep Anomaly Detection with Outlier Exposure"; ``explorer.explore.strangers``): non-digit marks
drawn as a person would draw them (letters, signs, shapes, scribbles, silhouettes) and noise,
uploaded-size or image-size, prepared the way the dataset made its images; for a dataset of
drawings (MNIST's "ink" convention), also photographed objects: filled, textured outlines of
garments, bags, shoes, ellipses and polygons on a plain ground, from thumbnail to photo size,
which the preparation shrinks into a digit's box as it would a photo of a thing. No image of
another dataset is used. ``bench/ood.py`` and the tests use the same probes to measure the
detector."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

OUTLIER_MARKS, OUTLIER_NOISE, OUTLIER_SEED = 300, 100, 11  # the synthetic outliers it is shown
OUTLIER_OBJECTS = 300  # photographed objects among them, for a dataset of drawings only


def outlier_images(
    dataset: str,
    marks: int = OUTLIER_MARKS,
    noise: int = OUTLIER_NOISE,
    seed: int = OUTLIER_SEED,
    objects: int = OUTLIER_OBJECTS,
) -> torch.Tensor:
    """Synthetic outliers for ``dataset`` (N, C, H, W): ``outlier_set``'s images, kept in the
    dataset cache once made (``outlier_cache``). They depend only on the dataset's description,
    these counts and the code that draws and prepares them, not on any model, and making them is
    most of a detector's fitting (MNIST's: a minute on a 2-core host, where every run that trained
    on it would spend it again when storing its figures); read back, milliseconds. A cache that
    cannot be read or written is passed by: the images are made afresh."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    path = outlier_cache(dataset, marks, noise, seed, objects)
    try:
        return load_file(path)["images"]
    except (OSError, KeyError, SafetensorError):
        pass
    images = outlier_set(dataset, marks, noise, seed, objects)[0]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"images": images.contiguous()}, tmp)
        os.replace(tmp, path)  # whole or not at all, whoever writes it first
    except OSError:
        with contextlib.suppress(OSError):  # (no folder to leave it in, or a read-only one)
            tmp.unlink()
    return images


# The modules that draw the outliers and prepare them as a dataset's images: a change to any of
# them makes new outliers, so their source is part of the cache's key.
_MAKERS = ("explorer/explore/outliers.py", "explorer/data/uploads.py", "explorer/pictures")


def outlier_cache(dataset: str, marks: int, noise: int, seed: int, objects: int) -> Path:
    """Where ``outlier_images`` keeps its images for these arguments: a file in the dataset cache
    (``explorer.data.specs.data_root``, its hidden ``.outliers`` folder: no dataset can take that
    name) named by a SHA-256 of the dataset's description, the
    arguments and the source of the code that makes them (``_MAKERS``)."""
    from explorer.data.specs import data_root, spec

    root = Path(__file__).resolve().parents[2]
    key = hashlib.sha256(json.dumps([spec(dataset).to_dict(), marks, noise, seed, objects]).encode())
    for name in _MAKERS:
        target = root / name
        for source in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            key.update(source.read_bytes())
    return data_root() / ".outliers" / f"{dataset}-{key.hexdigest()[:16]}.safetensors"


def outlier_set(
    dataset: str,
    marks: int = OUTLIER_MARKS,
    noise: int = OUTLIER_NOISE,
    seed: int = OUTLIER_SEED,
    objects: int = OUTLIER_OBJECTS,
) -> tuple[torch.Tensor, list[str]]:
    """Synthetic outliers for ``dataset`` (N, C, H, W) and the kind of each (a mark's kind,
    "object" or "noise"): non-digit marks drawn at 140 pixels, and for a dataset of drawings
    (the "ink" convention) ``objects`` photographed objects, each prepared the way the dataset
    made its images (those that preparation refuses, as at 4x4 pixels where a thin mark
    vanishes, are left out); then noise. Seeded."""
    from explorer.data.specs import spec

    described = spec(dataset)
    drawn = synthetic_marks(marks, seed, size=140)
    if described.convention.kind == "ink" and objects:
        drawn += [("object", image) for _, image in synthetic_objects(objects, seed)]
    images, kinds = _prepared(drawn, dataset)
    pictures = noise_pictures(noise, seed, dataset)
    out = torch.cat([images, noise_images(noise, seed, described.image_shape), pictures])
    return out, kinds + ["noise"] * (noise + len(pictures))


def _prepared(drawn: list[tuple[str, Image.Image]], dataset: str) -> tuple[torch.Tensor, list[str]]:
    """The pictures of (kind, picture) pairs prepared as ``dataset``'s images (N, C, H, W), and
    their kinds; pictures the preparation refuses are left out."""
    from explorer.data.specs import spec
    from explorer.data.uploads import preprocess_image
    from explorer.errors import ImageError

    images, kinds = [torch.zeros((0, *spec(dataset).image_shape))], []
    for kind, image in drawn:
        try:
            images.append(preprocess_image(image, dataset)[None])
        except ImageError:
            continue
        kinds.append(kind)
    return torch.cat(images), kinds


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


# -- photographed objects: what a photo of a thing becomes when prepared as a drawing ------------

OBJECT_KINDS = ("top", "trousers", "dress", "bag", "shoe", "ellipse", "polygon")
_OUTLINES = {  # (b, s, d) -> corners in a unit square (x right, y down), for b, s, d drawn per object
    "top": lambda b, s, d: [(0.38, 0.08), (0.62, 0.08), (0.5 + b, 0.14), (0.5 + b + s, 0.14 + 1.2 * s),
                            (0.4 + b + s, 0.2 + 1.2 * s), (0.5 + b, 0.4), (0.5 + b, 0.95), (0.5 - b, 0.95),
                            (0.5 - b, 0.4), (0.6 - b - s, 0.2 + 1.2 * s), (0.5 - b - s, 0.14 + 1.2 * s),
                            (0.5 - b, 0.14)],
    "trousers": lambda b, s, d: [(0.5 - b, 0.04), (0.5 + b, 0.04), (0.5 + b + s / 3, 0.96), (0.54, 0.96),
                                 (0.5, 0.3 + d / 2), (0.46, 0.96), (0.5 - b - s / 3, 0.96)],
    "dress": lambda b, s, d: [(0.42, 0.04), (0.58, 0.04), (0.5 + b / 2, 0.35), (0.5 + b + s / 2, 0.96),
                              (0.5 - b - s / 2, 0.96), (0.5 - b / 2, 0.35)],
    "bag": lambda b, s, d: [(0.4 - b, 0.35), (0.6 + b, 0.35), (0.65 + b, 0.92), (0.35 - b, 0.92)],
    "shoe": lambda b, s, d: [(0.05, 0.55 - d / 2), (0.45, 0.45 - d / 2), (0.6, 0.4 - 0.3 * d),
                             (0.85, 0.4 - 0.3 * d), (0.95, 0.8), (0.05, 0.8)],
}  # fmt: skip


def synthetic_objects(n: int, seed: int = 0, sizes=(28, 56, 140)) -> list[tuple[str, Image.Image]]:
    """``n`` pictures of photographed objects (kind in ``OBJECT_KINDS``, a greyscale PIL image
    of one of ``sizes`` pixels a side): a filled outline of a garment, a bag or a shoe (corners
    jittered, stretched, tilted), an ellipse or a polygon, textured (a tone, a gradient of light,
    shading and folds, grain, sometimes stripes or darker seams), light on a dark ground or dark
    on a light one. What a model of strokes should call a stranger once it is shrunk into the
    dataset's box: a photo's tones are spread, where a digit's strokes are mostly full ink.
    Seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = OBJECT_KINDS[i % len(OBJECT_KINDS)]
        size, light = int(rng.choice(sizes)), bool(rng.random() < 0.5)
        out.append((kind, _object_picture(kind, size, light, rng)))
    return out


def _object_mask(kind: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """Where an object of ``kind`` lies in a ``side``-pixel square: (side, side) in [0, 1]."""
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    if kind == "ellipse":
        w, h = rng.uniform(0.35, 0.95, 2) * side
        draw.ellipse([(side - w) / 2, (side - h) / 2, (side + w) / 2, (side + h) / 2], fill=255)
    elif kind == "polygon":
        angles = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(3, 9))))
        radii = 0.42 * side * rng.uniform(0.6, 1.0, len(angles))
        c = side / 2
        draw.polygon([(c + q * math.cos(a), c + q * math.sin(a)) for q, a in zip(radii, angles)], fill=255)
    else:
        b, s, d = rng.uniform(0.15, 0.3), rng.uniform(0.05, 0.35), rng.uniform(0, 1)
        sx, sy = rng.uniform(0.75, 1.0, 2)
        corners = np.array(_OUTLINES[kind](b, s, d))  # (K, 2)
        corners = ((corners - 0.5) * (sx, sy) + 0.5 + rng.normal(0, 0.015, corners.shape)) * side
        draw.polygon([tuple(c) for c in corners], fill=255)
        if kind == "bag" and rng.random() < 0.6:  # a handle
            q, top = rng.uniform(0.15, 0.3) * side, 0.35 * side
            box = [side / 2 - q, top - q, side / 2 + q, top + q]
            draw.arc(box, 180, 360, fill=255, width=max(2, side // 30))
    return np.asarray(mask.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR), np.float64) / 255


def _object_picture(kind: str, size: int, light: bool, rng: np.random.Generator) -> Image.Image:
    """One textured object of ``kind`` on a plain ground, drawn at 4x and shrunk to ``size``
    pixels (anti-aliased, as a photo is); ``light``: a light object on a dark ground."""
    from scipy import ndimage

    side = 4 * size
    mask = _object_mask(kind, side, rng)
    ys, xs = np.mgrid[0:side, 0:side] / side
    angle = rng.uniform(0, 2 * math.pi)
    tone = rng.uniform(0.35, 1.0) * (1 - rng.uniform(0, 0.5) * (math.cos(angle) * xs + math.sin(angle) * ys))
    if rng.random() < 0.3:  # stripes
        across = ys if rng.random() < 0.5 else xs
        tone = tone * (1 - rng.uniform(0.2, 0.6) * (np.sin(2 * math.pi * rng.uniform(4, 12) * across) > 0))
    folds = ndimage.gaussian_filter(rng.normal(0, 1, (side, side)), side / rng.uniform(6, 20))
    folds = (folds - folds.min()) / max(float(np.ptp(folds)), 1e-9)  # shading and folds, in [0, 1]
    tone = tone * (1 - rng.uniform(0.2, 0.7) * folds)
    tone = np.clip(tone + rng.normal(0, rng.uniform(0.0, 0.1), tone.shape), 0.05, 1)
    ground = rng.uniform(0.0, 0.15)
    levels = ground + (1 - ground) * tone * mask
    if rng.random() < 0.3:  # seams: the outline in a darker shade
        edge = mask - ndimage.minimum_filter(mask, size=max(3, side // 25))
        levels = np.where(edge > 0.5, levels * 0.5, levels)
    grey = levels if light else 1 - levels
    return Image.fromarray((grey * 255).round().astype(np.uint8)).resize((size, size), Image.LANCZOS)
