"""Plotly figures for the app: training curves and the latent scatter. No Streamlit here."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

FEW_POINTS = 20  # a step series this short is drawn with markers too
PALETTE = qualitative.T10  # ten distinguishable colours: one per class
CURVES = (  # (title, row type, key, sign): plotted value = sign * row[key]
    ("Train loss (nats)", "step", "train_loss", 1),
    ("Test -ELBO (nats)", "epoch", "test_elbo", -1),
    ("Reconstruction -log p(x|z) (nats)", "step", "recon", -1),
    ("KL(q(z|x) || p(z)) (nats)", "step", "kl", 1),
)


def training_curves(runs: dict[str, list[dict]], steps_per_epoch: dict[str, int] | None = None) -> go.Figure:
    """Four panels (train loss, test -ELBO, reconstruction, KL) against epochs, one colour per run.

    ``runs`` maps a run name to its metrics rows (``train.read_metrics``). Step rows are placed at
    fractional epochs using ``steps_per_epoch`` when given, else at their epoch number.
    """
    fig = make_subplots(
        rows=2, cols=2, subplot_titles=[c[0] for c in CURVES], horizontal_spacing=0.08, vertical_spacing=0.16
    )
    for i, (name, rows) in enumerate(runs.items()):
        colour = PALETTE[i % len(PALETTE)]
        per_epoch = (steps_per_epoch or {}).get(name)
        for j, (_, kind, key, sign) in enumerate(CURVES):
            picked = [r for r in rows if r.get("type") == kind and key in r]
            if kind == "step" and not picked:  # short runs log only per epoch
                picked = [r for r in rows if r.get("type") == "epoch" and key in r]
            xs = [r["step"] / per_epoch if per_epoch and r["type"] == "step" else r["epoch"] for r in picked]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[None if r[key] is None else sign * r[key] for r in picked],  # null: not finite
                    # Markers where points are few: one point drawn as a line shows nothing.
                    mode="lines+markers" if kind == "epoch" or len(picked) <= FEW_POINTS else "lines",
                    name=name,
                    legendgroup=name,
                    showlegend=j == 0,
                    line={"color": colour},
                    marker={"size": 5},
                ),
                row=j // 2 + 1,
                col=j % 2 + 1,
            )
        bound = [r for r in rows if r.get("type") == "epoch" and "test_bound" in r]
        if bound:  # an iwae run: the bound it trains on, dashed beside its ELBO
            fig.add_trace(
                go.Scatter(
                    x=[r["epoch"] for r in bound],
                    y=[None if r["test_bound"] is None else -r["test_bound"] for r in bound],
                    mode="lines+markers",
                    name=f"{name}: test -L_K (iwae bound)",
                    legendgroup=name,
                    line={"color": colour, "dash": "dash"},
                    marker={"size": 5},
                ),
                row=1,
                col=2,
            )
    fig.update_xaxes(title_text="epoch", row=2)  # the top row's would run into the titles below
    fig.update_layout(
        height=560,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.12},
        uirevision="curves",
    )
    return fig


def latent_scatter(
    points: Sequence[Sequence[float]],
    labels: Sequence[int],
    label_names: Sequence[str] | None = None,
    axis_titles: tuple[str, str] = ("z1", "z2"),
    marker_point: tuple[float, float] | None = None,
    height: int = 560,
) -> go.Figure:
    """WebGL scatter of 2-D points coloured by label, one trace per label (legend toggles them).

    Each point's ``customdata`` is its index in ``points`` (a plain list, so that Streamlit's
    selection hands it back as a number). ``marker_point`` adds a star at that position.
    """
    traces = []
    for k in sorted(set(int(v) for v in labels)):
        idx = [i for i, v in enumerate(labels) if int(v) == k]
        name = label_names[k] if label_names is not None and k < len(label_names) else str(k)
        traces.append(
            {
                "type": "scattergl",
                "mode": "markers",
                "name": name,
                "customdata": idx,
                "x": [float(points[i][0]) for i in idx],
                "y": [float(points[i][1]) for i in idx],
                "marker": {"size": 4, "opacity": 0.7, "color": PALETTE[k % len(PALETTE)]},
                "selected": {"marker": {"size": 9, "opacity": 1.0}},
                "unselected": {"marker": {"opacity": 0.5}},
                "hovertemplate": f"{name}<br>index %{{customdata}}<br>"
                "(%{x:.2f}, %{y:.2f})<extra></extra>",
            }
        )
    if marker_point is not None:
        traces.append(
            {
                "type": "scattergl",  # WebGL, like the dots: drawn after them, so on top
                "mode": "markers",
                "name": "chosen point",
                "hoverinfo": "skip",
                "x": [marker_point[0]],
                "y": [marker_point[1]],
                "marker": {
                    "symbol": "star",
                    "size": 18,
                    "color": "black",
                    "line": {"width": 1.5, "color": "white"},
                },
            }
        )
    layout = {
        "height": height,
        # A top margin for plotly's toolbar: at 10 pixels it covered the legend's first entry.
        "margin": {"l": 40, "r": 10, "t": 36, "b": 40},
        "showlegend": True,
        "legend": {"itemsizing": "constant", "y": 1, "yanchor": "top"},
        "dragmode": "pan",
        "uirevision": "scatter",
        "xaxis": {"title": {"text": axis_titles[0]}, "constrain": "domain"},
        "yaxis": {
            "title": {"text": axis_titles[1]},
            "constrain": "domain",
            "scaleanchor": "x",
            "scaleratio": 1,
        },
    }
    # Built from plain dicts without plotly's validators: ten times faster for thousands of
    # points, which keeps a slider move on the Manifold page quick. The keys above are checked by
    # the tests against plotly's own validation.
    fig = go.Figure({"data": traces, "layout": layout}, _validate=False)
    return fig


# -- overlays on the latent scatter -----------------------------------------------------------------
# The scatter's dots are WebGL ("scattergl"), and plotly paints its WebGL layer above every SVG
# ("scatter") trace: an SVG overlay would vanish under a dense cluster. So every overlay is WebGL
# too, added after the dots: painted in trace order, it lies on top.


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
        }
    )


def add_points(
    fig: go.Figure, points, names: Sequence[str], colour: str = "black", symbol: str = "star"
) -> None:
    """Labelled markers (N, 2): an upload, a drawing, the chosen test image."""
    fig.add_trace(
        {
            "type": "scattergl",
            "mode": "markers+text",
            "name": "your images" if len(names) > 1 else names[0],
            "x": [float(p[0]) for p in points],
            "y": [float(p[1]) for p in points],
            "text": list(names),
            "textposition": "top center",
            "textfont": {"size": 12},
            "marker": {
                "symbol": symbol,
                "size": 16,
                "color": colour,
                "line": {"width": 1.5, "color": "white"},
            },
            "hovertemplate": "%{text}<br>(%{x:.2f}, %{y:.2f})<extra></extra>",
        }
    )


def add_path(fig: go.Figure, points, name: str, colour: str = "black") -> None:
    """An interpolation path (N, 2) with its steps marked and its two ends labelled A and B."""
    xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
    fig.add_trace(
        {
            "type": "scattergl",
            "mode": "lines+markers+text",
            "name": name,
            "x": xs,
            "y": ys,
            "text": ["A"] + [""] * (len(xs) - 2) + ["B"],
            "textposition": "top center",
            "textfont": {"size": 14, "color": colour},
            "line": {"color": colour, "width": 2},
            "marker": {"size": 7, "color": colour, "line": {"width": 1, "color": "white"}},
            "hovertemplate": f"{name}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
        }
    )


def manifold_figure(
    png: bytes, values_x: Sequence[float], values_y: Sequence[float], titles: tuple[str, str]
) -> go.Figure:
    """The decoded latent grid (a PNG of n x n tiles) with the z value of the tile centres on its
    axes: ``values_x`` left to right, ``values_y`` bottom to top."""
    import base64
    import io

    from PIL import Image

    width, height = Image.open(io.BytesIO(png)).size
    n = len(values_x)
    picks = sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1})
    data = [
        {
            "type": "image",
            "source": "data:image/png;base64," + base64.b64encode(png).decode(),
            "x0": 0,
            "y0": 0,
            "dx": 1,
            "dy": 1,
            "hoverinfo": "skip",
        }
    ]
    axis = {"showgrid": False, "zeroline": False, "ticks": "outside", "constrain": "domain"}
    layout = {
        "height": 500,  # the picture keeps its shape (scaleanchor) within the column's width
        "margin": {"l": 60, "r": 10, "t": 10, "b": 50},
        "xaxis": {**axis, "title": {"text": titles[0]}, "range": [0, width],
                  "tickvals": [(i + 0.5) * width / n for i in picks],
                  "ticktext": [f"{values_x[i]:.2f}" for i in picks]},
        "yaxis": {**axis, "title": {"text": titles[1]}, "range": [height, 0], "scaleanchor": "x",
                  "tickvals": [(i + 0.5) * height / n for i in picks],
                  "ticktext": [f"{values_y[n - 1 - i]:.2f}" for i in picks]},
        "dragmode": False,
    }  # fmt: skip
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def prior_vs_posterior(dmap, axis_titles: tuple[str, str] = ("z1", "z2"), height: int = 560) -> go.Figure:
    """The aggregate posterior's density (shaded, log scale), the prior's 1/2/3-sigma circles, and
    the holes: the prior's 2-sigma disc where the data put less than a tenth of its density."""
    import numpy as np

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


