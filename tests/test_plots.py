"""Figures: valid plotly, the right points in the right traces."""

import math

import numpy as np
import plotly.graph_objects as go

from explorer.evaluate import fit_projection
from explorer.pictures.latent_plots import latent_scatter
from explorer.pictures.plots import training_curves


def test_latent_scatter_is_valid_and_indexed():
    points = [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
    fig = latent_scatter(points, [1, 0, 1, 0], ["zero", "one"], marker_point=(0.5, 0.5))
    go.Figure(fig.to_dict())  # plotly's validators accept every key (raises otherwise)
    zero, one, star = fig.data
    assert (zero.name, list(zero.customdata), list(zero.x)) == ("zero", [1, 3], [2.0, 6.0])
    assert (one.name, list(one.customdata), list(one.y)) == ("one", [0, 2], [1.0, 5.0])
    assert star.marker.symbol == "star" and list(star.x) == [0.5]


def test_training_curves_place_steps_at_fractional_epochs():
    rows = [
        {"type": "step", "epoch": 1, "step": 5, "train_loss": 200.0, "recon": -190.0, "kl": 10.0},
        {
            "type": "epoch",
            "epoch": 1,
            "step": 10,
            "train_loss": 190.0,
            "recon": -180.0,
            "kl": 10.0,
            "test_elbo": -185.0,
        },
    ]
    fig = training_curves({"a": rows}, {"a": 10})
    go.Figure(fig.to_dict())
    loss, test, recon, kl = fig.data
    assert list(loss.x) == [0.5] and list(test.y) == [185.0] and list(recon.y) == [190.0]
    # "epoch" under the bottom row only: the top row's would run into the bottom row's titles.
    titles = [fig.layout[a].title.text for a in ("xaxis", "xaxis2", "xaxis3", "xaxis4")]
    assert titles == [None, None, "epoch", "epoch"]
    # An iwae run also draws the bound it trains on, dashed, in the test panel.
    rows[1]["test_bound"] = -181.5
    fig = training_curves({"a": rows}, {"a": 10})
    bound = fig.data[-1]
    assert list(bound.y) == [181.5] and bound.line.dash == "dash" and "L_K" in bound.name
    assert fig.data[1].xaxis == bound.xaxis and fig.data[1].yaxis == bound.yaxis


def test_pca_projection_explains_variance():
    import torch

    g = torch.Generator().manual_seed(0)
    z = torch.randn(500, 5, generator=g) * torch.tensor([5.0, 3.0, 0.1, 0.1, 0.1])
    proj = fit_projection(z)
    assert proj.kind == "pca" and proj.explained[0] > proj.explained[1] > 0.2
    assert sum(proj.explained) > 0.99 and proj(z).shape == (500, 2)
    assert fit_projection(z[:, :2]).kind == "identity"


def test_overlays_prior_map_kl_bars_and_animation_are_valid_plotly():
    import numpy as np
    import torch

    from explorer.explore.density import density_map
    from explorer.pictures.latent_plots import latent_animation, prior_vs_posterior
    from explorer.pictures.overlays import add_outline, add_path, add_points
    from explorer.pictures.plots import kl_bars

    fig = latent_scatter([[0.0, 0.0], [1.0, 1.0]], [0, 1])
    add_outline(fig, np.array([[0, 0], [1, 0], [1, 1], [0, 0]]), "1 sigma", dash="dash")
    add_points(fig, [[0.5, 0.5]], ["drawing"])
    add_path(fig, np.array([[0, 0], [0.5, 0.2], [1, 1]]), "linear path")
    go.Figure(fig.to_dict())
    outline, point, path = fig.data[-3:]
    assert outline.line.dash == "dash" and list(point.text) == ["drawing"]
    assert [a.text for a in fig.layout.annotations] == ["drawing", "A", "B"]  # names in boxes
    # A and B stand off their ends away from the path (above them, they sat on its steps): the
    # path leaves A up and to the right, so A's box is down-left (y down on the screen), B's up-right
    a, b = fig.layout.annotations[1:]
    assert a.ax < 0 and a.ay > 0 and b.ax > 0 and b.ay < 0 and abs(math.hypot(a.ax, a.ay) - 30) < 1e-9
    assert not any(t.showlegend for t in fig.data[-3:])  # the legend, and the plot area, keep still
    # A = B (one picture picked twice): the labels stand either side of the point, not one on the other
    same = latent_scatter([[0.0, 0.0], [1.0, 1.0]], [0, 1])
    add_path(same, np.array([[0.5, 0.5]] * 3), "linear path")
    a, b = same.layout.annotations
    assert (a.ax, b.ax) == (-30.0, 30.0) and a.ay == b.ay

    mu = torch.cat([torch.randn(300, 1).abs() + 0.5, torch.randn(300, 1)], 1)
    dmap = density_map(fit_projection(torch.randn(5, 2)), mu, torch.full((300, 2), 0.2), size=41)
    fig = prior_vs_posterior(dmap)
    go.Figure(fig.to_dict())
    density, holes, *circles = fig.data
    marked = np.array([[v is not None for v in row] for row in holes.z])
    assert np.array_equal(marked, dmap.holes) and marked.any()
    assert [c.name for c in circles] == ["prior 1 sigma", "prior 2 sigma", "prior 3 sigma"]

    bars = kl_bars([2.0, 0.001, 1.5], [0.8, 0.0001, 0.5], 0.01)
    go.Figure(bars.to_dict())
    assert list(bars.data[0].marker.color)[1] == "#bbbbbb" and list(bars.data[0].marker.color)[0] != "#bbbbbb"

    frames = np.stack([np.random.default_rng(i).normal(size=(30, 2)) for i in range(4)])
    anim = latent_animation([0, 1, 2, 3], frames, np.arange(30) % 3, ["a", "b", "c"])
    go.Figure(anim.to_dict())
    assert [f.name for f in anim.frames] == ["0", "1", "2", "3"]
    assert anim.layout.sliders[0].active == 3 and len(anim.data) == 3
    assert (
        list(anim.data[0].x) == frames[3][np.arange(30) % 3 == 0][:, 0].round(3).tolist()
    )  # opens on the last


def test_a_short_runs_curves_show_their_points():
    """A one-epoch run logs one step row and one epoch row: each panel must draw a marker (a single
    point drawn as a line shows nothing), and a long run's step curves stay lines."""
    short = [
        {"type": "step", "epoch": 1, "step": 10, "train_loss": 200.0, "recon": -190.0, "kl": 10.0},
        {"type": "epoch", "epoch": 1, "step": 10, "train_loss": 199.0, "recon": -189.0, "kl": 10.0,
         "test_elbo": -205.0},
    ]  # fmt: skip
    long = [
        {"type": "step", "epoch": 1 + i // 100, "step": i, "train_loss": 100.0, "recon": -90.0, "kl": 10.0}
        for i in range(1, 300)
    ]
    fig = training_curves({"short": short, "long": long})
    modes = {(t.name, t.yaxis): t.mode for t in fig.data}
    assert all("markers" in m for (name, _), m in modes.items() if name == "short"), modes
    assert modes[("long", "y")] == "lines"


def test_titles_stay_out_of_the_toolbars_band_and_fit_a_phone():
    """Every figure title and top-row subplot title lies below the band plotly's toolbar covers
    (the top margin holds the band, then the titles), a long title is broken in two, a figure
    without titles keeps its margin, and a second pass changes nothing (cached figures)."""
    from explorer.paper.figures import figure2
    from explorer.pictures.plots import SUBPLOT_TITLE, TITLE_CHARS, TOOLBAR_BAND, readable_titles
    from explorer.theory import figures

    long = figures.curve_figure(
        [1.0, 2.0], 1, "True posterior p(z|x) (grey) and the encoder's q(z|x)", "nats"
    )
    readable_titles(long)
    lines = long.layout.title.text.split("<br>")
    assert len(lines) == 2 and all(len(line) <= TITLE_CHARS for line in lines)
    assert (
        long.layout.title.yref == "paper"
        and long.layout.title.y == 1
        and long.layout.title.yanchor == "bottom"
    )
    assert long.layout.margin.t >= TOOLBAR_BAND + 2 * 17 * 1.3
    assert long.layout.title.pad.b >= round(17 * 1.3)  # its second line lifted clear of the plot
    panels = readable_titles(figure2([], "mnist", (3, 5, 10, 20, 200)))
    assert panels.layout.margin.t >= TOOLBAR_BAND + SUBPLOT_TITLE
    before = panels.to_dict()["layout"]
    assert readable_titles(panels).to_dict()["layout"] == before
    plain = go.Figure(layout={"margin": {"t": 10}})
    assert readable_titles(plain).layout.margin.t == 10


def test_the_training_curves_titles_fit_half_a_phone():
    """The Train page's four panels, two side by side: each title fits half of a 390 px screen
    (22 characters; "Reconstruction -log p(x|z) (nats)" ran into the KL panel's title)."""
    from explorer.pictures.plots import CURVES

    fig = training_curves({"a": [{"type": "step", "epoch": 1, "step": 1, "train_loss": 1.0}]})
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [c[0] for c in CURVES] and all(len(t) <= 22 for t in titles), titles


def test_codes_that_coincide_are_drawn_on_axes_of_a_readable_span():
    """A folder of one picture many times: every code at one point, drawn on axes 1e-4 wide, with
    the Interpolate page's A and B labels on top of each other."""
    from explorer.pictures.latent_plots import MIN_SPAN, fitted_ranges

    xr, yr = fitted_ranges([[0.3, -1.2]] * 5)
    assert xr[1] - xr[0] >= MIN_SPAN and yr[1] - yr[0] >= MIN_SPAN
    assert xr[0] < 0.3 < xr[1] and yr[0] < -1.2 < yr[1]
    wide = fitted_ranges([[-40.0, 0.0], [60.0, 5.0]])  # a wide map keeps its own span, padded
    assert np.allclose(wide, [[-45.0, 65.0], [-0.25, 5.25]])
