"""A seeded family of photos of drawn digits under shadows and uneven light, each with its clean
twin (the same drawing rendered on white paper), for the tests of ``preprocess_image`` and
``bench/shadows.py``.

Every draw of ``shadow_photo(seed)`` picks, from its own ``numpy.random.default_rng(seed)``:

- a digit (0-9 as marker strokes, with a hand's variation: a shear of up to 0.15 and a smooth
  wobble of 1-4% of its size), its size (250-420 px) and place on a 600 x 600 sheet, and a
  stroke width of 15-45 px;
- one shadow: a straight or curved edge at any angle through any point of the sheet, a band (a
  pole's or a pen's shadow, 30-160 px wide), a corner's round shadow, or a hand's blob (a palm and
  fingers coming in from an edge); its penumbra 1 px (hard) or 2-60 px (soft, log-uniform) and
  the shaded paper at 0.35-0.7 of the lit paper's level;
- with probability one half, a brightness gradient or a vignette over it (10-40% darker);
- the paper (0.82-0.97) and ink (0.02-0.12) levels, a slight camera blur (sigma 0-1.2 px),
  grain (sigma 0.005-0.03) and JPEG (quality 60-95) or PNG.

Nothing is chosen by how well the preparation does on it.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

SIDE = 600
_Y, _X = np.indices((SIDE, SIDE)).astype(np.float64)
SHADOWS = ("straight edge", "curved edge", "band", "corner", "hand")

# Each digit as strokes in a unit box (x right, y down): ("line", points) or ("arc", box, start, end)
# with PIL's angles (degrees clockwise from 3 o'clock).
DIGITS = {
    0: [("arc", (0.1, 0.0, 0.9, 1.0), 0, 360)],
    1: [("line", [(0.3, 0.2), (0.55, 0.0), (0.55, 1.0)])],
    2: [("arc", (0.1, 0.0, 0.9, 0.55), 180, 40), ("line", [(0.82, 0.43), (0.1, 1.0), (0.95, 1.0)])],
    3: [("arc", (0.15, 0.0, 0.85, 0.5), 180, 90), ("arc", (0.1, 0.5, 0.9, 1.0), 270, 150)],
    4: [("line", [(0.7, 1.0), (0.7, 0.0), (0.05, 0.68), (0.95, 0.68)])],
    5: [("line", [(0.9, 0.0), (0.25, 0.0), (0.2, 0.45)]), ("arc", (0.15, 0.35, 0.9, 1.0), 220, 150)],
    6: [("arc", (0.1, 0.45, 0.9, 1.0), 0, 360), ("arc", (0.1, 0.0, 1.5, 1.45), 180, 250)],
    7: [("line", [(0.05, 0.0), (0.95, 0.0), (0.35, 1.0)])],
    8: [("arc", (0.2, 0.0, 0.8, 0.46), 0, 360), ("arc", (0.1, 0.44, 0.9, 1.0), 0, 360)],
    9: [("arc", (0.1, 0.0, 0.9, 0.55), 0, 360), ("line", [(0.9, 0.28), (0.85, 1.0)])],
}


def drawing(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A digit in black on white: (600, 600) levels in [0, 1] (1 = paper), anti-aliased."""
    digit = int(rng.integers(10))
    width = float(rng.uniform(15, 45))
    size = float(rng.uniform(250, 420))
    aspect = float(rng.uniform(0.55, 0.8))
    left = rng.uniform(width + 30, SIDE - width - 30 - size * aspect)
    top = rng.uniform(width + 30, SIDE - width - 30 - size)
    up = 4  # drawn 4x larger, then box-averaged
    image = Image.new("L", (SIDE * up, SIDE * up), 255)
    draw = ImageDraw.Draw(image)
    # A hand's variation: a shear and a smooth wobble (a few percent of the size) on every point.
    shear = rng.uniform(-0.15, 0.15)
    wobble = rng.uniform(0.01, 0.04, 2)
    phase = rng.uniform(0, 2 * math.pi, 4)

    def at(x: float, y: float) -> tuple[float, float]:
        x, y = x + shear * (0.5 - y), y
        x, y = (
            x + wobble[0] * math.sin(5 * y + phase[0]) + wobble[0] * math.sin(3 * x + phase[2]),
            (y + wobble[1] * math.sin(4 * x + phase[1]) + wobble[1] * math.sin(3 * y + phase[3])),
        )
        return (up * (left + x * size * aspect), up * (top + y * size))

    for stroke in DIGITS[digit]:
        if stroke[0] == "line":
            points = stroke[1]
        else:  # an arc as a polyline, so that it wobbles as a hand's does
            x0, y0, x1, y1 = stroke[1]
            start, end = stroke[2], stroke[3] if stroke[3] > stroke[2] else stroke[3] + 360
            t = np.radians(np.linspace(start, end, 64))
            points = list(
                zip((x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(t), (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(t))
            )
        draw.line([at(*p) for p in points], fill=0, width=round(up * width), joint="curve")
        for p in (points[0], points[-1]):  # round caps
            x, y = at(*p)
            r = up * width / 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    small = image.resize((SIDE, SIDE), Image.BOX)
    return np.asarray(small, np.float64) / 255.0, {"digit": digit, "width": round(width)}


def _profile(d: np.ndarray, penumbra: float) -> np.ndarray:
    """How far into the shadow (0 lit, 1 shaded) at signed distance ``d`` (px, > 0 inside) from
    its edge: a logistic ramp whose 10-90% rise spans ``penumbra`` px."""
    return 0.5 * (1.0 + np.tanh(d * (2.2 / max(penumbra, 0.5)) / 2.0))


def _edge_distance(rng: np.random.Generator, curved: bool) -> np.ndarray:
    """Signed distance (px) from an edge through a random point of the sheet at a random angle;
    a curved edge bends with a radius of 150-1500 px either way."""
    px, py = rng.uniform(0.1, 0.9, 2) * SIDE
    theta = rng.uniform(0, 2 * math.pi)
    d = (_X - px) * math.cos(theta) + (_Y - py) * math.sin(theta)
    if curved:
        t = -(_X - px) * math.sin(theta) + (_Y - py) * math.cos(theta)
        d = d + rng.choice([-1, 1]) * t**2 / (2 * rng.uniform(150, 1500))
    return d


def _ellipse_distance(cx, cy, a, b, angle) -> np.ndarray:
    """Approximate signed distance (px, > 0 inside) from an ellipse's outline."""
    c, s = math.cos(angle), math.sin(angle)
    u, v = (_X - cx) * c + (_Y - cy) * s, -(_X - cx) * s + (_Y - cy) * c
    return (1.0 - np.sqrt((u / a) ** 2 + (v / b) ** 2)) * min(a, b)


def _hand_distance(rng: np.random.Generator) -> np.ndarray:
    """A hand's shadow coming in from one edge: a palm and 3-4 fingers, their union."""
    side = int(rng.integers(4))
    along = rng.uniform(0.2, 0.8) * SIDE
    depth = rng.uniform(0.05, 0.35) * SIDE  # how far the palm's centre reaches into the sheet
    inward = [(0, 1), (0, -1), (1, 0), (-1, 0)][side]  # from the top, bottom, left, right edge
    base = [(along, -60), (along, SIDE + 60), (-60, along), (SIDE + 60, along)][side]
    cx, cy = base[0] + inward[0] * depth, base[1] + inward[1] * depth
    heading = math.atan2(inward[1], inward[0]) + rng.uniform(-0.6, 0.6)
    palm_a, palm_b = rng.uniform(90, 150), rng.uniform(70, 120)
    d = _ellipse_distance(cx, cy, palm_a, palm_b, heading)
    for k in range(int(rng.integers(3, 5))):
        spread = heading + (k - 1.5) * rng.uniform(0.15, 0.3)
        length, thick = rng.uniform(70, 150), rng.uniform(18, 32)
        fx = cx + math.cos(spread) * (palm_a + length * 0.7)
        fy = cy + math.sin(spread) * (palm_a + length * 0.7)
        d = np.maximum(d, _ellipse_distance(fx, fy, length, thick, spread))
    return d


def lighting(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The light falling on the sheet: (600, 600) factors in (0, 1]."""
    kind = SHADOWS[int(rng.integers(len(SHADOWS)))]
    if kind in ("straight edge", "curved edge"):
        d = _edge_distance(rng, kind == "curved edge")
    elif kind == "band":
        d = rng.uniform(30, 160) / 2 - np.abs(_edge_distance(rng, rng.uniform() < 0.3))
    elif kind == "corner":
        cx, cy = rng.choice([0, SIDE], 2)
        d = rng.uniform(150, 450) - np.hypot(_X - cx, _Y - cy)
    else:
        d = _hand_distance(rng)
    hard = rng.uniform() < 0.25
    penumbra = 1.0 if hard else float(np.exp(rng.uniform(math.log(2), math.log(60))))
    if kind == "hand":
        penumbra = max(penumbra, 10.0)
    shade = float(rng.uniform(0.35, 0.7))
    light = 1.0 - (1.0 - shade) * _profile(d, penumbra)
    extra = ["none", "gradient", "vignette"][int(rng.choice(3, p=[0.5, 0.25, 0.25]))]
    amount = rng.uniform(0.1, 0.4)
    if extra == "gradient":
        phi = rng.uniform(0, 2 * math.pi)
        t = (_X - SIDE / 2) * math.cos(phi) + (_Y - SIDE / 2) * math.sin(phi)
        light = light * (1.0 - amount * (t / (SIDE * 0.71) + 1) / 2)
    elif extra == "vignette":
        light = light * (1.0 - amount * ((_X - SIDE / 2) ** 2 + (_Y - SIDE / 2) ** 2) / (SIDE**2 / 2))
    info = {"shadow": kind, "penumbra": round(penumbra), "shade": round(shade, 2), "extra": extra}
    return light, info


def _encode(levels: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(np.clip(np.round(levels * 255), 0, 255).astype(np.uint8))
    image.save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def shadow_photo(seed: int) -> tuple[bytes, bytes, dict]:
    """Draw ``seed`` of the family: (the photo's file bytes, its clean twin's PNG bytes, what was
    drawn)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    clean, info = drawing(rng)
    light, lit = lighting(rng)
    paper, ink = rng.uniform(0.82, 0.97), rng.uniform(0.02, 0.12)
    photo = (ink + (paper - ink) * clean) * light
    blur = rng.uniform(0, 1.2)
    if blur > 0.3:
        photo = ndimage.gaussian_filter(photo, blur)
    photo = photo + rng.normal(0, rng.uniform(0.005, 0.03), photo.shape)
    fmt = "JPEG" if rng.uniform() < 0.5 else "PNG"
    quality = int(rng.integers(60, 96))
    info.update(lit, format=fmt if fmt == "PNG" else f"JPEG q{quality}")
    return _encode(photo, fmt, quality), _encode(clean, "PNG"), info
