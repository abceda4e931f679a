"""The latent space's figures: the test set's scatter (one WebGL trace per class), the overlays drawn
on it (posterior outlines, your images, interpolation paths), the aggregate posterior's density
against the prior, and the animation of a run's latent snapshots. Plotly, from plain dicts; no
Streamlit here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.pictures.plots import PALETTE


def class_traces(
    points, labels, label_names=None, kind: str = "scattergl", index: bool = True, decimals: int = 2
) -> list[dict]:
    """One marker trace per class of ``labels`` (N,) for ``points`` (N, 2), coloured from PALETTE
    and named from ``label_names`` (else the class number). With ``index`` each point's
    ``customdata`` is its index in ``points`` (a plain list, so that Streamlit's selection hands
    it back as a number), hovering shows it and the coordinates keep 1/10,000 of the points'
    spread; without, hovering is off (animation frames) and the coordinates are rounded to
    ``decimals`` places (lighter frames to resend)."""
    points, labels = np.asarray(points, dtype=float), np.asarray(labels).astype(int)
    # A map's dots to 1/10,000 of its spread (a hundredth of a pixel on the widest screen): at full
    # precision their 17 digits were 60% of a deep link's 330 KB message.
    places = _decimals(points) + 1 if index else decimals
    traces = []
    for k in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == k)
        name = label_names[k] if label_names is not None and k < len(label_names) else str(k)
        trace = {
            "type": kind,
            "mode": "markers",
            "name": name,
            "x": points[idx, 0].round(places).tolist(),
            "y": points[idx, 1].round(places).tolist(),
            "marker": {"size": 4, "opacity": 0.7, "color": PALETTE[k % len(PALETTE)]},
        }
        if index:
            trace |= {
                "customdata": idx.tolist(),
                # a clicked or linked dot stands out; the rest fade (a box's dots stand out so)
                "selected": {"marker": {"size": 7, "opacity": 1.0}},
                "unselected": {"marker": {"opacity": 0.2}},
                "hovertemplate": f"{name}<br>index %{{customdata}}<br>"
                "(%{x:.2f}, %{y:.2f})<extra></extra>",
            }
        else:
            trace["hoverinfo"] = "skip"
        traces.append(trace)
    return traces


def select_points(fig: go.Figure, indices: Sequence[int]) -> None:
    """Mark the dots whose ``customdata`` (test index) is in ``indices`` as the map's selection,
    as a click or a box marks them (enlarged; the rest faded): how a map shows a linked image
    without a star, so that a later click leaves its figure as it was."""
    wanted = set(int(i) for i in indices)
    for trace in fig.data:
        if trace.customdata is not None and trace.mode == "markers":
            trace.selectedpoints = [k for k, i in enumerate(trace.customdata) if int(i) in wanted]


MIN_SPAN = 2.0  # units of z: the least an axis spans (the prior's sd either side of a lone point)


def fitted_ranges(points, pad: float = 0.05) -> tuple[list[float], list[float]]:
    """x and y ranges holding every point of ``points`` (N, 2), with ``pad`` of the span each
    side; an axis spans at least ``MIN_SPAN`` around its points' middle: codes that all coincide
    (a folder of one picture many times, a collapsed posterior) were drawn on axes 1e-4 wide, the
    labels of A and B on top of each other."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    if not len(points):
        return [-3.0, 3.0], [-3.0, 3.0]
    lo, hi = points.min(axis=0), points.max(axis=0)
    middle, span = (lo + hi) / 2, np.maximum(hi - lo, MIN_SPAN)
    low, high = middle - (0.5 + pad) * span, middle + (0.5 + pad) * span
    return [float(low[0]), float(high[0])], [float(low[1]), float(high[1])]


def latent_scatter(
    points: Sequence[Sequence[float]],
    labels: Sequence[int],
    label_names: Sequence[str] | None = None,
    axis_titles: tuple[str, str] = ("z1", "z2"),
    marker_point: tuple[float, float] | None = None,
    height: int = 560,
) -> go.Figure:
    """WebGL scatter of 2-D points (N, 2) coloured by label (N,), one trace per label (the legend
    toggles them); each point's ``customdata`` is its index. ``marker_point`` adds a star there."""
    traces = class_traces(points, labels, label_names)
    if marker_point is not None:
        traces.append(_star(marker_point))
    layout = _scatter_layout(points, axis_titles, height)
    # Built from plain dicts without plotly's validators: ten times faster for thousands of
    # points, which keeps a slider move on the Manifold page quick. The layout's keys are checked by
    # the tests against plotly's own validation.
    return go.Figure({"data": traces, "layout": layout}, _validate=False)


