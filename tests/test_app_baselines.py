"""The autoencoder baselines in the app: every page loads an AE and a DAE, says what does not
apply to them instead of failing, and a second model can be shown beside the first."""

import pytest
import torch

from explorer.checkpoints import save_checkpoint
from explorer.model import VAE, ModelConfig
from tests.apptest import LATENT, MANIFOLD, PAGE_FILES, assert_page_shows_the_model, charts, page

pytestmark = pytest.mark.integration


@pytest.fixture
def baselines(tmp_path, monkeypatch):
    """Shipped: a small MLP autoencoder and VAE of MNIST, and a convolutional denoising
    autoencoder of the shapes (untrained: the pages' behaviour, not their pictures, is tested)."""
    torch.manual_seed(0)
    root = tmp_path / "pretrained"
    for name, config, dataset in (
        ("mnist-ae", ModelConfig(model="ae", hidden=(32,)), "mnist"),
        ("mnist-vae", ModelConfig(hidden=(32,)), "mnist"),
        ("shapes-dae", ModelConfig(model="dae", arch="conv", image_shape=(3, 32, 32), channels=(8, 16),
                                   hidden=(32,), latent_dim=3, likelihood="logistic"), "shapes"),
    ):  # fmt: skip
        best = -150.0 if dataset == "mnist" else -3900.0
        save_checkpoint(root / name, VAE(config), epoch=1, step=10, train_config={"dataset": dataset},
                        best_test_elbo=best)  # fmt: skip
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(root))
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    return tmp_path


@pytest.mark.parametrize("model", ["mnist-ae", "shapes-dae"])
def test_every_page_works_on_an_autoencoder(baselines, model):
    for name in PAGE_FILES:
        at = page(name)
        at.session_state["model"] = model
        at.run()
        assert_page_shows_the_model(at, name, drawings=model.startswith("mnist"))


def test_home_explains_an_autoencoders_samples(baselines):
    at = page()
    at.session_state["model"] = "mnist-ae"
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert "Test ELBO (nats)" not in metrics and metrics["Test log p(x|z) (nats)"] == "-150.00"
    assert any("never asked to put its codes where" in w.value for w in at.warning)
    assert any("plain autoencoder" in i.value for i in at.info)


def test_latent_space_shows_a_second_model_beside_the_first(baselines):
    at = page(LATENT)
    at.session_state["model"] = "mnist-vae"
    at.run()
    beside = at.sidebar.selectbox(key="beside_picker")
    assert beside.options == ["(none)", "mnist-ae"]  # same dataset only: not the shapes model
    beside.set_value("mnist-ae").run()
    assert not at.exception and not at.error
    assert at.tabs[0].label == "Beside mnist-ae"
    shown = [c for c in charts(at) if "beside-scatter" in c.proto.id]
    assert len(shown) == 2
    names = {m.value.split(":")[0] for m in at.markdown if m.value.startswith("**mnist-")}
    assert names == {"**mnist-vae**", "**mnist-ae**"}
    assert any("VAE" in m.value for m in at.markdown) and any("autoencoder" in m.value for m in at.markdown)
    shown = [img.caption for i in at.get("image") for img in i.proto.imgs]
    assert {"mnist-vae", "mnist-ae"} <= set(shown)  # the same z ~ N(0, I) through each decoder
    at.switch_page(MANIFOLD).run()  # remembered across pages
    assert at.sidebar.selectbox(key="beside_picker").value == "mnist-ae"


def test_manifold_grids_beside_share_the_latent_range(baselines):
    at = page(MANIFOLD)
    at.session_state["model"] = "mnist-vae"
    at.session_state["beside"] = "mnist-ae"
    at.run()
    assert not at.exception and not at.error
    assert any(h.value == "Beside mnist-ae" for h in at.subheader)
    caption = next(c.value for c in at.caption if c.value.startswith("Both grids cover z"))
    assert "-1.64 to 1.64 across" in caption  # the paper's 5% to 95% of N(0, 1)
    at.sidebar.radio(key="span-mnist-vae").set_value("the encoded test set").run()
    caption = next(c.value for c in at.caption if c.value.startswith("Both grids cover z"))
    assert "1st to 99th percentile of both models' codes" in caption and "-1.64 to 1.64" not in caption


def test_an_autoencoders_clicked_point_has_no_ellipses(baselines):
    at = page(LATENT)
    at.session_state["model"] = "mnist-ae"
    at.session_state["picked"] = ("mnist-ae", 3)
    at.run()
    assert not at.exception and not at.error
    assert "input | reconstruction" in [img.caption for i in at.get("image") for img in i.proto.imgs]
    assert any(m.value.startswith("code z = f(x): (") for m in at.markdown)
    chart = next(c for c in charts(at) if "close-up" in c.proto.id)
    assert '"#3"' in chart.proto.spec and "1 sigma" not in chart.proto.spec  # the marker, no ellipse


def test_the_train_page_trains_a_denoising_autoencoder(shipped):
    from tests.apptest import TRAIN, fill, setting, small_run, wait_for

    at = page(TRAIN).run()
    fill(at, model="ae")  # an autoencoder has no KL weight: Beta is off, at 1 (it was refused at Start)
    assert setting(at, "beta").disabled and setting(at, "beta").value == 1.0
    small_run(at, "dae", model="dae", corruption="gaussian", corruption_level=0.3)
    assert not at.exception and not at.error
    folder = shipped / "runs" / "dae"
    wait_for(folder, "finished")
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert "Test log p(x|z) (nats)" in metrics and metrics["Test log p(x|z) (nats)"] != "-"
    chart = next(c for c in charts(at) if c.proto.id.endswith("curves-dae") or "curves" in c.proto.id)
    assert "Test -ELBO, AE: -log p(x|z) (nats)" in chart.proto.spec
    for name in PAGE_FILES:  # the finished run loads in every page
        explore = page(name)
        explore.session_state["model"] = "runs/dae"
        explore.run()
        assert not explore.exception and not explore.error, (name, explore.error)
