"""The Theory page's plotly figures, one per experiment; numbers in, figures out, no Streamlit."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from explorer.theory.divergences import KLFits
from explorer.theory.evidence import Evidence
from explorer.theory.gradients import ESTIMATORS, NAMES, GradientVariance
from explorer.theory.mean_field import MeanField
from explorer.theory.mixtures import CaviState, Mixture

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
P_COLOUR, Q_COLOUR, FORWARD_COLOUR = "#222222", "#d62728", "#1f77b4"
HEIGHT = 420


def _layout(fig: go.Figure, title: str, x: str, y: str, square: bool = False) -> go.Figure:
    fig.update_layout(
        title=title,
        height=HEIGHT,
        margin=dict(l=50, r=20, t=50, b=45),
        xaxis_title=x,
        yaxis_title=y,
        # below the axis title, in the figure's own space: plotly makes room for it there
        legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0),
        template="plotly_white",
    )
    if square:
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def ellipse(mean: np.ndarray, cov: np.ndarray, radius: float = 2.0, points: int = 90) -> np.ndarray:
    """Outline (points + 1, 2) of the ``radius``-sd contour of N(mean, cov) in 2-D."""
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(2))
    angle = np.linspace(0, 2 * math.pi, points + 1)
    return mean + radius * (chol @ np.stack([np.cos(angle), np.sin(angle)])).T


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


def blend(resp: np.ndarray) -> list[str]:
    """Each point's colour: its components' colours mixed by its responsibilities (N, K)."""
    palette = np.stack([_rgb(COLOURS[k % len(COLOURS)]) for k in range(resp.shape[1])])
    mixed = resp @ palette
    return [f"rgb({r:.0f},{g:.0f},{b:.0f})" for r, g, b in mixed]


PLANE_REACH = 6.0  # the clickable plane spans at least [-this, this]^2
PLANE_MARGIN = 1.5  # and reaches this far past the data
PLANE_STEP = 0.1  # its finest spacing; at most PLANE_POINTS points per axis
PLANE_POINTS = 101


def click_plane(x: np.ndarray) -> np.ndarray:
    """Points (P, 2) of a regular grid over the EM figure's plane: the data's (N, 2) extent plus
    ``PLANE_MARGIN``, at least [-PLANE_REACH, PLANE_REACH]^2, at most ``PLANE_POINTS`` per axis.
    Drawn invisibly under the data, they make a click anywhere on the plane select a point."""
    lo = np.minimum(x.min(0) - PLANE_MARGIN, -PLANE_REACH) if len(x) else np.full(2, -PLANE_REACH)
    hi = np.maximum(x.max(0) + PLANE_MARGIN, PLANE_REACH) if len(x) else np.full(2, PLANE_REACH)
    count = np.minimum(np.ceil((hi - lo) / PLANE_STEP).astype(int) + 1, PLANE_POINTS)
    a, b = (np.round(np.linspace(lo[i], hi[i], count[i]), 3) for i in (0, 1))
    return np.stack(np.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)


def outlines_reach(mixtures) -> np.ndarray:
    """Points (M, 2) at the far ends of every component's 2-sd ellipse in ``mixtures`` (every step
    of an EM run): with the data, what the EM figure's plane must take in so that no step's
    ellipse is cut at the plot's edge (the start's broad ones were) and the axes hold still from
    step to step."""
    ends = [ellipse(mu, cov, 2.0) for m in mixtures for mu, cov in zip(m.means, m.covariances)]
    return np.concatenate(ends) if ends else np.zeros((0, 2))


def em_figure(
    x: np.ndarray,
    mixture: Mixture | None,
    resp: np.ndarray | None,
    title: str,
    plane: np.ndarray | None = None,
    clicked: int = 0,
) -> go.Figure:
    """The points coloured by their responsibilities, each component's mean and 1-, 2-sd ellipses
    (without a mixture: the points alone, in grey). ``plane`` (P, 2): clickable points drawn
    invisibly as the first trace (curve 0), under everything else, with no hover label. The last
    ``clicked`` points are the user's clicks, drawn as diamonds."""
    fig = go.Figure()
    colours = blend(resp) if resp is not None else "#777777"
    fig.add_trace(
        go.Scatter(
            x=x[:, 0],
            y=x[:, 1],
            mode="markers",
            name="data (colour: responsibilities)" if resp is not None else "data",
            marker=dict(
                color=colours,
                size=[6] * (len(x) - clicked) + [11] * clicked,
                symbol=["circle"] * (len(x) - clicked) + ["diamond"] * clicked,
                opacity=0.8,
            ),
            unselected=dict(marker=dict(opacity=0.8)),
        )
    )
    if mixture is not None:
        _add_components(fig, mixture)
    _layout(fig, title, "x1", "x2", square=True)
    if plane is not None:  # the axes show the plane and no more (the plot shrinks to keep x and y alike)
        lo, hi = plane.min(0), plane.max(0)
        fig.update_xaxes(range=[lo[0], hi[0]], constrain="domain")
        fig.update_yaxes(range=[lo[1], hi[1]], constrain="domain")
        # The plane's 10,000 points as a plain dict, first (curve 0), without plotly's validators:
        # validated, they took 0.14 s of every run of the page (bench/pages.py: the Theory page).
        spec = fig.to_plotly_json()
        data = [_plane_trace(plane), *spec["data"]]
        fig = go.Figure({"data": data, "layout": spec["layout"]}, _validate=False)
    return fig


