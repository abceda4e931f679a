"""Plotly figures for the app: training curves and the latent scatter. No Streamlit here."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

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
                    y=[sign * r[key] for r in picked],
                    mode="lines+markers" if kind == "epoch" else "lines",
                    name=name,
                    legendgroup=name,
                    showlegend=j == 0,
                    line={"color": colour},
                    marker={"size": 5},
                ),
                row=j // 2 + 1,
                col=j % 2 + 1,
            )
    fig.update_xaxes(title_text="epoch")
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
                "type": "scatter",
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
        "margin": {"l": 40, "r": 10, "t": 10, "b": 40},
        "showlegend": True,
        "legend": {"itemsizing": "constant"},
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
