"""The exploring features in the app: nearest neighbours of a clicked image, a box or lasso
selection's gallery and downloads, density contours, t-SNE maps for wide models, the Traversals
page, and views shared through the address."""

import pytest
import torch

from explorer.explore.neighbours import nearest
from tests.apptest import LATENT, charts, page, spec

pytestmark = pytest.mark.integration
TRAVERSALS = "pages/7_Traversals.py"


def latent_page(model: str, **state):
    at = page(LATENT)
    at.session_state["model"] = model
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def test_a_clicked_image_shows_its_nearest_neighbours_in_both_spaces(shipped, mnist_test):
    from explorer.checkpoints import load_checkpoint
    from explorer.evaluate import encode_means

    at = latent_page("mnist-z5", picked=("mnist-z5", 12))
    assert not at.exception and not at.error
    x = mnist_test.images.float() / 255.0
    codes = encode_means(load_checkpoint(shipped / "pretrained" / "mnist-z5"), x)
    by_code, by_pixels = nearest(codes[12], codes, 8, exclude=12), nearest(x[12], x, 8, exclude=12)
    captions = [c.value for c in at.caption]
    code_row = next(c for c in captions if c.endswith("(Euclidean distance, z units)"))
    pixel_row = next(c for c in captions if c.endswith("(Euclidean distance, over pixel values 0-1)"))
    assert [int(t.split()[0][1:]) for t in code_row.split(" · ")] == by_code.indices
    assert [int(t.split()[0][1:]) for t in pixel_row.split(" · ")] == by_pixels.indices
    assert f"({len(set(by_code.indices) & set(by_pixels.indices))} of 8 in both rows)" in " ".join(
        m.value for m in at.markdown
    )


def test_a_selection_shows_its_gallery_figures_and_downloads(shipped, mnist_test):
    from explorer.checkpoints import load_checkpoint
    from explorer.explore.latent import reconstruct

    chosen = [3, 10, 11, 40, 41, 42]
    at = latent_page("mnist-z2", selected=("mnist-z2", chosen))
    assert not at.exception and not at.error
    assert any(s.value == "Selection: 6 test images" for s in at.subheader)
    x = mnist_test.images.float() / 255.0
    elbo = reconstruct(load_checkpoint(shipped / "pretrained" / "mnist-z2"), x[:50]).elbo[chosen]
    assert f"Mean ELBO **{elbo.double().mean().item():.2f}** nats" in " ".join(m.value for m in at.markdown)
    buttons = {b.proto.label: b for b in at.get("download_button")}
    assert {"Codes of the selection (CSV)", "Indices of the selection (text)", "Codes of the test set (CSV)",
            "Codes of the test set (NPY)"} <= set(buttons)  # fmt: skip
    scatter = next(c for c in charts(at) if c.proto.id.endswith("scatter") or "scatter" in c.proto.id)
    assert len(scatter.proto.selection_mode) == 3  # points, box and lasso


def test_density_contours_are_drawn_over_the_map(shipped):
    at = latent_page("mnist-z2")
    shown = lambda: [  # noqa: E731  (an invisible, empty one holds the contours' place when off)
        t["type"] for t in spec(next(c for c in charts(at) if "scatter" in c.proto.id))["data"]
        if t.get("visible", True) is not False
    ]  # fmt: skip
    assert "contour" not in shown()
    at.sidebar.checkbox(key="density").check().run()
    assert not at.exception
    assert "contour" in shown()


@pytest.mark.slow  # a t-SNE of the 10,000 test codes: about a minute on 2 cores
def test_a_wide_model_can_be_mapped_by_tsne(shipped):
    at = latent_page("mnist-z5", map="tsne", picked=("mnist-z5", 3))
    assert not at.exception and not at.error
    assert "t-SNE of its codes" in at.info[0].value
    figure = spec(next(c for c in charts(at) if "scatter" in c.proto.id))
    assert figure["layout"]["xaxis"]["title"]["text"] == "t-SNE 1"