def _plane_trace(plane: np.ndarray) -> dict:
    """The EM figure's clickable plane (P, 2): invisible WebGL markers with no hover label."""
    clear = "rgba(0,0,0,0)"
    return {
        "type": "scattergl",
        "x": plane[:, 0].tolist(),
        "y": plane[:, 1].tolist(),
        "mode": "markers",
        "name": "the plane (click to add a point)",
        "marker": {"color": clear, "size": 8},
        "hoverinfo": "none",
        "showlegend": False,
        "selected": {"marker": {"color": clear}},
        "unselected": {"marker": {"color": clear, "opacity": 0}},
    }


def _add_components(fig: go.Figure, mixture: Mixture) -> None:
    """Each component's mean (a cross, its weight in the legend) and its 1- and 2-sd ellipses."""
    for k, (w, mu, cov) in enumerate(zip(mixture.weights, mixture.means, mixture.covariances)):
        colour = COLOURS[k % len(COLOURS)]
        for radius in (1.0, 2.0):
            e = ellipse(mu, cov, radius)
            fig.add_trace(
                go.Scatter(
                    x=e[:, 0],
                    y=e[:, 1],
                    mode="lines",
                    showlegend=False,
                    hoverinfo="skip",
                    line=dict(color=colour, width=2 if radius == 1 else 1),
                )
            )
        fig.add_trace(
            go.Scatter(
                x=[mu[0]],
                y=[mu[1]],
                mode="markers",
                name=f"component {k + 1}: pi = {w:.2f}",
                marker=dict(color=colour, size=13, symbol="x", line=dict(width=1)),
            )
        )


def curve_figure(values: list[float], current: int, title: str, y: str) -> go.Figure:
    """A quantity per iteration (EM's log-likelihood, CAVI's ELBO), the current one marked."""
    steps = list(range(len(values)))
    fig = go.Figure(go.Scatter(x=steps, y=values, mode="lines+markers", name=y, line=dict(color=P_COLOUR)))
    fig.add_trace(
        go.Scatter(
            x=[current], y=[values[current]], mode="markers", name="now", marker=dict(color=Q_COLOUR, size=12)
        )
    )
    return _layout(fig, title, "iteration", y)


