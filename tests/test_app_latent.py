"""The Latent space page: the scatter, the clicked point's posterior, the prior against the
aggregate posterior."""

import pytest

from tests.apptest import LATENT, captions, charts, page, spec

pytestmark = pytest.mark.integration


def test_latent_space_shows_clicked_point(shipped, mnist_test):
    at = page(LATENT).run()
    assert not at.exception
    assert "Click a point" in at.info[0].value
    # Only the open tab ran: the prior map (seconds to compute) waits until its tab is opened.
    assert [c.key for c in charts(at)] == ["scatter"]
    at.session_state["picked"] = ("mnist-z2", 3)  # what a click on test image 3 stores
    at.run()
    assert at.subheader[0].value == "Test image #3"
    assert f"Label: **{int(mnist_test.labels[3])}**" in [m.value for m in at.markdown]
    assert any(m.value.startswith("q(z|x): mean (") for m in at.markdown)


def test_latent_space_projects_higher_dimensions(shipped):
    at = page(LATENT)
    at.session_state["model"] = "mnist-z5"
    at.run()
    assert not at.exception
    assert "first two principal components" in at.info[0].value and "%" in at.info[0].value


@pytest.mark.parametrize("model", ["mnist-z2", "mnist-z5"])
def test_the_map_holds_still_when_the_density_contours_are_switched(shipped, model):
    """The contours' outermost line widened the axes only when they were on: the map moved, and a
    zoom was lost, at the toggle."""
    at = page(LATENT)
    at.session_state["model"] = model
    at.run()
    axes = lambda: [spec(chart(at, "scatter"))["layout"][a]["range"] for a in ("xaxis", "yaxis")]  # noqa: E731
    plain = axes()
    at.checkbox(key="density").check().run()
    assert not at.exception
    assert any(t["type"] == "contour" for t in spec(chart(at, "scatter"))["data"])
    assert axes() == plain


def chart(at, key):
    return next(c for c in charts(at) if c.proto.id.endswith(f"-{key}") or key in c.proto.id)


def test_latent_space_shows_the_posterior_of_the_clicked_point(shipped):
    """A link's image: marked on the map as a click would mark it (its dot selected), its ellipses
    and star on a close-up of the map around it."""
    at = page(LATENT)
    at.session_state["picked"] = ("mnist-z2", 3)
    at.run()
    assert not at.exception
    mapped = spec(chart(at, "scatter"))["data"]
    marked = [[t["customdata"][k] for k in t["selectedpoints"]] for t in mapped if "selectedpoints" in t]
    assert len(marked) == 10 and sum(marked, []) == [3]  # in every class's trace: one dot selected
    close = spec(chart(at, "close-up"))["data"]
    names = [t.get("name") for t in close]
    assert "#3: 1 sigma" in names and "#3: 2 sigma" in names and "#3" in names
    # SVG: a chart made anew at every click; in WebGL each cost the browser a new context
    assert {t["type"] for t in close} == {"scatter"}
    assert not spec(chart(at, "close-up"))["layout"].get("annotations")  # no box over the star
    assert "input | reconstruction | 8 draws z ~ q(z|x), decoded (in two rows)" in captions(at)
    assert any("1-sigma (solid) and 2-sigma (dashed) ellipses" in c.value for c in at.caption)
    assert any(m.value.startswith("q(z|x): mean (") and "standard deviation" in m.value for m in at.markdown)


@pytest.mark.parametrize("model", ["mnist-z2", "mnist-z5"])
def test_a_click_leaves_the_map_as_it_was(shipped, model):
    """A click changes what is beside the map, never the map's figure: a changed figure is a new
    chart in Streamlit, which forgets the user's zoom and selection and runs the page twice."""
    at = page(LATENT)
    at.session_state["model"] = model
    at.run()
    before = chart(at, "scatter")
    for index in (3, 7):
        at.session_state["picked"] = (model, index)  # what a click on that dot stores
        at.run()
        assert not at.exception
        assert at.subheader[0].value == f"Test image #{index}"
        after = chart(at, "scatter")
        assert after.proto.id == before.proto.id and after.proto.spec == before.proto.spec
    at.switch_page("pages/3_Manifold.py").run()  # a return to the page draws the map afresh,
    at.switch_page("pages/2_Latent_space.py").run()  # marking the image chosen last
    mapped = spec(chart(at, "scatter"))["data"]
    assert [t["customdata"][k] for t in mapped for k in t.get("selectedpoints", [])] == [7]


