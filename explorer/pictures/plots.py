"""Plotly figures for the app: training curves, the manifold grid, per-dimension bars. The latent
space's own figures (scatter, overlays, density, animation) are in ``explorer.pictures.latent_plots``. No
Streamlit here."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

TEST_FALLBACK = "test_recon"  # an autoencoder's test figure, drawn where a VAE's -ELBO goes
FEW_POINTS = 20  # a step series this short is drawn with markers too
PALETTE = qualitative.T10  # ten distinguishable colours: one per class
# (title, row type, key, sign): plotted value = sign * row[key]. Titles of at most 22 characters:
# two fit side by side on a phone (the longer "Reconstruction -log p(x|z) (nats)" ran into the next)
CURVES = (
    ("Train loss (nats)", "step", "train_loss", 1),
    ("Test -ELBO (nats)", "epoch", "test_elbo", -1),  # an autoencoder's: test_recon (TEST_FALLBACK)
    ("-log p(x|z) (nats)", "step", "recon", -1),
    ("KL(q(z|x) || p(z))", "step", "kl", 1),  # nats, as the other three
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
            if key == "test_elbo" and not picked:  # an autoencoder: its -log p(x|z) in this panel
                key = TEST_FALLBACK
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
    if any(TEST_FALLBACK in r and "test_elbo" not in r for rows in runs.values() for r in rows):
        fig.layout.annotations[1].text = "Test -ELBO, AE: -log p(x|z) (nats)"
    fig.update_xaxes(title_text="epoch", row=2)  # the top row's would run into the titles below
    fig.update_layout(
        height=560,
        margin={"l": 40, "r": 10, "t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.12},
        uirevision="curves",
    )
    return fig


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
        # at the top of its box, the picture: a phone cuts the box's blank below it (phone_square)
        "yaxis": {**axis, "title": {"text": titles[1]}, "range": [height, 0], "scaleanchor": "x",
                  "constraintoward": "top",
                  "tickvals": [(i + 0.5) * height / n for i in picks],
                  "ticktext": [f"{values_y[n - 1 - i]:.2f}" for i in picks]},
        "dragmode": False,
    }  # fmt: skip
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


TOOLBAR_BAND = 32  # px at the top of a figure that plotly's toolbar covers while it shows
SUBPLOT_TITLE = 22  # px: the height of a row of subplot titles (16 px text)
TITLE_CHARS = 44  # a figure title's characters on one line of a phone's 390 px screen (17 px bold)
TITLE_GAP = 10  # px between a title and what it names (a line along the plot's top edge touched it)


def readable_titles(fig: go.Figure) -> go.Figure:
    """Keep ``fig``'s titles readable at any width: out of the band at its top that plotly's
    toolbar (modebar) covers while it shows (on a phone, the figure's whole width: it hid the
    Theory and Paper pages' titles), and a long title on two lines (a phone cut it at its edge).
    The figure's title sits just above the plot area, above the top row of subplot titles, and
    the top margin holds the band and them. A figure without titles is left as it is.
    Idempotent (the pages' cached figures pass through it at every view); returns ``fig``."""
    layout = fig.layout
    top_row = [
        a for a in layout.annotations if a.yref == "paper" and a.yanchor == "bottom" and (a.y or 0) >= 0.999
    ]
    subplots = SUBPLOT_TITLE * max((a.text or "").count("<br>") + 1 for a in top_row) if top_row else 0
    title = 0
    if layout.title.text:
        text = _two_lines(layout.title.text)
        size = layout.title.font.size or 17
        line, extra = round(1.3 * size), text.count("<br>")
        title = line * (extra + 1) + TITLE_GAP
        # plotly anchors a title of several lines by its first line's box: each further line hung
        # below y = 1, over the plot area (the Theory page's posterior), unless lifted by its height
        place = {
            "y": 1,
            "yref": "paper",
            "yanchor": "bottom",
            "pad": {"b": subplots + TITLE_GAP + line * extra},
        }
        fig.update_layout(title={"text": text, **place})
    need = TOOLBAR_BAND + title + subplots
    if (title or subplots) and (layout.margin.t is None or layout.margin.t < need):
        fig.update_layout(margin_t=need)
    return fig


def _two_lines(text: str) -> str:
    """``text`` broken at the space nearest its middle when longer than ``TITLE_CHARS`` (and not
    broken already)."""
    if len(text) <= TITLE_CHARS or "<br>" in text or " " not in text:
        return text
    spaces = [i for i, c in enumerate(text) if c == " "]
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return text[:cut] + "<br>" + text[cut + 1 :]