def kl_figure(fits: KLFits) -> go.Figure:
    """The bimodal target and the two fitted Gaussians (KL(p||q): mass-covering; KL(q||p): mode-seeking)."""
    fig = go.Figure()
    traces = (
        (fits.log_p, "target p(z)", P_COLOUR, "solid"),
        (fits.log_q("forward"), "q minimising KL(p || q)", FORWARD_COLOUR, "dash"),
        (fits.log_q("reverse"), "q minimising KL(q || p)", Q_COLOUR, "dot"),
    )
    for log_density, name, colour, dash in traces:
        fig.add_trace(
            go.Scatter(
                x=fits.grid,
                y=np.exp(log_density),
                mode="lines",
                name=name,
                line=dict(color=colour, dash=dash, width=3),
            )
        )
    # both modes with their tails, and the mass-covering q's: around the mean alone, a heavy mode
    # pulled the view off the other one (weight 0.95, modes at +-4: the right mode was cut off)
    (left, right), spread = fits.target.modes, 4 * fits.target.sd
    wide = 3 * math.sqrt(fits.target.variance)
    low, high = min(left - spread, fits.target.mean - wide), max(right + spread, fits.target.mean + wide)
    fig.update_xaxes(range=[low, high])
    title = "bimodal target" if fits.target.separation > 0 else "Gaussian target (the modes meet)"
    return _layout(fig, f"A Gaussian fitted to a {title}, both ways", "z", "density")


def mean_field_figure(mf: MeanField) -> go.Figure:
    """p's 2-sd ellipse, the factorised q's where CAVI's path ends, the product of p's marginals,
    and CAVI's path."""
    fig = go.Figure()
    for mean, cov, name, colour, dash in (
        (mf.mu, mf.cov, "target p(z): 2-sd contour", P_COLOUR, "solid"),
        # q where CAVI left it: at strong correlation each sweep closes only 1 - rho^2 of the way,
        # and q drawn at the optimum (0, 0) contradicted the path ending beside it
        (
            mf.path[-1],
            mf.q_cov,
            f"mean-field q after {len(mf.path) - 1} CAVI updates (KL(q || p)): 2 sd",
            Q_COLOUR,
            "solid",
        ),  # fmt: skip
        (
            mf.mu,
            np.diag(mf.marginal_variances),
            "product of p's marginals (KL(p || q)): 2 sd",
            FORWARD_COLOUR,
            "dash",
        ),
    ):
        e = ellipse(mean, cov)
        fig.add_trace(
            go.Scatter(x=e[:, 0], y=e[:, 1], mode="lines", name=name, line=dict(color=colour, dash=dash))
        )
    fig.add_trace(
        go.Scatter(
            x=mf.path[:, 0],
            y=mf.path[:, 1],
            mode="lines+markers",
            name="CAVI: q's mean per update",
            line=dict(color="#2ca02c", width=1),
            marker=dict(size=5),
        )
    )
    return _layout(fig, "Mean field on a correlated Gaussian", "z1", "z2", square=True)


def cavi_figure(x: np.ndarray, state: CaviState) -> go.Figure:
    """The data coloured by q(c_n), and each q(mu_k)'s mean with a 2-sd circle (sd = s_k)."""
    fig = go.Figure(
        go.Scatter(
            x=x[:, 0],
            y=x[:, 1],
            mode="markers",
            name="data (colour: q(c))",
            marker=dict(color=blend(state.phi), size=6, opacity=0.8),
        )
    )
    for k, (m, s2) in enumerate(zip(state.m, state.s2)):
        colour = COLOURS[k % len(COLOURS)]
        e = ellipse(m, s2 * np.eye(2))
        fig.add_trace(
            go.Scatter(x=e[:, 0], y=e[:, 1], mode="lines", showlegend=False, line=dict(color=colour))
        )
        fig.add_trace(
            go.Scatter(
                x=[m[0]],
                y=[m[1]],
                mode="markers",
                name=f"q(mu_{k + 1})",
                marker=dict(color=colour, size=13, symbol="x"),
            )
        )
    return _layout(fig, "CAVI for the Bayesian mixture of Gaussians", "x1", "x2", square=True)


