"""Every page on models of the smallest datasets the product accepts: a folder of a dozen pictures
added at 32x32 and at the smallest size ``data add`` allows (4x4), an MLP and a conv model of each
(trained for one epoch in seconds), every page opened with each, no exception and the page's main
output shown. (A model of a folder with one test image used to break the Latent space page's
slider, whose minimum equalled its maximum.)"""

import numpy as np
import pytest
from PIL import Image

from explorer.cli import main
from explorer.data.folders import MIN_SIDE
from tests.apptest import PAGE_FILES, page

pytestmark = pytest.mark.integration
SIZES = ("32", str(MIN_SIDE))
ARCHS = {"mlp": ["--hidden", "8", "--latent-dim", "2"],
         "conv": ["--channels", "4", "--hidden", "8", "--latent-dim", "3"]}  # fmt: skip
MODELS = [f"runs/{arch}-{size}" for size in SIZES for arch in ARCHS]


@pytest.fixture(scope="module")
def small_models(tmp_path_factory):
    """A folder of 12 small pictures (two classes of coloured discs and bars), added at each of
    SIZES, and a one-epoch model of each architecture of each; the environment points the app at
    them."""
    root = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(0)
    for i in range(12):
        kind = ("discs", "bars")[i % 2]
        (root / "pictures" / kind).mkdir(parents=True, exist_ok=True)
        yy, xx = np.mgrid[:40, :40]
        cy, cx, r = rng.integers(12, 28, 2).tolist() + [int(rng.integers(5, 11))]
        shape = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r if kind == "discs" else abs(xx - cx) < r // 2
        picture = np.full((40, 40, 3), 240, np.uint8)
        picture[shape] = rng.integers(0, 200, 3)
        Image.fromarray(picture).save(root / "pictures" / kind / f"{i}.png")
    mp = pytest.MonkeyPatch()
    mp.setenv("VAE_EXPLORER_DATA", str(root / "cache"))
    mp.setenv("VAE_EXPLORER_RUNS", str(root / "runs"))
    mp.setenv("VAE_EXPLORER_PRETRAINED", str(root / "pretrained"))  # none shipped: only these
    for size in SIZES:
        assert main(["data", "add", f"small{size}", str(root / "pictures"), "--size", size]) == 0
        for arch, flags in ARCHS.items():
            argv = ["train", "--out", str(root / "runs" / f"{arch}-{size}"), "--dataset", f"small{size}",
                    "--arch", arch, *flags, "--epochs", "1", "--batch-size", "4", "--device", "cpu",
                    "--no-progress"]  # fmt: skip
            assert main(argv) == 0
    yield root
    mp.undo()


def _keys(node) -> set[str]:
    """The keys of every element under ``node`` (custom components show only as keyed elements)."""
    keys = {getattr(node, "key", None)}
    for child in getattr(node, "children", {}).values():
        keys |= _keys(child)
    return keys


MAIN = {  # what each page shows when it works: (element kinds, one of which is there; or keys)
    "app.py": ("image",),
    "pages/1_Train.py": ("button",),
    "pages/2_Latent_space.py": ("plotly_chart",),
    "pages/3_Manifold.py": ("image", "grid"),  # an MLP's grid is drawn in the browser ("grid")
    "pages/4_Reconstruct.py": ("image",),
    "pages/5_Draw.py": ("info",),  # the folder's pictures are not drawings: the page says so
    "pages/6_Interpolate.py": ("image",),
    "pages/7_Traversals.py": ("image", "warning", "info"),  # or "no active unit" (a one-epoch model)
    "pages/8_Theory.py": ("plotly_chart", "info"),  # a tab's experiment, or why it does not apply
    "pages/9_Paper.py": ("plotly_chart", "info", "image"),  # the paper's curves, or how to make them
}
STATES = {  # further views of a page: session state set before the run
    "pages/2_Latent_space.py": [
        {"map": "tsne"},
        {"map": "umap"},
        {"latent-tab": "Prior vs aggregate posterior"},
    ],
    "pages/7_Traversals.py": [{"traversal-tab": "Attribute vectors"}, {"traversal-tab": "Analogies"}],
    "pages/3_Manifold.py": [{"span-{model}": "the encoded test set"}],
    "pages/8_Theory.py": [{"theory-tab": "The identity"}, {"theory-tab": "Why reparameterise"}],
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", PAGE_FILES)
def test_every_page_works_on_a_dozen_pictures(small_models, name, model):
    assert name in MAIN, f"say what {name} shows when it works (MAIN)"
    for state in [{}, *STATES.get(name, [])]:
        at = page(name)
        at.session_state["model"] = model
        for k, v in state.items():
            at.session_state[k.format(model=model)] = v
        at.run()
        assert not at.exception, (state, at.exception)
        assert not at.error, (state, [e.value for e in at.error])
        shown = [kind for kind in MAIN[name] if at.get(kind) or kind in _keys(at.main)]
        assert shown, f"{name} shows no main output for {model} ({state})"


def test_the_prior_tab_counts_the_test_images_it_averages(small_models):
    """The aggregate posterior averages q(z|x) over the test set's first 5,000 images: a smaller
    test set is named by its own count (shapes-conv-z8's 2,000 were called 5,000)."""
    from explorer.data.cache import load_dataset

    at = page("pages/2_Latent_space.py")
    at.session_state["model"] = MODELS[0]
    at.session_state["latent-tab"] = "Prior vs aggregate posterior"
    at.run()
    count = len(load_dataset("small32", "test").labels)
    assert any(f"the average of q(z|x) over {count:,} test images" in c.value for c in at.caption)


def test_reconstruct_offers_as_many_test_images_as_there_are(small_models):
    """ "How many" offered 4 to 16 (8 shown) on a test set of two images."""
    from explorer.data.cache import load_dataset
    from explorer.ui.models import dataset_of_choice

    for model in MODELS:
        n = len(load_dataset(dataset_of_choice(model), "test"))
        at = page("pages/4_Reconstruct.py")
        at.session_state["model"] = model
        at.run()
        assert not at.exception
        sliders = [s for s in at.sidebar.slider if s.label == "How many"]
        if n > 1:
            assert sliders and sliders[0].max == min(16, n) and sliders[0].value <= n
        else:
            assert not sliders