def test_the_traversals_page_sweeps_each_active_unit():
    """On the shipped mnist-z20 (13 of its 20 units active): one row per active unit, largest KL
    first, the inactive ones listed; then the attribute and analogy tabs."""
    from explorer.checkpoints import load_checkpoint
    from explorer.data.cache import load_dataset
    from explorer.evaluate import ACTIVE_UNIT_THRESHOLD, latent_stats

    model = load_checkpoint("mnist-z20")
    variance, kl = latent_stats(model, load_dataset("mnist", "test").images.float() / 255.0)
    active = [j for j in torch.argsort(kl, descending=True).tolist() if variance[j] > ACTIVE_UNIT_THRESHOLD]
    inactive = [j for j in range(20) if variance[j] <= ACTIVE_UNIT_THRESHOLD]
    assert len(active) >= 10 and inactive
    at = page(TRAVERSALS)
    at.session_state["model"] = "mnist-z20"
    at.run()
    assert not at.exception and not at.error
    rows = [m.value for m in at.markdown if m.value.startswith("**z")]
    assert [int(r.split("**")[1][1:]) - 1 for r in rows] == active
    listed = next(c.value for c in at.caption if c.value.startswith("Inactive units"))
    assert listed.endswith(", ".join(f"z{j + 1}" for j in inactive))
    for tab in ("Attribute vectors", "Analogies"):
        at.session_state["traversal-tab"] = tab
        at.run()
        assert not at.exception and not at.error and at.get("image")


def test_traversals_name_the_shapes_factor_each_unit_follows():
    at = page(TRAVERSALS)
    at.session_state["model"] = "shapes-conv-bce-z8"
    at.run()
    assert not at.exception and not at.error
    rows = [m.value for m in at.markdown if m.value.startswith("**z")]
    words = ("follows **", "no single factor", "follows no factor")
    assert len(rows) == 8 and all(any(w in r for w in words) for r in rows)
    followed = {r.split("follows **")[1].split("**")[0] for r in rows if "follows **" in r}
    # the units that clearly follow one factor (hue, rotation); units that move with two alike
    # (x and y, scale and y) name neither (tests/test_app_newcomer.py has the measure's test)
    assert {"hue", "rotation"} <= followed, rows
    assert sum("no single factor" in r or "follows no factor" in r for r in rows) >= 2, rows
    assert at.dataframe  # the table of |correlations|


def test_a_unit_below_the_weak_line_names_no_factor():
    """shapes-conv-z8's z3 turns squares into hearts, yet follows no factor in the codes (R about
    0.1): its row said "no single factor (x R 0.10, y R 0.09)", which read as a claim. A row names
    factors only at R >= WEAK, and says "follows no factor" below it."""
    import re

    from explorer.explore.traversals import WEAK

    at = page(TRAVERSALS)
    at.session_state["model"] = "shapes-conv-z8"
    at.run()
    assert not at.exception
    rows = [m.value for m in at.markdown if m.value.startswith("**z")]
    named = [
        float(r) for row in rows if "no single factor" in row for r in re.findall(r"R (\d\.\d+)", row)[:1]
    ]
    assert all(r >= WEAK for r in named), rows
    assert any("follows no factor in the test set's codes" in row for row in rows), rows


def test_a_shared_address_opens_the_same_view(shipped):
    at = page(LATENT)
    at.query_params["model"] = "mnist-z5"
    at.query_params["point"] = "7"
    at.query_params["density"] = "1"
    at.run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="model_picker").value == "mnist-z5"
    assert any(s.value == "Test image #7" for s in at.subheader)
    assert at.sidebar.checkbox(key="density").value
    at.sidebar.selectbox(key="model_picker").select("mnist-z2").run()
    assert dict(at.query_params)["model"] in ("mnist-z2", ["mnist-z2"])  # the address follows
    stranger = page()
    stranger.query_params["model"] = "gone"
    stranger.run()
    assert "There is no model 'gone' here" in stranger.warning[0].value


def test_the_map_choice_and_a_far_point_survive_navigation_and_links(shipped):
    at = page(LATENT)
    at.query_params["model"] = "mnist-z5"
    at.query_params["point"] = "9000"  # past the 5,000 dots shown
    at.query_params["map"] = "nonsense"
    at.run()
    assert "Ignored in the address: map='nonsense'" in at.warning[0].value
    assert any(s.value == "Test image #9000" for s in at.subheader)
    far = page(LATENT)
    far.query_params["model"] = "mnist-z5"
    far.query_params["point"] = "999999"
    far.run()
    said = " ".join(w.value for w in far.warning)
    assert "point=999999: mnist-z5's test images run from #0 to #9,999, so no image is opened" in said
    assert "point" not in far.query_params  # refused, so it leaves the address


@pytest.mark.slow  # fits a UMAP map of the 10,000 test codes
def test_the_map_choice_is_kept_across_pages(shipped):
    at = latent_page("mnist-z5")
    at.session_state["map"] = "umap"  # as the Map radio's callback leaves it
    at.switch_page("pages/4_Reconstruct.py").run()
    at.switch_page(LATENT).run()
    assert at.sidebar.radio(key="map-choice").value == "umap"
    assert dict(at.query_params).get("map") in ("umap", ["umap"])