def _star(point: tuple[float, float]) -> dict:
    """The chosen point's star, a WebGL trace like the dots (drawn after them, so on top)."""
    return {
        "type": "scattergl",  # WebGL, like the dots: drawn after them, so on top
        "mode": "markers",
        "name": "chosen point",
        "hoverinfo": "skip",
        "x": [point[0]],
        "y": [point[1]],
        "marker": {
            "symbol": "star",
            "size": 18,
            "color": "black",
            "line": {"width": 1.5, "color": "white"},
        },
    }


def _scatter_layout(points, axis_titles: tuple[str, str], height: int) -> dict:
    """The scatter's layout: legend below, one scale on both axes over the data's own ranges."""
    xrange, yrange = fitted_ranges(points)
    return {
        "height": height,
        # A top margin for plotly's toolbar: at 10 pixels it covered the legend's first entry.
        "margin": {"l": 40, "r": 10, "t": 36, "b": 40},
        "showlegend": True,
        # The legend lists the classes only (overlays stay out of it, see overlays.OVERLAY), so the plot
        # area keeps its size whatever is drawn on the map; the ranges are the data's, so the
        # axes hold still too, and a click lands on the dot under the pointer.
        # Below the map, across (on a phone a legend at the side squeezed the map to a strip);
        # placed in the container, so that plotly makes room for it under the axis title.
        "legend": {
            "itemsizing": "constant",
            "orientation": "h",
            "traceorder": "normal",  # not "grouped" (an overlay's legendgroup stacked the classes)
            "x": 0,
            "xanchor": "left",
            "yref": "container",
            "y": 0,
            "yanchor": "bottom",
        },  # fmt: skip
        "dragmode": "pan",
        "uirevision": "scatter",
        # constrain "range": one scale on both axes, the map filling its area (a narrow screen
        # shows more of z2 rather than a square under a blank band)
        "xaxis": {
            "title": {"text": axis_titles[0]},
            "automargin": True,
            "constrain": "range",
            "range": xrange,
            "autorange": False,
        },
        "yaxis": {
            "title": {"text": axis_titles[1]},
            "constrain": "range",
            "scaleanchor": "x",
            "scaleratio": 1,
            "range": yrange,
            "autorange": False,
        },
    }


