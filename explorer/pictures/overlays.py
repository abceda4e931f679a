"""What is drawn over a latent scatter (``latent_plots.latent_scatter``): your images' stars and
ellipses in colours none of the classes have, a chosen point, an interpolation path with its ends
A and B; each named in a box on the map, never in the legend.

The scatter's dots are WebGL ("scattergl"), and plotly paints its WebGL layer above every SVG
("scatter") trace: an SVG overlay would vanish under a dense cluster. So every overlay is WebGL
too, added after the dots: painted in trace order, it lies on top. Overlays stay out of the
legend (a legend that grows shrinks the plot area, and every dot moves); their names are labels
in boxes on the map, and the page's caption says what they are."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.pictures.edges import at_edge, hover_text, off_map_words
from explorer.pictures.edges import symbol as edge_symbol
from explorer.pictures.labels import add_label, label_points

OVERLAY = {"showlegend": False}
# Your images' colours: none of them in the class palette (PALETTE, plotly's T10), dark and
# saturated, so that an upload's star and ellipses cannot pass for a class's dots.
# Each is named in words too, for the key under a map of several (the numbers on the map say which).
UPLOAD_COLOURS = {"black": "black", "#d000d0": "magenta", "#0015ff": "blue", "#8a0000": "dark red",
                  "#00707a": "teal", "#5c4b00": "olive", "#006400": "dark green", "#4b0082": "indigo",
                  "#a04000": "dark orange", "#c8004f": "crimson"}  # fmt: skip
UPLOAD_SYMBOLS = ("star", "diamond")  # the first ten images stars, the next ten diamonds


def upload_colour(i: int) -> str:
    """The colour of your ``i``-th image on a map (0: black), cycling after ten (with
    ``upload_symbol``, no two of twenty images alike)."""
    return list(UPLOAD_COLOURS)[i % len(UPLOAD_COLOURS)]


def upload_symbol(i: int) -> str:
    """The marker of your ``i``-th image: a star for the first ten, then the next symbol."""
    return UPLOAD_SYMBOLS[(i // len(UPLOAD_COLOURS)) % len(UPLOAD_SYMBOLS)]


def add_outline(
    fig: go.Figure, points, name: str, colour: str = "black", dash: str = "solid", group=None
) -> None:
    """A closed outline (P, 2), e.g. a posterior ellipse, drawn over the scatter."""
    fig.add_trace(
        {
            "type": "scattergl",
            "mode": "lines",
            "name": name,
            "legendgroup": group or name,
            "x": [round(float(p[0]), 4) for p in points],
            "y": [round(float(p[1]), 4) for p in points],
            "line": {"color": colour, "width": 2, "dash": dash},
            "hoverinfo": "skip",
            **OVERLAY,
        }
    )


def add_points(
    fig: go.Figure,
    points,
    names: Sequence[str],
    colour: str = "black",
    symbol: str = "star",
    label: bool = True,
    size: int = 18,
) -> np.ndarray:
    """Markers (N, 2) with a black outline, each named in a box unless ``label`` is False (the
    caller places the names of several together: ``label_points``): an upload, a drawing, the
    chosen test image. The map's axes stay as they are: a point past them is drawn at the edge as
    a triangle pointing outward (``edges.at_edge``), its true coordinates on hover. Returns where
    each point lies against the axes, (N, 2) (``edges.directions``: (0, 0) on the map)."""
    true = np.asarray(points, dtype=float).reshape(-1, 2)
    drawn, way = at_edge(true, fig.layout.xaxis.range, fig.layout.yaxis.range)
    symbols = [edge_symbol(w, symbol) for w in way]
    fig.add_trace(
        {
            "type": "scattergl",
            "mode": "markers",
            "name": "your images" if len(names) > 1 else names[0],
            "x": drawn[:, 0].tolist(),
            "y": drawn[:, 1].tolist(),
            "text": list(names),
            "hovertext": hover_text(names, true, way),
            "marker": {
                "symbol": symbols[0] if len(set(symbols)) == 1 else symbols,
                "size": size,
                "color": colour,
                "line": {"width": 1.5, "color": "white" if colour == "black" else "black"},
            },
            "hovertemplate": "%{hovertext}<extra></extra>",
            **OVERLAY,
        }
    )
    if label:
        label_points(fig, drawn.tolist(), names, [colour] * len(names))
    return way


def add_path(fig: go.Figure, points, name: str, colour: str = "black") -> str:
    """An interpolation path (N, 2) with its steps marked and its two ends labelled A and B in
    boxes beside them. The map's axes stay as they are: the line runs off the map towards an end
    past them, marked at the edge by a triangle pointing outward. Returns what lies off the map, in
    words ("B off the map, beyond the right edge, at (41.20, -3.05)"; "" if nothing)."""
    xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
    fig.add_trace(
        {
            "type": "scattergl",
            "mode": "lines+markers",
            "name": name,
            "x": xs,
            "y": ys,
            "line": {"color": colour, "width": 2},
            "marker": {"size": 7, "color": colour, "line": {"width": 1, "color": "white"}},
            "hovertemplate": f"{name}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
        }
    )
    ends = np.array([[xs[0], ys[0]], [xs[-1], ys[-1]]])
    drawn, way = at_edge(ends, fig.layout.xaxis.range, fig.layout.yaxis.range)
    named = {a.text for a in fig.layout.annotations}  # paths share their ends: one label each
    said = []
    inward = (
        [np.subtract(points[1], points[0]), np.subtract(points[-2], points[-1])]
        if len(xs) > 1
        else [[0, 0]] * 2
    )
    same = np.allclose(ends[0], ends[1])  # A and B one point: labels either side, not one on the other
    for end, point, place, w, along in zip("AB", ends, drawn, way, inward):
        if w.any():
            add_points(fig, [point], [end], colour, label=False, size=14)
            said.append(f"{end} {off_map_words(point, w)}")
        if end not in named:
            offset = ((-30.0 if end == "A" else 30.0), -20.0) if same else away_from(along)
            add_label(fig, float(place[0]), float(place[1]), end, "black", *offset)
    return "; ".join(said)


def away_from(along, pixels: float = 30.0) -> tuple[float, float]:
    """A label's offset (ax, ay) in pixels, ``pixels`` from its point, opposite the direction
    ``along`` (2,) in which the path leaves it (one scale on both axes; y points down on the
    screen): the A and B of an interpolation sat on the path's own steps, above their ends."""
    dx, dy = float(along[0]), float(along[1])
    norm = math.hypot(dx, dy)
    if norm == 0:
        return 0.0, -26.0  # above, as any other label
    return -pixels * dx / norm, pixels * dy / norm
