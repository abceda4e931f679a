"""Plotly figures and sentences of the Paper page: Figure 2's panels as the paper lays them out,
and what the curves measured. No Streamlit here."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.paper.curves import value_at

COLOURS = {"aevb": "#d62728", "wake-sleep": "#1f77b4"}  # red and blue, as the paper's Figure 2
NAMES = {"aevb": "AEVB", "wake-sleep": "Wake-Sleep"}
Y_RANGE = {"mnist": (-150, -95), "frey-face": (0, 1600)}  # the paper's y-axes, nats per datapoint
X_RANGE = (1e5, 1e8)  # the paper's x-axis: training samples evaluated
GAP_AT = 1_000_000  # the sample count the page quotes the gap at, beside the last point


PANELS_PER_ROW = 3  # five panels in one row were unreadable on a phone; two rows of three are not
PAPER_BOX = "rgba(0, 0, 0, 0.05)"  # the paper's axes, shaded in every panel
BELOW = "triangle-down"  # a point under the y-axis, drawn at its foot


def figure2_axes(curves: list[dict], dataset: str) -> tuple[list[float], list[float]]:
    """Figure 2's x-range (log10 of training samples) and y-range (nats): every sample count of
    every curve of ``dataset``, and the paper's y-range widened to hold every point from the
    paper's first sample count (10^5) on. Points before it lie far below (-660 nats at 10^3): an
    axis holding them would squeeze the paper's range to a tenth of the panel, so they are drawn
    at the axis' foot (``figure2``) and counted under the panels (``axes_sentence``)."""
    mine = [c for c in curves if c["dataset"] == dataset and c["points"]]
    first = min((p[0] for c in mine for p in c["points"]), default=X_RANGE[0])
    values = [p[k] for c in mine for p in c["points"] if p[0] >= X_RANGE[0] for k in (1, 2)]
    every = [p[k] for c in mine for p in c["points"] for k in (1, 2)]
    lo, hi = Y_RANGE.get(dataset, (min(every, default=0), max(every, default=1)))
    return [math.log10(min(first, X_RANGE[0])) - 0.05, math.log10(X_RANGE[1])], [
        min([lo, *values]) - 2,
        max([hi, *every]) + 2,
    ]


def figure2(curves: list[dict], dataset: str, sizes: tuple[int, ...]) -> go.Figure:
    """One panel per latent size of ``dataset`` (rows of ``PANELS_PER_ROW``): each algorithm's
    bound on the training set (solid) and the test set (dashed) against training samples evaluated
    (log scale), on the axes of ``figure2_axes``, the paper's own axes shaded. A point under the
    y-axis is drawn as a triangle at its foot, its value on hover. Shipped curves are lines; a
    user's own runs (``source`` other than "shipped") are drawn on top, with markers."""
    titles = [f"N<sub>z</sub> = {n}" for n in sizes]  # the tab names the dataset; short titles fit a phone
    cols = min(PANELS_PER_ROW, len(sizes))
    rows = math.ceil(len(sizes) / cols)
    specs = [[{} if r * cols + c < len(sizes) else None for c in range(cols)] for r in range(rows)]
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.04, specs=specs,
                        vertical_spacing=0.16, subplot_titles=titles)  # fmt: skip
    xrange, yrange = figure2_axes(curves, dataset)
    shown = set()
    for i, nz in enumerate(sizes):
        row, col = i // cols + 1, i % cols + 1
        under: list[tuple] = []  # this panel's points under the y-axis, drawn as one trace
        for c in sorted((c for c in curves if c["dataset"] == dataset and c["nz"] == nz),
                        key=lambda c: c.get("source") != "shipped"):  # fmt: skip
            under += _curve_traces(fig, c, yrange[0], shown, row, col)
        _below_axis(fig, under, yrange[0], row, col)
        if not any(c["dataset"] == dataset and c["nz"] == nz for c in curves):  # an empty frame says why
            fig.add_trace(
                go.Scatter(x=[X_RANGE[0]], y=[None], showlegend=False, hoverinfo="skip"), row=row, col=col
            )
            axis = i + 1 if i else ""
            fig.add_annotation(text="no curve yet", x=6.5, y=0.5, xref=f"x{axis}", yref=f"y{axis} domain",
                               showarrow=False, font={"color": "#888"})  # fmt: skip
        lo, hi = Y_RANGE.get(dataset, yrange)
        fig.add_shape(type="rect", x0=X_RANGE[0], x1=X_RANGE[1], y0=lo, y1=hi, fillcolor=PAPER_BOX,
                      line={"width": 0}, layer="below", row=row, col=col)  # fmt: skip
        decades = range(math.ceil(xrange[0]), 8, 2 if xrange[1] - xrange[0] > 4.5 else 1)  # a phone: 3 fit
        fig.update_xaxes(type="log", range=xrange, tickvals=[10**k for k in decades],
                         # 10^8 ends the axis unlabelled: on a phone its label ran into the next panel's
                         ticktext=[f"10{str(k).translate(SUPERSCRIPT)}" for k in decades],
                         # one axis title, under the bottom row's first panel: two ran together on a phone
                         title_text="training samples" if row == rows and col == 1 else None,
                         title_standoff=4, row=row, col=col)  # fmt: skip
    fig.update_yaxes(range=yrange)
    for row in range(1, rows + 1):
        fig.update_yaxes(title_text="bound (nats)", row=row, col=1)
    fig.update_layout(height=300 * rows + 60, margin={"l": 60, "r": 10, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.08, "x": 0})  # fmt: skip
    return fig


SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _curve_traces(fig: go.Figure, c: dict, floor: float, shown: set, row: int, col: int) -> list[tuple]:
    """One curve's training (solid) and test (dashed) lines in one panel; returns its points
    below the y-axis' foot (``floor``): (samples, nats, colour, name) each."""
    mine = c.get("source") != "shipped"
    xs = [p[0] for p in c["points"]]
    colour = COLOURS.get(c["algorithm"], "#555")
    under = []
    for column, dash, split in ((1, "solid", "train"), (2, "dash", "test")):
        name = f"{NAMES.get(c['algorithm'], c['algorithm'])} {split}" + (" (yours)" if mine else "")
        ys = [p[column] for p in c["points"]]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, name=name, legendgroup=name, showlegend=name not in shown,
            mode="lines+markers" if mine else "lines", marker={"size": 4}, opacity=0.75 if mine else 1.0,
            line={"color": colour, "dash": dash, "width": 2 - mine / 2},
            hovertemplate="%{x:.3s} samples: %{y:.1f} nats<extra>" + name + "</extra>",
        ), row=row, col=col)  # fmt: skip
        under += [(x, y, colour, name) for x, y in zip(xs, ys) if y < floor]
        shown.add(name)
    return under


def _below_axis(fig: go.Figure, under: list[tuple], floor: float, row: int, col: int) -> None:
    """A panel's points under its y-axis (samples, nats, colour, name) as triangles at the axis'
    foot, their values on hover: one trace for the panel (a trace per curve doubled the figure's
    traces, and plotly's drawing time with them)."""
    if not under:
        return
    fig.add_trace(go.Scatter(
        x=[u[0] for u in under], y=[floor] * len(under), customdata=[[u[1], u[3]] for u in under],
        mode="markers", showlegend=False, cliponaxis=False,
        marker={"symbol": BELOW, "size": 7, "color": [u[2] for u in under], "opacity": 0.6},
        hovertemplate="%{x:.3s} samples: %{customdata[0]:.1f} nats (below the axis)"
        "<extra>%{customdata[1]}</extra>",
    ), row=row, col=col)  # fmt: skip