def kl_bars(
    kl_per_dim: Sequence[float], variance: Sequence[float], threshold: float, height: int = 300
) -> go.Figure:
    """KL(q(z_j|x) || N(0, 1)) per latent dimension, averaged over the test set; active units
    (variance over x of E_q[z_j] above ``threshold``) in colour, collapsed ones in grey."""
    active = [v > threshold for v in variance]
    dims = [f"z{j + 1}" for j in range(len(kl_per_dim))]
    data = [
        {
            "type": "bar",
            "x": dims,
            "y": [round(float(k), 4) for k in kl_per_dim],
            "marker": {"color": [PALETTE[0] if a else "#bbbbbb" for a in active]},
            "customdata": [
                [round(float(v), 4), "active" if a else "inactive"] for v, a in zip(variance, active)
            ],
            "hovertemplate": "%{x}: KL %{y:.3f} nats<br>Var_x E[z] = %{customdata[0]}"
            " (%{customdata[1]})<extra></extra>",
            "name": "KL per dimension",
        }
    ]
    layout = {
        "height": height,
        "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
        "yaxis": {"title": {"text": "KL (nats)"}},
        "xaxis": {"type": "category"},
        "showlegend": False,
    }
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def posterior_bars(mu: Sequence[float], sigma: Sequence[float], height: int = 220) -> go.Figure:
    """The mean of q(z|x) per latent dimension as bars, with +/- one standard deviation as error
    bars: one image's posterior, readable for any number of dimensions."""
    dims = [f"z{j + 1}" for j in range(len(mu))]
    data = [
        {
            "type": "bar",
            "x": dims,
            "y": [round(float(m), 4) for m in mu],
            "error_y": {"type": "data", "array": [round(float(s), 4) for s in sigma], "color": "#555555"},
            "marker": {"color": PALETTE[0]},
            "customdata": [round(float(s), 4) for s in sigma],
            "hovertemplate": "%{x}: mean %{y:.2f}, sd %{customdata:.2f}<extra></extra>",
        }
    ]
    layout = {
        "height": height,
        "margin": {"l": 50, "r": 10, "t": 10, "b": 30},
        "yaxis": {"title": {"text": "E_q[z] +/- sd"}, "zeroline": True},
        "xaxis": {"type": "category"},
        "showlegend": False,
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
    """The snapshots (E, n, 2) as an animated scatter with a play button and an epoch slider,
    opening on the last epoch; fixed axes so that the points move, not the frame."""
    import numpy as np

    frames = np.asarray(frames)
    labels = np.asarray(labels)
    classes = sorted(set(int(v) for v in labels))
    lo = np.percentile(frames.reshape(-1, 2), 0.5, axis=0)
    hi = np.percentile(frames.reshape(-1, 2), 99.5, axis=0)
    pad = 0.08 * (hi - lo) + 1e-3

    def traces(frame):
        out = []
        for k in classes:
            pts = frame[labels == k]
            name = label_names[k] if label_names is not None and k < len(label_names) else str(k)
            out.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": name,
                    "x": pts[:, 0].round(2).tolist(),
                    "y": pts[:, 1].round(2).tolist(),
                    "marker": {"size": 4, "opacity": 0.7, "color": PALETTE[k % len(PALETTE)]},
                    "hoverinfo": "skip",
                }
            )
        return out

    names = [str(e) for e in epochs]
    layout = {
        "height": height,
        "margin": {"l": 40, "r": 10, "t": 40, "b": 10},
        "xaxis": {"title": {"text": axis_titles[0]}, "range": [float(lo[0] - pad[0]), float(hi[0] + pad[0])]},
        "yaxis": {"title": {"text": axis_titles[1]}, "range": [float(lo[1] - pad[1]), float(hi[1] + pad[1])]},
        "legend": {"itemsizing": "constant", "orientation": "h", "y": 1.02, "yanchor": "bottom"},
        "updatemenus": [
            {
                "type": "buttons",
                "direction": "left",
                "x": 0.0,
                "y": -0.12,
                "xanchor": "left",
                "yanchor": "top",
                "pad": {"r": 8, "t": 8},
                "buttons": [
                    {
                        "label": "Play",
                        "method": "animate",
                        "args": [
                            None,
                            {
                                "frame": {"duration": 250, "redraw": False},
                                "fromcurrent": False,
                                "transition": {"duration": 150},
                            },
                        ],
                    },
                    {
                        "label": "Pause",
                        "method": "animate",
                        "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}],
                    },
                ],
            }
        ],
        "sliders": [
            {
                "active": len(names) - 1,
                "x": 0.3,
                "y": -0.08,
                "len": 0.7,
                "currentvalue": {"prefix": "epoch ", "xanchor": "right"},
                "pad": {"t": 30},
                "steps": [
                    {
                        "label": n,
                        "method": "animate",
                        "args": [[n], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}],
                    }
                    for n in names
                ],
            }
        ],
    }
    layout["margin"]["b"] = 110
    fig_frames = [{"name": n, "data": traces(f)} for n, f in zip(names, frames)]
    return go.Figure({"data": traces(frames[-1]), "layout": layout, "frames": fig_frames}, _validate=False)
