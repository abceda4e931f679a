"""Every page on a convolutional model of colour images (the generated shapes), and the Train
page's own-folder form."""

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.checkpoints import save_checkpoint
from explorer.data.shapes import draw_sprite
from explorer.model import VAE, ModelConfig
from tests.apptest import (
    DRAW,
    INTERPOLATE,
    LATENT,
    MANIFOLD,
    PAGE_FILES,
    RECONSTRUCT,
    TRAIN,
    assert_page_shows_the_model,
    page,
    png,
    setting,
)

pytestmark = pytest.mark.integration
LATENT_DIM = 3


@pytest.fixture
def colour_model(tmp_path, monkeypatch):
    """A small convolutional model of the shapes (3 x 32 x 32, discretised logistic) as the only
    shipped model."""
    torch.manual_seed(0)
    config = ModelConfig(arch="conv", image_shape=(3, 32, 32), channels=(8, 16), hidden=(32,),
                         latent_dim=LATENT_DIM, likelihood="logistic")  # fmt: skip
    save_checkpoint(tmp_path / "pretrained" / "shapes-conv", VAE(config), epoch=1, step=10,
                    train_config={"dataset": "shapes"}, best_test_elbo=-3900.0)  # fmt: skip
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path / "pretrained"))
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    return tmp_path


def test_every_page_works_on_a_colour_conv_model(colour_model):
    for name in PAGE_FILES:
        at = page(name).run()
        assert_page_shows_the_model(at, name, drawings=False)


def test_home_reports_bits_per_dimension(colour_model):
    at = page().run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test -ELBO (bits/dim)"] == f"{3900.0 / (3 * 32 * 32 * np.log(2)):.3f}"
    assert "Dataset **shapes**" in " ".join(m.value for m in at.markdown)


def test_manifold_decodes_a_conv_model_on_the_server(colour_model):
    at = page(MANIFOLD).run()
    assert not at.get("bidi_component")  # no in-browser decoder for convolutions
    sliders = [s for s in at.slider if s.label.startswith("z")]
    assert len(sliders) == LATENT_DIM
    before = at.get("image")[-1].proto.imgs[0].url
    sliders[0].set_value(2.5).run()
    assert not at.exception
    assert at.get("image")[-1].proto.imgs[0].url != before  # another point, another picture


def test_reconstruct_takes_a_colour_upload_and_draw_explains(colour_model):
    sprite = Image.fromarray(draw_sprite(1, 0.3, 20.0, 0.5, 0.5, 0.6).transpose(1, 2, 0)).resize((96, 96))
    at = page(RECONSTRUCT).run()
    at.file_uploader[0].set_value([("sprite.png", png(sprite), "image/png")]).run()
    assert not at.exception and not at.error
    assert any(m.value.startswith("ELBO **") for m in at.markdown)
    at = page(DRAW).run()
    assert "not of drawings" in at.info[0].value
    at = page(INTERPOLATE).run()
    assert not at.exception and any("path," in m.value for m in at.markdown)
    at = page(LATENT)
    at.session_state["picked"] = ("shapes-conv", 5)
    at.run()
    assert not at.exception and at.subheader[0].value == "Test image #5"


def test_the_train_form_offers_architectures_likelihoods_and_added_folders(
    colour_model, tmp_path, monkeypatch
):
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path / "cache"))
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(6):
        (folder / f"{i}.png").write_bytes(png(Image.fromarray(np.full((20, 30, 3), 40 * i, np.uint8))))
    at = page(TRAIN).run()
    assert setting(at, "arch").options == ["MLP (the paper's)", "Convolutional"]
    assert "Discretised logistic" in setting(at, "likelihood").options
    assert setting(at, "likelihood").value == "the dataset's"  # a new model takes the chosen dataset's
    assert {"shapes", "cifar10"} <= set(setting(at, "dataset").options)
    at.get_by_key("dataset-path").set_value(str(folder))
    at.get_by_key("dataset-name").set_value("mine")
    at.get_by_key("dataset-size").set_value("16x24")
    at.get_by_key("dataset-add").click().run()
    assert not at.exception and not at.error
    assert "Added **mine**" in at.success[0].value
    at.run()
    assert "mine" in setting(at, "dataset").options  # the new dataset can be chosen at once
    at.get_by_key("dataset-name").set_value("mine")
    at.get_by_key("dataset-add").click().run()
    assert "exists already" in at.error[0].value


@pytest.mark.parametrize("model", ["shapes-conv-z8", "shapes-conv-bce-z8"])
def test_every_page_works_on_the_shipped_colour_models(tmp_path, monkeypatch, model):
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    for name in PAGE_FILES:
        at = page(name)
        at.session_state["model"] = model
        at.run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert not at.error, (name, [e.value for e in at.error])
        if "Paper" not in name:  # the Paper page shows no model picker
            assert at.sidebar.selectbox[0].value == model