def axes_sentence(curves: list[dict], dataset: str, sizes: tuple[int, ...]) -> str:
    """What Figure 2's axes show against the paper's: the shaded box, how far ours reach beyond
    it to show every point, and the early points drawn at the y-axis' foot (how many, of how many
    curves, up to which sample count, the lowest with its panel)."""
    xrange, (floor, top) = figure2_axes(curves, dataset)
    lo, hi = Y_RANGE.get(dataset, (floor, top))
    text = (
        f"The shaded box in each panel is the paper's axes ({_samples(X_RANGE[0])} to "
        f"{_samples(X_RANGE[1])} samples, {lo:g} to {hi:g} nats). Ours reach back to "
        f"{_samples(10 ** math.ceil(xrange[0]))} samples, to show every sample count"
        + (
            f", and down to {floor:.0f} nats, to hold every point from {_samples(X_RANGE[0])} on"
            if floor < lo
            else ""
        )
    )
    under = []  # (samples, nats, N_z, algorithm) of each point under the axis
    for c in (c for c in curves if c["dataset"] == dataset and c["nz"] in sizes):
        name = NAMES.get(c["algorithm"], c["algorithm"]) + (
            " (yours)" if c.get("source") != "shipped" else ""
        )
        under += [(p[0], min(p[1], p[2]), c["nz"], name) for p in c["points"] if min(p[1], p[2]) < floor]
    if not under:
        return text + "."
    low, curves_below = min(under, key=lambda u: u[1]), len({u[2:] for u in under})
    return text + (
        f"; the {len(under)} earlier points that lie lower (of {curves_below} curves, all before "
        f"{_samples(max(u[0] for u in under))} samples) are drawn as ▼ at the axis' foot, their values on "
        f"hover: the lowest is {low[1]:.1f} nats (N_z = {low[2]}, {low[3]}, at {_samples(low[0])} samples)."
    )


def gap_sentence(curves: list[dict], dataset: str, nz: int) -> str:
    """What the panel measured, in one sentence: AEVB's test bound minus wake-sleep's, in nats, at
    ``GAP_AT`` samples and at the last point both reached (shipped curves when there are, else the
    user's)."""
    pair = {}
    for c in curves:
        if c["dataset"] == dataset and c["nz"] == nz:
            if c["algorithm"] not in pair or c.get("source") == "shipped":
                pair[c["algorithm"]] = c
    if set(pair) != {"aevb", "wake-sleep"}:
        missing = " and ".join(NAMES[a] for a in ("aevb", "wake-sleep") if a not in pair)
        return f"N_z = {nz}: no {missing} curve yet."
    a, w = pair["aevb"]["points"], pair["wake-sleep"]["points"]
    last = min(a[-1][0], w[-1][0])
    parts = []
    for at in (GAP_AT, last):
        gap = _gap(a, w, at)
        if gap is not None and not (at == last and parts and last == GAP_AT):
            parts.append(f"{gap:+.1f} nats at {_samples(at)} samples")
    if not parts:
        return f"N_z = {nz}: the curves do not reach 10^6 samples yet (last common point {_samples(last)})."
    lead = (
        "AEVB's test bound is above wake-sleep's"
        if _gap(a, w, last) > 0
        else "AEVB's test bound is below wake-sleep's"
    )
    return f"N_z = {nz}: {lead}: " + ", ".join(parts) + " (AEVB minus wake-sleep)."


def _gap(a: list, w: list, at: float) -> float | None:
    va, vw = value_at(a, at, 2), value_at(w, at, 2)
    return None if va is None or vw is None else va - vw


def _samples(n: float) -> str:
    exponent = math.floor(math.log10(n))
    mantissa = n / 10**exponent
    return f"10^{exponent}" if abs(mantissa - 1) < 1e-9 else f"{mantissa:.1f}x10^{exponent}"


FIGURE3_COLOURS = {**COLOURS, "mcem": "#2ca02c"}  # Monte Carlo EM in green
FIGURE3_NAMES = {**NAMES, "mcem": "MCEM"}