@pytest.mark.parametrize("model", ["mnist-z2", "mnist-z5"])
def test_prior_against_aggregate_posterior(shipped, mnist_test, model):
    from explorer.checkpoints import load_checkpoint
    from explorer.data.cache import eval_images
    from explorer.evaluate import ACTIVE_UNIT_THRESHOLD, encode_means, fit_projection, latent_stats
    from explorer.explore.density import density_map
    from explorer.explore.posterior import posterior
    from explorer.ui.prior_map import DENSITY_IMAGES

    at = page(LATENT)
    at.session_state["model"] = model
    at.session_state["latent-tab"] = "Prior vs aggregate posterior"  # the tab a person opens
    at.run()
    assert not at.exception
    # The figures shown are the library's, for this model on the test set.
    vae = load_checkpoint(shipped / "pretrained" / model)
    x = mnist_test.images.float() / 255.0
    # the units as evaluate measures them: on the binarised test set, as the model's run scores it
    variance, kl = latent_stats(vae, eval_images("mnist", "test", binarized=True)[0])
    mu, sigma = posterior(vae, x[:DENSITY_IMAGES])
    holes = density_map(fit_projection(encode_means(vae, x)), mu, sigma).hole_mass
    metrics = {m.label: m.value for m in at.metric}
    shown = float(metrics["Prior mass in holes"].removesuffix("%"))  # "nan%" fails here
    assert 0 <= shown <= 100 and shown == pytest.approx(100 * holes, abs=0.05)
    dims = int(model[-1])
    assert metrics["Active units"] == f"{int((variance > ACTIVE_UNIT_THRESHOLD).sum())} of {dims}"
    figures = [spec(c) for c in charts(at)]
    kinds = [[t["type"] for t in s["data"]] for s in figures]
    assert ["heatmap", "heatmap", "scatter", "scatter", "scatter"] in kinds  # density, holes, 3 circles
    assert ["bar"] in kinds
    bars = next(s for s in figures if s["data"][0]["type"] == "bar")["data"][0]
    assert bars["x"] == [f"z{j + 1}" for j in range(dims)]
    assert bars["y"] == pytest.approx(kl.tolist(), abs=1e-4)
    assert any("principal-component plane" in c.value for c in at.caption) == (dims > 2)


@pytest.mark.parametrize("where", [LATENT, "pages/3_Manifold.py"])
def test_the_model_beside_reaches_the_address_at_once(shipped, where):
    """Choosing "Beside it" writes it into the address in the same run (it came one interaction
    late: the address is written near the page's top, the picker below)."""
    at = page(where)
    at.session_state["model"] = "mnist-z2"
    at.run()
    at.selectbox(key="beside_picker").set_value("mnist-z5").run()
    assert not at.exception
    assert dict(at.query_params)["beside"] == "mnist-z5"
    at.selectbox(key="beside_picker").set_value("(none)").run()
    assert "beside" not in at.query_params


def test_a_linked_image_past_the_dots_shown_is_not_said_to_be_marked(shipped):
    """A link may name an image beyond the dots the map shows: the close-up says so, and the map
    marks no dot for it."""
    at = page(LATENT)
    at.session_state["picked"] = ("mnist-z2", 7000)  # the map shows the first 5,000
    at.run()
    assert not at.exception and at.subheader[0].value == "Test image #7000"
    assert any("past the images the map shows" in c.value for c in at.caption)
    mapped = spec(chart(at, "scatter"))["data"]
    assert not [k for t in mapped for k in t.get("selectedpoints", [])]


def test_the_maps_beside_say_they_are_pca_planes_when_t_sne_is_chosen(shipped):
    """`?map=tsne&beside=...` showed the models side by side on PCA axes ("PC1 (10%)") while the
    sidebar said t-SNE, without a word."""
    at = page(LATENT)
    at.query_params.update({"model": "mnist-z5", "map": "tsne", "beside": "mnist-z2"})
    at.run()
    assert not at.exception
    said = " ".join(i.value for i in at.info)
    assert "each model's codes are drawn in its PCA plane" in said
    assert "The t-SNE map is on the Test set tab" in said