def prior_vs_posterior(dmap, axis_titles: tuple[str, str] = ("z1", "z2"), height: int = 560) -> go.Figure:
    """The aggregate posterior's density (shaded, log scale), the prior's 1/2/3-sigma circles, and
    the holes: the prior's 2-sigma disc where the data put less than a tenth of its density."""
    floor = dmap.aggregate.max() * 1e-4
    log_q = np.log10(np.maximum(dmap.aggregate, floor))
    hole = np.where(dmap.holes, 1.0, np.nan)
    cx, cy = dmap.prior_centre
    angle = np.linspace(0, 2 * np.pi, 121)
    data = [
        {
            "type": "heatmap",
            "x": dmap.xs.round(4).tolist(),
            "y": dmap.ys.round(4).tolist(),
            "z": log_q.round(3).tolist(),
            "colorscale": "Blues",
            "reversescale": True,  # empty = white, dense = dark blue
            "name": "data density",
            "colorbar": {"title": {"text": "log10 q(z)"}, "len": 0.6, "y": 0.7},
            "hovertemplate": "(%{x:.2f}, %{y:.2f})<br>log10 q(z) = %{z:.2f}<extra></extra>",
        },
        {
            "type": "heatmap",
            "x": dmap.xs.round(4).tolist(),
            "y": dmap.ys.round(4).tolist(),
            "z": [[None if np.isnan(v) else 1 for v in row] for row in hole],
            "colorscale": [[0, "rgba(214,39,40,0.45)"], [1, "rgba(214,39,40,0.45)"]],
            "showscale": False,
            "name": "holes",
            "showlegend": True,
            "hovertemplate": "hole: the prior has mass, the data almost none<extra></extra>",
        },
    ]
    for r, dash in ((1, "solid"), (2, "dash"), (3, "dot")):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"prior {r} sigma",
                "x": (cx + r * np.cos(angle)).round(4).tolist(),
                "y": (cy + r * np.sin(angle)).round(4).tolist(),
                "line": {"color": "black", "width": 1.5, "dash": dash},
                "hoverinfo": "skip",
            }
        )
    layout = {
        "height": height,
        "margin": {"l": 40, "r": 10, "t": 36, "b": 40},  # room for the toolbar
        "legend": {"orientation": "h", "y": -0.12},
        "xaxis": {"title": {"text": axis_titles[0]}, "constrain": "domain"},
        "yaxis": {
            "title": {"text": axis_titles[1]},
            "scaleanchor": "x",
            "scaleratio": 1,
            "constrain": "domain",
        },
        "plot_bgcolor": "white",
    }
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def latent_animation(
    epochs: Sequence[int],
    frames,
    labels: Sequence[int],
    label_names: Sequence[str] | None = None,
    axis_titles: tuple[str, str] = ("z1", "z2"),
    height: int = 480,
) -> go.Figure:
    """The snapshots ``frames`` (E, n, 2), one per epoch of ``epochs``, as an animated scatter
    coloured by ``labels`` (n,), with a play button and an epoch slider, opening on the last
    epoch; fixed axes so that the points move, not the frame."""
    frames = np.asarray(frames)
    # Axes that hold every point of every epoch shown (percentiles cut off whole clusters).
    xrange, yrange = fitted_ranges(frames.reshape(-1, 2))
    names = [str(e) for e in epochs]
    layout = {
        "height": height,
        "margin": {"l": 40, "r": 10, "t": 40, "b": 110},
        "xaxis": {"title": {"text": axis_titles[0]}, "range": xrange},
        "yaxis": {"title": {"text": axis_titles[1]}, "range": yrange},
        "legend": {"itemsizing": "constant", "orientation": "h", "y": 1.02, "yanchor": "bottom"},
        **_player(names),
    }

    def traces(frame):
        return class_traces(
            frame, labels, label_names, kind="scatter", index=False, decimals=_decimals(frame)
        )

    fig_frames = [{"name": n, "data": traces(f)} for n, f in zip(names, frames)]
    return go.Figure({"data": traces(frames[-1]), "layout": layout, "frames": fig_frames}, _validate=False)


def _decimals(frame) -> int:
    """Decimal places that keep a frame (n, 2) to about 1/1000 of its spread: at epoch 0 every
    code lies within +-0.1, and two decimals drew them as a lattice."""
    finite = np.asarray(frame, dtype=float)
    finite = finite[np.isfinite(finite).all(axis=1)]
    spread = float(np.ptp(finite, axis=0).max()) if len(finite) else 1.0
    return int(np.clip(3 - np.floor(np.log10(max(spread, 1e-6))), 2, 7))


def _player(names: list[str]) -> dict:
    """Layout entries of an animation over frames ``names``: Play/Pause buttons and a slider on
    the last frame."""
    still = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}
    play = {
        "frame": {"duration": 250, "redraw": False},
        "fromcurrent": False,
        "transition": {"duration": 150},
    }
    buttons = [
        {"label": "Play", "method": "animate", "args": [None, play]},
        {"label": "Pause", "method": "animate", "args": [[None], still]},
    ]
    return {
        "updatemenus": [
            {"type": "buttons", "direction": "left", "x": 0.0, "y": -0.12, "xanchor": "left",
             "yanchor": "top", "pad": {"r": 8, "t": 8}, "buttons": buttons}
        ],
        "sliders": [
            {"active": len(names) - 1, "x": 0.3, "y": -0.08, "len": 0.7, "pad": {"t": 30},
             "currentvalue": {"prefix": "epoch ", "xanchor": "right"},
             "steps": [{"label": n, "method": "animate", "args": [[n], still]} for n in names]}
        ],
    }  # fmt: skip
