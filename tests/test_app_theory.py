"""The Theory page on every shipped model: each tab runs, shows its numbers, and says why a part
is absent (a latent space wider than 2, an autoencoder); the Home page links each idea; and
``vae-explorer evidence --json``."""

import json

import numpy as np
import pytest
import torch

from explorer.cards import Card, save_evidence
from explorer.checkpoints import load_checkpoint, pretrained_names
from explorer.ui.theory import CLICKED, EM_FIGURE, IDEAS, TAB_KEY, TABS
from tests.apptest import _values, captions, charts, page, png, select_points, spec

pytestmark = pytest.mark.integration
THEORY = "pages/8_Theory.py"


def theory(model: str, tab: str, **state):
    at = page(THEORY)
    at.session_state["model"] = model
    at.session_state[TAB_KEY] = tab
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def text(at) -> str:
    return " ".join(m.value for m in [*at.markdown, *at.caption, *at.info, *at.warning])


def test_the_model_free_tabs_show_their_checks():
    at = theory("mnist-z2", "EM")
    assert not at.exception and not at.error
    assert charts(at) and len(at.latex) == 1
    assert "Decreases along the way: **0**" in text(at)
    assert "scikit-learn's `GaussianMixture`" in text(at)
    at.button(key="em-run").click().run()  # to convergence: the last step
    assert at.select_slider(key="em-step").value.startswith("M-step")
    at = theory("mnist-z2", "KL's two directions", **{"kl-sep": 6.0})
    assert not at.exception and at.dataframe
    rows = at.dataframe[0].value
    assert rows["variance"].iloc[0] > 9 > rows["variance"].iloc[1]  # covers both modes / seeks one
    at = theory("mnist-z2", "KL's two directions", **{"kl-sep": 0.0})  # one mode: every KL is 0
    rows = at.dataframe[0].value
    kls = rows[["KL(q‖p)", "KL(p‖q)"]].to_numpy().ravel()
    assert (kls == 0).all() and not np.signbit(kls).any(), kls  # no "-0.0000"
    at = theory("mnist-z2", "Mean field and CAVI", **{"mf-rho": 0.6})
    assert not at.exception
    assert "**0.6400**, **0.6400**" in text(at)  # 1 - rho^2 of unit variances
    assert "Largest fall between sweeps: **0.00e+00**" in text(at)


@pytest.mark.parametrize("model", pretrained_names())
def test_every_tab_works_on_every_shipped_model(model):
    variational = load_checkpoint(model).config.variational
    dims = load_checkpoint(model).config.latent_dim
    for tab in TABS:
        at = theory(model, tab)
        assert not at.exception, (model, tab, [e.value for e in at.exception])
        assert not at.error, (model, tab, [e.value for e in at.error])
        if tab == "The identity":
            if not variational:
                assert "This model is an autoencoder" in at.info[0].value
                assert not charts(at)
            elif dims == 2:
                assert "log p(x), quadrature" in text(at) and len(charts(at)) == 2
            else:
                assert "need a 2-D latent space" in at.info[0].value
                assert len(charts(at)) == 1  # the bounds L_K alone
        if tab == "Why reparameterise":
            assert ("This model is an autoencoder" in text(at)) != variational
            assert bool(charts(at)) == variational


def test_the_identity_tab_shows_the_library_figures():
    from explorer.data.cache import eval_images
    from explorer.theory.evidence import evidence

    at = theory("mnist-z2", "The identity", **{"identity-image": 3})
    assert not at.exception and not at.error
    x, _ = eval_images("mnist", "test", True, 4)
    ev = evidence(load_checkpoint("mnist-z2").eval(), x[3])
    shown = text(at)
    assert f"log p(x), quadrature | **{ev.log_px:.4f}**" in shown
    assert f"ELBO + KL | **{ev.elbo + ev.kl_to_posterior:.4f}**" in shown


def test_home_links_each_idea_to_its_tab():
    from urllib.parse import parse_qs

    at = page().run()
    links = [e.proto for e in at.main.get("page_link") if e.proto.page == "Theory" and e.proto.query_string]
    assert [(link.label, parse_qs(link.query_string)["tab"][0]) for link in links] == [
        (w, t) for t, w in IDEAS
    ]
    for tab, _ in IDEAS:
        opened = page(THEORY)
        opened.query_params["tab"] = tab
        opened.run()
        assert not opened.exception and opened.session_state[TAB_KEY] == tab