def figure3(curves: list[dict], sizes: tuple[int, ...]) -> go.Figure:
    """Figure 3's panels, one per training-set size: the marginal log-likelihood (the paper's
    Appendix D estimator) of each algorithm on the training set (solid) and the test set (dashed)
    against training samples evaluated, log scale."""
    titles = [f"N<sub>train</sub> = {n:,}" for n in sizes]  # MNIST, as the page says; short: a phone
    fig = make_subplots(
        rows=1, cols=len(sizes), shared_yaxes=True, horizontal_spacing=0.08, subplot_titles=titles
    )
    shown = set()
    for col, n in enumerate(sizes, start=1):
        for c in (c for c in curves if c.get("n_train") == n):
            mine = c.get("source") != "shipped"
            for column, dash, split in ((1, "solid", "train"), (2, "dash", "test")):
                name = f"{FIGURE3_NAMES.get(c['algorithm'], c['algorithm'])} {split}" + (
                    " (yours)" if mine else ""
                )
                fig.add_trace(
                    go.Scatter(
                        x=[p[0] for p in c["points"]], y=[p[column] for p in c["points"]], name=name,
                        legendgroup=name, showlegend=name not in shown, mode="lines+markers",
                        line={"color": FIGURE3_COLOURS.get(c["algorithm"], "#555"), "dash": dash},
                        marker={"size": 4},
                        hovertemplate="%{x:.3s} samples: %{y:.1f} nats<extra>" + name + "</extra>",
                    ),
                    row=1, col=col,
                )  # fmt: skip
                shown.add(name)
        fig.update_xaxes(
            type="log", dtick=1, exponentformat="power", title_text="training samples", row=1, col=col
        )
    fig.update_yaxes(title_text="log p(x) (nats)", row=1, col=1)
    # panels apart and the legend below the axis titles: on a phone the left panel's 10^6 touched
    # the right one's 10^4, and the legend's first row ran into "training samples"
    fig.update_layout(height=390, margin={"l": 60, "r": 10, "t": 40, "b": 95},
                      legend={"orientation": "h", "y": -0.36, "x": 0})  # fmt: skip
    return fig


def ordering_sentence(curves: list[dict], n_train: int) -> str:
    """The algorithms of one Figure 3 panel ordered by their test log-likelihood at the last
    sample count every curve of the panel reached (as Figure 2's gaps are compared), then where
    the longer curves went on to, and whether the training figure runs ahead of the test one at
    the end (over-fitting: more than 2 nats)."""
    panel = [c for c in curves if c.get("n_train") == n_train and c["points"]]
    yours = [c for c in panel if c.get("source") not in (None, "shipped")]
    said_yours = "; ".join(
        f"{FIGURE3_NAMES.get(c['algorithm'], c['algorithm'])} {c['points'][-1][2]:.1f} at "
        f"{_samples(c['points'][-1][0])}"
        for c in yours
    )  # said apart: a short run of one's own moved the shipped curves' comparison point, unnamed
    mine = [c for c in panel if c not in yours] or yours
    if not mine:
        return f"N_train = {n_train:,}: no curves yet."
    common = min(c["points"][-1][0] for c in mine)
    at = {id(c): value_at(c["points"], common, 2) for c in mine}
    ranked = sorted((c for c in mine if at[id(c)] is not None), key=lambda c: -at[id(c)])
    name = lambda c: FIGURE3_NAMES.get(c["algorithm"], c["algorithm"])  # noqa: E731
    parts = [f"{name(c)} {at[id(c)]:.1f}" for c in ranked]
    longer = [
        f"{name(c)} {c['points'][-1][2]:.1f} at {_samples(c['points'][-1][0])}"
        for c in ranked
        if c["points"][-1][0] > common
    ]
    on = f" Further on: {'; '.join(longer)}." if longer else ""
    gaps = [name(c) for c in ranked if c["points"][-1][1] - c["points"][-1][2] > 2]
    tail = (
        f" The training set's figure runs more than 2 nats above the test set's for {', '.join(gaps)}: "
        "over-fitting, as the paper's small-training-set panel shows."
        if gaps
        else ""
    )
    return (
        f"N_train = {n_train:,}: test log-likelihood at {_samples(common)} samples (the last all "
        f"reached), best first: "
        + "; ".join(parts)
        + "."
        + on
        + tail
        + (f" Yours: {said_yours}." if said_yours and mine is not yours else "")
    )
