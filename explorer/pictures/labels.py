"""Where the names of points on a latent map go: each label in a box on a short leader line,
placed so that no box covers any of the points or another box, at every width the map may be
drawn at (a phone's 390 px to a desktop's), and the boxes added to a plotly figure. No Streamlit.

The map keeps one scale on both axes (plotly's ``scaleanchor`` with ``constrain: "range"``), so
its pixels per unit are ``min(width / x-span, height / y-span)`` for a plot area the browser
chooses. The placement does not know that width: it checks each candidate place at a few scales
between the narrowest and the widest plot area, and keeps the nearest place that is clear at all
of them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MARKER_RADIUS = 11.0  # px: half a star of size 18, with its outline and a margin
CHAR_WIDTH = 7.5  # px per character of a 12 px label (the app's sans-serif font, measured in chromium)
BOX_HEIGHT = 22.0  # px: 12 px text, padding and border
PLOT_WIDTHS = (290.0, 1100.0)  # px of plot area: a phone held upright, a wide desktop window
DIRECTIONS = 16  # angles tried around a point, upwards first
DISTANCES = (26.0, 40.0, 58.0, 80.0, 110.0)  # px from the point to the box's centre, nearest first


def box_size(text: str) -> tuple[float, float]:
    """(width, height) in pixels of a label box holding ``text`` (12 px font, padded)."""
    return CHAR_WIDTH * len(text) + 12.0, BOX_HEIGHT


def scales(xrange: Sequence[float], yrange: Sequence[float], height: float) -> np.ndarray:
    """Pixels per unit the map may be drawn at, (S,): from the narrowest plot area (a phone, a
    legend of several rows under it) to the widest, for a figure ``height`` px tall."""
    span_x, span_y = float(xrange[1] - xrange[0]), float(yrange[1] - yrange[0])
    low = min(PLOT_WIDTHS[0] / span_x, (height - 170.0) / span_y)
    high = min(PLOT_WIDTHS[1] / span_x, (height - 90.0) / span_y)
    return np.geomspace(max(low, 1e-9), max(high, low, 1e-9), 4)


def _candidates() -> list[tuple[float, float]]:
    """Offsets (dx, dy) in screen pixels (y down) from a point to its box's centre, nearest
    first, and at each distance upwards first, then alternating right and left."""
    order = [0]
    for k in range(1, DIRECTIONS // 2 + 1):
        order += [k, -k] if k < DIRECTIONS // 2 else [k]
    out = []
    for d in DISTANCES:
        for k in order:
            angle = math.pi / 2 - 2 * math.pi * k / DIRECTIONS  # k = 0: straight up
            out.append((d * math.cos(angle), -d * math.sin(angle)))
    return out


def _clear(centre, half, stars, boxes, bounds) -> bool:
    """Whether a box (centre, half-size) misses every star (M, 2) and box (cx, cy, half w, half h,
    ...), and stays in bounds."""
    (cx, cy), (hw, hh) = centre, half
    (x0, y0), (x1, y1) = bounds
    if cx - hw < x0 or cx + hw > x1 or cy - hh < y0 or cy + hh > y1:
        return False
    nx = np.clip(stars[:, 0], cx - hw, cx + hw)  # the box's nearest point to each star
    ny = np.clip(stars[:, 1], cy - hh, cy + hh)
    if np.any(np.hypot(stars[:, 0] - nx, stars[:, 1] - ny) < MARKER_RADIUS):
        return False
    return all(abs(cx - bx) >= hw + bw + 2 or abs(cy - by) >= hh + bh + 2 for bx, by, bw, bh, *_ in boxes)


def _crosses(start, end, box, pad: float = 1.0) -> bool:
    """Whether the segment ``start``-``end`` (screen px) passes through ``box`` (cx, cy, half w,
    half h, ...) grown by ``pad`` px: Liang-Barsky clipping of the segment to the box."""
    cx, cy, hw, hh = box[:4]
    (px, py), (qx, qy) = start, end
    dx, dy = qx - px, qy - py
    low, high = 0.0, 1.0
    x0, x1, y0, y1 = cx - hw - pad, cx + hw + pad, cy - hh - pad, cy + hh + pad
    for step, room in ((-dx, px - x0), (dx, x1 - px), (-dy, py - y0), (dy, y1 - py)):
        if step == 0:
            if room < 0:
                return False
            continue
        t = room / step
        if step < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def _leaders_clear(point, centre, half, boxes) -> bool:
    """Whether a label's leader line (from its ``point`` to its box's ``centre``, half-size
    ``half``) misses every earlier box, and its box every earlier leader line (``boxes``: (cx, cy,
    half w, half h, px, py) of each earlier label, its point last)."""
    box = (*centre, *half)
    for other in boxes:
        if _crosses(point, centre, other) or _crosses(other[4:6], other[:2], box):
            return False
    return True


def _best_place(i: int, half, screens, others, bounds) -> tuple[tuple[float, float], tuple[int, int]]:
    """The nearest offset for label ``i`` (box half-size ``half``) clear of every star and of the
    boxes ``others[k]`` at every scale k, and then with no leader line across a box; where none
    is, the one clear at most scales. Returns (offset, (scales its box is clear at, scales its
    leader is clear at))."""
    best, best_clear = (0.0, -26.0), (-1, -1)
    for dx, dy in _candidates():
        boxes_clear = leaders_clear = 0
        for k, xy in enumerate(screens):
            centre = (xy[i, 0] + dx, xy[i, 1] + dy)
            if _clear(centre, half, xy, others[k], bounds[k]):
                boxes_clear += 1
                leaders_clear += _leaders_clear(xy[i], centre, half, others[k])
        clear = (boxes_clear, leaders_clear)  # a hidden star or number first, then a line across one
        if clear > best_clear:
            best, best_clear = (dx, dy), clear
        if clear == (len(screens), len(screens)):
            break
    return best, best_clear


def place_labels(
    points, texts: Sequence[str], xrange: Sequence[float], yrange: Sequence[float], height: float = 460
) -> list[tuple[float, float]]:
    """Offsets (ax, ay) in pixels (plotly's annotation ``ax``, ``ay``: y down) of a label box for
    each of ``points`` (N, 2, data units) on a map showing ``xrange`` x ``yrange`` in a figure
    ``height`` px tall, so that no box covers any point's marker or another box, and no leader
    line crosses another box, at every scale of ``scales``. Labels are placed in order, each at
    the nearest clear place; where none is clear at every scale (a crowd of points on a small
    screen), at the place clear at most of them."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    at = scales(xrange, yrange, height)
    origin = np.array([xrange[0], yrange[1]])
    screens = [(pts - origin) * np.array([s, -s]) for s in at]  # (N, 2) px, y down, per scale
    bounds = [((0.0, 0.0), ((xrange[1] - xrange[0]) * s, (yrange[1] - yrange[0]) * s)) for s in at]
    placed: list[list[tuple]] = [[] for _ in at]  # per scale: (cx, cy, half w, half h, px, py) of each
    offsets = []
    for i, text in enumerate(texts):
        half = tuple(v / 2 for v in box_size(text))
        (dx, dy), _ = _best_place(i, half, screens, placed, bounds)
        offsets.append((dx, dy))
        for k, xy in enumerate(screens):
            placed[k].append((xy[i, 0] + dx, xy[i, 1] + dy, *half, xy[i, 0], xy[i, 1]))
    return [(round(dx, 1), round(dy, 1)) for dx, dy in offsets]


STAR_SIZES = (20, 15, 11)  # a star's size by the number of earlier stars it would overlap: 0, 1, 2+


def star_sizes(points, xrange: Sequence[float], yrange: Sequence[float], height: float = 460) -> list[int]:
    """A marker size for each of ``points`` (N, 2), drawn in order (later ones on top): a star that
    would overlap earlier ones on the narrowest map is drawn smaller, so that the tips of the
    earlier stars still show round it (two images at the same code make nested stars)."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    xy = pts * scales(xrange, yrange, height)[0]
    sizes = []
    for i in range(len(xy)):
        crowd = int(np.sum(np.hypot(*(xy[:i] - xy[i]).T) < 2 * MARKER_RADIUS)) if i else 0
        sizes.append(STAR_SIZES[min(crowd, len(STAR_SIZES) - 1)])
    return sizes


def add_label(
    fig, x: float, y: float, text: str, colour: str = "black", ax: float = 0, ay: float = -26
) -> None:
    """A name on the map in a white box with a border of the marker's colour, ``ax``, ``ay`` px from
    its point (above by default) on a leader line (annotations are drawn over the WebGL layer, so no
    dot hides them)."""
    fig.add_annotation(
        x=x, y=y, text=text, showarrow=True, arrowhead=0, arrowwidth=1, arrowcolor=colour, ax=ax, ay=ay,
        bgcolor="rgba(255,255,255,0.92)", bordercolor=colour, borderwidth=1.5, borderpad=2,
        font={"size": 12, "color": "black"},
    )  # fmt: skip


def label_points(fig, points, texts: Sequence[str], colours: Sequence[str]) -> None:
    """Name each of ``points`` (N, 2) in a box placed clear of every point's marker and every other
    box at any width the map is drawn at (``labels.place_labels``): your images' numbers on a map
    where several may lie close together."""
    layout = fig.layout
    if layout.xaxis.range is None or layout.yaxis.range is None:  # a map that fits itself: above each
        offsets = [(0.0, -26.0)] * len(texts)
    else:
        offsets = place_labels(points, texts, layout.xaxis.range, layout.yaxis.range, layout.height or 460)
    for (x, y), text, colour, (ax, ay) in zip(points, texts, colours, offsets):
        add_label(fig, float(x), float(y), text, colour, ax, ay)
