"""Points beyond a latent map's axes, drawn at its edge: the map's axes fit the test set's dots
(an upload far out, widening them, shrank the data to a blob in a corner), so an upload, a
drawing or an interpolation's end that lies past them is drawn just inside the edge it lies
beyond, as a triangle pointing outward, and named in words with its true coordinates. No
Streamlit."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

INSET = 0.035  # share of the span inside the axis at which an off-map point is drawn (a whole marker)
# The triangle pointing past each edge or corner, by (x, y) direction: -1 below the range, +1 above.
SYMBOLS = {
    (1, 0): "triangle-right", (-1, 0): "triangle-left", (0, 1): "triangle-up", (0, -1): "triangle-down",
    (1, 1): "triangle-ne", (-1, 1): "triangle-nw", (1, -1): "triangle-se", (-1, -1): "triangle-sw",
}  # fmt: skip
_SIDES = {(1, 0): "right edge", (-1, 0): "left edge", (0, 1): "top edge", (0, -1): "bottom edge",
          (1, 1): "top-right corner", (-1, 1): "top-left corner", (1, -1): "bottom-right corner",
          (-1, -1): "bottom-left corner"}  # fmt: skip


def directions(points, xrange: Sequence[float] | None, yrange: Sequence[float] | None) -> np.ndarray:
    """For each of ``points`` (N, 2), where it lies against the map's ranges, (N, 2) ints: per
    axis -1 (below the range), 0 (within it) or +1 (above it); (0, 0) is on the map (always, on
    a map without fixed ranges, ``None``, which fits itself to what it shows)."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if xrange is None or yrange is None:
        return np.zeros(pts.shape, dtype=int)
    lo = np.array([xrange[0], yrange[0]], dtype=float)
    hi = np.array([xrange[1], yrange[1]], dtype=float)
    return (pts > hi).astype(int) - (pts < lo).astype(int)


def at_edge(points, xrange: Sequence[float] | None, yrange: Sequence[float] | None):
    """Where to draw ``points`` (N, 2) on a map showing ``xrange`` x ``yrange``: each point on the
    map where it is; one past an axis moved onto it, ``INSET`` of the span inside the edge (a
    coordinate within its range is kept). Returns (drawn (N, 2), directions (N, 2) as
    ``directions``); a map without fixed ranges (``None``) draws every point where it is."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    if xrange is None or yrange is None:
        return pts, np.zeros(pts.shape, dtype=int)
    lo = np.array([xrange[0], yrange[0]], dtype=float)
    hi = np.array([xrange[1], yrange[1]], dtype=float)
    inset = INSET * (hi - lo)
    way = directions(pts, xrange, yrange)
    drawn = np.where(way > 0, hi - inset, np.where(way < 0, lo + inset, pts))
    return drawn, way


def symbol(direction, on_map: str = "star") -> str:
    """The marker of a point lying ``direction`` ((dx, dy) of ``directions``) of the map:
    ``on_map`` for (0, 0), else the triangle pointing past that edge or corner."""
    key = (int(direction[0]), int(direction[1]))
    return on_map if key == (0, 0) else SYMBOLS[key]


def off_map_words(point, direction) -> str:
    """Where a point past the map's axes lies, in words: "off the map, beyond the right edge, at
    (41.20, -3.05)" (its true coordinates in the map's plane); "" for a point on the map."""
    key = (int(direction[0]), int(direction[1]))
    if key == (0, 0):
        return ""
    return f"off the map, beyond the {_SIDES[key]}, at ({float(point[0]):.2f}, {float(point[1]):.2f})"


def hover_text(names: Sequence[str], points, way) -> list[str]:
    """What hovering over each marker of ``points`` (N, 2, true coordinates) says: its name and
    its true coordinates, and "off the map" where ``way`` (N, 2, ``directions``) says so."""
    pts, way = np.asarray(points, dtype=float).reshape(-1, 2), np.asarray(way).reshape(-1, 2)
    return [
        f"{n}<br>({x:.2f}, {y:.2f})" + " off the map" * bool(w.any()) for n, (x, y), w in zip(names, pts, way)
    ]


def include_points(fig, points) -> None:
    """Widen a plotly figure's fixed axis ranges, where it has them, to hold ``points`` (N, 2):
    what belongs to the data's own picture (the aggregate posterior's outermost contour), never
    an upload (drawn at the edge instead: ``at_edge``)."""
    xr, yr = fig.layout.xaxis.range, fig.layout.yaxis.range
    if xr is None or yr is None:
        return
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    lo, hi = points.min(axis=0), points.max(axis=0)
    margin = 0.05 * np.array([xr[1] - xr[0], yr[1] - yr[0]])  # as the data's own ranges have
    x0, y0 = np.minimum([xr[0], yr[0]], lo - margin)
    x1, y1 = np.maximum([xr[1], yr[1]], hi + margin)
    fig.update_layout(xaxis_range=[float(x0), float(x1)], yaxis_range=[float(y0), float(y1)])