def posterior_figure(ev: Evidence) -> go.Figure:
    """The true posterior p(z|x) on the grid (filled contours) with q(z|x)'s 1- and 2-sd ellipses."""
    fig = go.Figure(
        go.Contour(
            x=ev.z1,
            y=ev.z2,
            z=ev.posterior.T,
            colorscale=[[0, "#ffffff"], [1, "#111111"]],
            ncontours=14,
            showscale=False,
            name="p(z|x)",
            hovertemplate="z1 %{x:.3f}<br>z2 %{y:.3f}<br>p(z|x) %{z:.3g}<extra></extra>",
        )
    )
    for radius in (1.0, 2.0):
        e = ellipse(ev.mu, np.diag(ev.sigma**2), radius)
        fig.add_trace(
            go.Scatter(
                x=e[:, 0],
                y=e[:, 1],
                mode="lines",
                name=f"q(z|x): {radius:g} sd",
                line=dict(color=Q_COLOUR, width=3 if radius == 1 else 1.5),
            )
        )
    fig.update_xaxes(range=[ev.z1[0], ev.z1[-1]])
    fig.update_yaxes(range=[ev.z2[0], ev.z2[-1]])
    return _layout(
        fig, "True posterior p(z|x) (grey) and the encoder's q(z|x) (red)", "z1", "z2", square=True
    )


def bounds_figure(ev: Evidence) -> go.Figure:
    """L_K against K (log axis) with 2-standard-error bars, and log p(x) where it is known."""
    ks = sorted(ev.l_k)
    values = [ev.l_k[k][0] for k in ks]
    errors = [2 * ev.l_k[k][1] for k in ks]
    fig = go.Figure(
        go.Scatter(
            x=ks,
            y=values,
            mode="lines+markers",
            name="L_K (bars: 2 standard errors)",
            error_y=dict(type="data", array=errors, visible=True),
            line=dict(color=Q_COLOUR),
        )
    )
    if ev.log_px is not None:
        fig.add_hline(
            y=ev.log_px,
            line=dict(color=P_COLOUR, dash="dash"),
            annotation_text="log p(x), quadrature",
            annotation_position="top left",  # at the right it sat on the last bounds' error bars
        )
    fig.update_xaxes(type="log", tickvals=ks, ticktext=[f"{k:,}" for k in ks])
    return _layout(fig, "Importance-weighted bounds rise towards log p(x)", "K (importance samples)", "nats")


def variance_figure(gv: GradientVariance) -> go.Figure:
    """Total variance of the encoder-parameter gradient against L, each estimator, log-log."""
    fig = go.Figure()
    # A and B often lie on one another: A wide underneath, B thin, dashed and with open markers on
    # top, so that both show (B dotted on A read as one brown line of neither legend colour)
    lines = {"score": ("solid", 2, "circle", 7), "reparam_a": ("solid", 5, "circle", 11),
             "reparam_b": ("dash", 1.5, "diamond-open", 9)}  # fmt: skip
    for i, name in enumerate(ESTIMATORS):
        dash, width, symbol, size = lines[name]
        fig.add_trace(
            go.Scatter(
                x=list(gv.samples),
                y=gv.encoder_variance[name],
                mode="lines+markers",
                name=NAMES[name],
                line=dict(color=COLOURS[i], dash=dash, width=width),
                marker=dict(symbol=symbol, size=size, line=dict(width=2, color=COLOURS[i])),
            )
        )
    fig.update_xaxes(type="log", tickvals=list(gv.samples))
    fig.update_yaxes(type="log", exponentformat="power")
    return _layout(fig, "Variance of the encoder's gradient", "L (draws per estimate)", "total variance")