def test_the_evidence_command_prints_json(capsys):
    from explorer.cli import main

    assert main(["evidence", "mnist-z2", "--index", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["index"] == 2 and out["binarized"] is True
    assert set(out["l_k"]) == {"1", "10", "100", "1000", "5000"}
    assert abs(out["identity_residual"]) < 0.01
    assert out["log_px"] == pytest.approx(out["elbo"] + out["kl_to_posterior"], abs=0.01)
    assert main(["evidence", "mnist-ae-z2", "--json"]) == 1
    assert "autoencoder" in capsys.readouterr().err
    assert main(["evidence", "mnist-z2", "--index", "10000"]) == 1
    assert "there is no test image 10000" in capsys.readouterr().err


def figure(at, key: str) -> dict:
    return spec(next(c for c in charts(at) if c.proto.id.endswith(f"-{key}")))


def test_points_clicked_on_the_em_figure_join_the_data():
    """A click anywhere on the plane (an invisible grid of points under the data, curve 0) or on a
    data point (curve 1) adds a point there; EM then fits the clicked points with the generated
    ones; "Clear clicked points" takes them away."""
    at = theory("mnist-z2", "EM", **{"em-n": 0, "em-k": 1})
    assert not at.exception
    assert "at least 3 points" in at.info[0].value and "there are 0" in at.info[0].value
    plane = figure(at, EM_FIGURE)["data"][0]
    assert plane["type"] == "scattergl" and plane["hoverinfo"] == "none" and len(plane["x"]) > 5000
    assert at.button(key="em-clear").disabled
    clicked = []
    for i in (0, 4000, 7777):  # the plane reaches past the data: read it before each click
        plane = figure(at, EM_FIGURE)["data"][0]
        clicked.append([plane["x"][i], plane["y"][i]])
        at = select_points(at, EM_FIGURE, [(0, i)])
        assert not at.exception
    clicked = np.array(clicked)
    assert np.array(at.session_state[CLICKED]).tolist() == clicked.tolist()
    assert "0 generated and 3 clicked points" in text(at)
    at.button(key="em-run").click().run()
    shown = figure(at, EM_FIGURE)["data"]
    means = [t for t in shown if t.get("name", "").startswith("component 1")]
    assert [means[0]["x"][0], means[0]["y"][0]] == pytest.approx(
        clicked.mean(0).tolist()
    )  # one Gaussian: the mean
    at = select_points(at, EM_FIGURE, [(1, 0)])  # a click on a data point: another point there
    assert at.session_state[CLICKED][-1] == clicked[0].tolist()
    at.number_input(key="em-n").set_value(300).run()  # generated points and clicked ones together
    assert "300 generated and 4 clicked points" in text(at) and "Decreases along the way: **0**" in text(at)
    at.button(key="em-clear").click().run()
    assert not at.exception and CLICKED not in at.session_state
    assert "300 generated and 0 clicked points" in text(at)


def test_clicked_points_are_drawn_apart_from_the_generated_ones():
    """The user's clicks are diamonds among the generated circles, with or without a fit."""
    at = theory("mnist-z2", "EM", **{"em-n": 20, "em-k": 1})
    plane = figure(at, EM_FIGURE)["data"][0]
    at = select_points(at, EM_FIGURE, [(0, len(plane["x"]) // 2)])
    data = figure(at, EM_FIGURE)["data"][1]
    assert data["marker"]["symbol"] == ["circle"] * 20 + ["diamond"]
    assert data["marker"]["size"][-1] > data["marker"]["size"][0]


def test_a_collapsed_component_keeps_the_plane_to_click_on():
    """Two points clicked far from the data, fitted by one more component than the data has: a
    component collapses onto them (a singular covariance). The warning says so, and the plane is
    still there to click more points on (it was the only way back but for Clear)."""
    at = theory("mnist-z2", "EM")  # the defaults: 300 points of 3 components, 3 fitted
    plane = figure(at, EM_FIGURE)["data"][0]
    far = [int(np.argmax(np.array(plane["x"]) + np.array(plane["y"]))),
           int(np.argmax(np.array(plane["x"]) - np.array(plane["y"])))]  # fmt: skip
    for i in far:
        at = select_points(at, EM_FIGURE, [(0, i)])
    assert not at.exception
    assert "collapsed" in at.warning[0].value
    assert figure(at, EM_FIGURE)["data"][0]["type"] == "scattergl"  # the clickable plane
    at = select_points(at, EM_FIGURE, [(0, far[0])])  # and a further click is taken
    assert not at.exception and len(at.session_state[CLICKED]) == 3


def test_the_identity_takes_an_upload_or_the_drawing(mnist_test):
    """The identity's image: a test image, an upload (prepared as on the other pages; one that
    cannot be prepared gets their one-line message) or the Draw page's drawing, binarised once
    with the evaluation's fixed seed for a model of binarised data."""
    from PIL import Image

    from explorer.data.cache import binarize_picture
    from explorer.data.uploads import preprocess_image
    from explorer.theory.evidence import evidence

    model = load_checkpoint("mnist-z2").eval()
    at = theory("mnist-z2", "The identity")
    source = at.radio(key="identity-image-source")
    assert source.options == ["test image", "upload"]  # no drawing yet
    source.set_value("upload").run()
    assert not at.exception and "Upload an image" in at.info[0].value and not charts(at)
    at.file_uploader(key="identity-image-upload").set_value(("junk.png", b"not an image", "image/png")).run()
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value.startswith("junk.png: ") and "\n" not in at.error[0].value
    digit = png(Image.fromarray(mnist_test.images[3, 0].numpy()))
    at.file_uploader(key="identity-image-upload").set_value(("three.png", digit, "image/png")).run()
    assert not at.exception and not at.error
    assert "three.png (binarised, fixed seed)" in captions(at)
    ev = evidence(model, binarize_picture(preprocess_image(digit, "mnist")))
    assert f"log p(x), quadrature | **{ev.log_px:.4f}**" in text(at)
    drawing = torch.zeros(1, 28, 28)
    drawing[0, 4:24, 12:16] = 1.0
    at.session_state["drawing"] = drawing
    at.run()
    assert at.radio(key="identity-image-source").options == ["test image", "upload", "drawing"]
    at.radio(key="identity-image-source").set_value("drawing").run()
    assert not at.exception and "your drawing (binarised, fixed seed)" in captions(at)
    ev = evidence(model, binarize_picture(drawing))
    assert f"ELBO + KL | **{ev.elbo + ev.kl_to_posterior:.4f}**" in text(at)
    at.sidebar.selectbox[0].select("shapes-conv-z8").run()  # a drawing of 28 x 28 does not fit its images
    assert not at.exception
    assert at.radio(key="identity-image-source").options == ["test image", "upload"]


def test_the_home_card_gives_the_identity_figures(shipped):
    card = {"epochs": 3, "evaluation": {"elbo": -130.5, "nll": 126.75, "k": 5000, "n": 10000}}
    folder = shipped / "pretrained" / "mnist-z2"
    (folder / "card.json").write_text(json.dumps(card))
    at = page().run()
    assert not any("L_5000" in c.value for c in at.caption)
    figures = {
        "n": 100,
        "mean_abs_log_px_minus_l5000": 1.5603,
        "median_abs_log_px_minus_l5000": 0.0363,
        "mean_kl_to_posterior": 12.8206,
        "mean_abs_identity_residual": 0.0075,
    }
    save_evidence(folder, figures, "python bench/theory.py --card")
    assert Card.read(folder).fields["evaluation"] == card["evaluation"]  # the rest of the card is kept
    at = page().run()
    line = next(c.value for c in at.caption if "L_5000" in c.value)
    assert "first 100 test images" in line and "1.56 nats apart on average (median 0.036)" in line
    assert "KL(q(z|x) ‖ p(z|x)), the ELBO's gap to log p(x): 12.82 nats" in line and "within 0.007" in line


def test_the_shipped_mnist_z2_card_carries_the_identity_figures():
    figures = Card.read("mnist-z2").evidence
    assert figures is not None and figures.n == 100
    assert 0 < figures.median_gap < figures.mean_gap and figures.mean_kl > 1
    assert figures.residual < 0.01  # ELBO + KL(q || p(z|x)) meets log p(x), two quadratures


@pytest.mark.parametrize("start", [0, 3])
def test_every_steps_ellipses_lie_within_the_em_figure_and_its_axes_hold_still(start):
    """The start's broad 2-sd ellipses were cut at the plot's top (the axes were the data's)."""
    at = theory("mnist-z2", "EM", **{"em-start": start})
    ranges = []
    for step in ("start", "E-step 1", "M-step 1"):
        at.session_state["em-step"] = step
        at.run()
        assert not at.exception
        layout = figure(at, EM_FIGURE)["layout"]
        (x0, x1), (y0, y1) = layout["xaxis"]["range"], layout["yaxis"]["range"]
        for t in figure(at, EM_FIGURE)["data"]:
            if t.get("mode") == "lines":  # the ellipses
                xs, ys = _values(t["x"]), _values(t["y"])
                assert min(xs) >= x0 and max(xs) <= x1 and min(ys) >= y0 and max(ys) <= y1, step
        ranges.append((x0, x1, y0, y1))
    assert len(set(ranges)) == 1
