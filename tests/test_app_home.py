"""The Home page and what every page shares: the model picker, the card, broken or missing models."""

import json

import pytest

from tests.apptest import MANIFOLD, PAGE_FILES, live_data, page

pytestmark = pytest.mark.integration


def test_home_shows_card_explains_and_links(shipped):
    at = page().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert "Dataset **mnist** &nbsp;·&nbsp; latent size **2** &nbsp;·&nbsp; **VAE**" in [
        m.value for m in at.markdown
    ]
    assert metrics["Test ELBO (nats)"] == "-150.25" and metrics["Test NLL (nats)"] == "n/a"
    assert len(at.get("latex")) == 2  # the ELBO and the reparameterisation
    links = [p.proto.page for p in at.main.get("page_link")]
    assert links == [
        "Train",
        "Latent_space",
        "Manifold",
        "Reconstruct",
        "Draw",
        "Interpolate",
        "Traversals",
        "Theory",
        "Paper",
        *["Theory"] * 5,  # the theory's ideas, each linked to its tab
    ], links
    assert at.get("image")[0].proto.imgs[0].url.endswith(".png")


def test_model_choice_is_shared_by_pages(shipped):
    at = page().run()
    at.sidebar.selectbox[0].select("mnist-z5").run()
    assert any("latent size **5**" in m.value for m in at.markdown)
    assert any("5 dimensions" in m.value for m in at.markdown)  # the wording follows the model
    at.switch_page(MANIFOLD).run()
    assert not at.exception
    assert at.sidebar.selectbox[0].value == "mnist-z5"
    assert live_data(at)[0]["dims"] == 5  # one slider per dimension, in the browser


def test_card_json_figures_are_shown(shipped):
    card = {
        "epochs": 300,
        "hardware": "test machine, 2 cores; epochs 1-90 with 1 thread",
        "evaluation": {"elbo": -130.5, "nll": 126.75, "k": 5000, "n": 10000},
        "target": {"nll": 127},
    }
    (shipped / "pretrained" / "mnist-z2" / "card.json").write_text(json.dumps(card))
    at = page().run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test NLL, K=5000 (nats)"] == "126.75" and metrics["Test ELBO (nats)"] == "-130.50"
    note = next(
        c.value
        for c in at.caption
        if c.value.startswith("Measured on 10,000 test images; NLL with K = 5,000")
    )
    assert "Target: NLL <= 127 nats (met)." in note
    assert "on test machine, 2 cores. Target" in note and "1 thread" not in note  # details stay in the card
    card["target"] = {"nll": 125}
    (shipped / "pretrained" / "mnist-z2" / "card.json").write_text(json.dumps(card))
    at = page().run()
    assert any("Target: NLL <= 125 nats (not met, 1.8 nats short)." in c.value for c in at.caption)


def test_broken_model_gives_a_message_not_a_traceback(shipped):
    (shipped / "pretrained" / "mnist-z2" / "model.safetensors").write_bytes(b"\x08" + b"\x00" * 7 + b"{")
    for name in [p for p in PAGE_FILES if "Train" not in p and "Paper" not in p]:  # these load no model
        at = page(name).run()
        assert not at.exception, name
        assert "truncated or corrupted" in at.error[0].value, name


def test_no_models_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path))
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    at = page().run()
    assert not at.exception
    assert "Train page" in at.sidebar.error[0].value


def test_a_grey_level_bernoulli_card_says_its_nll_is_not_a_likelihood(shipped):
    card = {"epochs": 3, "evaluation": {"elbo": -300.0, "nll": 290.0, "k": 1000, "n": 1000,
                                        "binarized": False, "likelihood": "bernoulli"}}  # fmt: skip
    (shipped / "pretrained" / "mnist-z2" / "card.json").write_text(json.dumps(card))
    at = page().run()
    assert any("not a normalised likelihood" in c.value for c in at.caption)
    card["evaluation"]["binarized"] = True
    (shipped / "pretrained" / "mnist-z2" / "card.json").write_text(json.dumps(card))
    at = page().run()
    assert not any("not a normalised likelihood" in c.value for c in at.caption)


def test_a_wake_sleep_model_is_not_said_to_be_trained_by_the_elbo(monkeypatch):
    """The shipped paper-wake-sleep-z20: Home says how it was trained (the text above it says the
    ELBO's gradients train a VAE); its AEVB twin gets no such note."""
    at = page()
    at.session_state["model"] = "paper-wake-sleep-z20"
    at.run()
    assert not at.exception
    said = [i.value for i in at.info if "wake-sleep algorithm" in i.value]
    assert len(said) == 1 and "sleep-phase" in said[0] and "no reparameterisation" in said[0]
    at = page()
    at.session_state["model"] = "paper-aevb-z20"
    at.run()
    assert not at.exception and not [i for i in at.info if "wake-sleep algorithm" in i.value]


@pytest.mark.parametrize(
    ("model", "said"),
    [
        ("mnist-z2", "VAE, IWAE (K = 5)"),
        ("paper-wake-sleep-z20", "VAE, wake-sleep"),
        ("mnist-ae-z2", "autoencoder"),
    ],
)
def test_the_card_says_how_the_model_was_trained(model, said):
    """mnist-z2 was trained on the IWAE bound (K = 5): its card said only its dataset and latent
    size, while "Beside it" called it "VAE, IWAE" (the models as shipped)."""
    at = page("app.py")
    at.session_state["model"] = model
    at.run()
    assert any(f"**{said}**" in m.value and "Dataset **" in m.value for m in at.markdown)
