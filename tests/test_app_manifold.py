"""The Manifold page: the decoder handed to the browser, the grid and its axes."""

import numpy as np
import pytest
import torch

from explorer.checkpoints import load_checkpoint
from tests.apptest import MANIFOLD, charts, live_data, page, spec

pytestmark = pytest.mark.integration


def numpy_decode(data: tuple[dict, list], z) -> np.ndarray:
    """What the browser computes from the live decoder's data (the same steps as its JavaScript)."""
    header, arrays = data
    h = np.asarray(z, dtype=np.float32)
    for i, layer in enumerate(header["layers"]):
        w = arrays[2 * i].reshape(layer["m"], layer["n"])
        h = w @ h + arrays[2 * i + 1]
        if i < len(header["layers"]) - 1:
            h = np.maximum(h, 0) if header["act"] == "relu" else np.tanh(h)
    return 1 / (1 + np.exp(-h[: header["pixels"]]))


def grid(at) -> dict:
    return spec(next(c for c in charts(at) if c.key == "grid"))


@pytest.mark.parametrize("name", ["mnist-z2", "mnist-z5"])
def test_manifold_hands_the_decoder_to_the_browser(shipped, name):
    at = page(MANIFOLD)
    at.session_state["model"] = name
    at.run()
    assert not at.exception
    data = live_data(at)
    header = data[0]
    model = load_checkpoint(shipped / "pretrained" / name)
    dims = model.config.latent_dim
    assert header["dims"] == dims and header["shape"] == [28, 28] and header["pixels"] == 784
    assert len(header["mean"]) == dims and len(header["components"]) == 2 * dims
    z = np.linspace(-1.5, 2.0, dims).astype(np.float32)
    with torch.no_grad():
        expected = model.decode(torch.from_numpy(z)[None]).mean.flatten().numpy()
    assert np.abs(numpy_decode(data, z) - expected).max() < 1e-5
    assert header["map_png"].startswith("data:image/png;base64,")


def test_manifold_grid_follows_the_sidebar(shipped):
    at = page(MANIFOLD).run()
    assert not at.exception
    before = grid(at)["data"][0]["source"]
    at.sidebar.slider[0].set_value(10).run()
    assert "10 x 10 grid, z1 across, z2 up" in [c.value.split(";")[0] for c in at.caption]
    after = grid(at)
    assert after["data"][0]["source"] != before
    # the z of the tiles on the axes: the first tile sits at the inverse Gaussian CDF of 0.05
    assert after["layout"]["xaxis"]["ticktext"][0] == f"{torch.special.ndtri(torch.tensor(0.05)).item():.2f}"
    assert after["layout"]["yaxis"]["ticktext"][-1] == after["layout"]["xaxis"]["ticktext"][0]  # z2 up
    assert len(live_data(at)[0]["grid"]) == 4  # the grid's outline on the live map
    at.sidebar.slider[1].set_value((0.5, 0.5)).run()
    assert "low end must be below" in at.error[0].value


def test_manifold_of_a_wide_model_starts_on_its_most_active_dimensions(shipped):
    """mnist-z5: the grid's default axes are the two dimensions with the largest KL (not z1 and
    z2), the sliders of inactive units say so, and the same dimension on both axes is explained."""
    from explorer.data.cache import load_dataset
    from explorer.evaluate import ACTIVE_UNIT_THRESHOLD, latent_stats

    model = load_checkpoint(shipped / "pretrained" / "mnist-z5")
    variance, kl = latent_stats(model, load_dataset("mnist", "test").images.float() / 255.0)
    first, second = torch.argsort(kl, descending=True)[:2].tolist()
    at = page(MANIFOLD)
    at.session_state["model"] = "mnist-z5"
    at.run()
    assert not at.exception
    axes = [at.sidebar.selectbox(key=f"a{k}-mnist-z5") for k in "xy"]
    assert (axes[0].value, axes[1].value) == (first, second)
    assert f"z{first + 1} across, z{second + 1} up" in " ".join(c.value for c in at.caption)
    assert live_data(at)[0]["inactive"] == [v <= ACTIVE_UNIT_THRESHOLD for v in variance.tolist()]
    axes[1].select(first).run()
    assert f"Both axes are z{first + 1}" in at.warning[0].value
    assert not [c for c in charts(at) if c.key == "grid"]
