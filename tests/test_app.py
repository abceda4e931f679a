"""The Streamlit app through AppTest: it shows the chosen model's card, samples and manifold."""

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer.checkpoints import save_checkpoint
from explorer.model import VAE, ModelConfig

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """Two small 'shipped' models in a temporary pretrained/ folder."""
    for name, z in (("mnist-z2", 2), ("mnist-z5", 5)):
        torch.manual_seed(0)
        save_checkpoint(
            tmp_path / name,
            VAE(ModelConfig(hidden=(32,), latent_dim=z)),
            epoch=3,
            step=30,
            train_config={"dataset": "mnist"},
            best_test_elbo=-150.25,
        )
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path))
    return tmp_path


def test_home_shows_card_and_pictures(shipped):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Dataset": "mnist", "Latent size": "2", "Epochs": "3", "Test ELBO (nats)": "-150.25"}
    assert [s.value for s in at.subheader] == ["Samples from the prior", "Latent manifold"]
    images = at.get("image")
    assert len(images) == 2 and all(im.proto.imgs[0].url.endswith(".png") for im in images)
    assert "N(0, I)" in images[0].proto.imgs[0].caption
    # Switching the model changes the card.
    at.sidebar.selectbox[0].select("mnist-z5").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Latent size"] == "5"


def test_broken_model_gives_a_message_not_a_traceback(shipped):
    (shipped / "mnist-z2" / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "truncated or corrupted" in at.error[0].value


def test_no_models_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "vae-explorer train" in at.sidebar.error[0].value
