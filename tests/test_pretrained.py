"""Every shipped model loads by name, matches the figures on its card, and obeys L_K >= ELBO."""

import json

import pytest
import torch

from explorer.checkpoints import dataset_of, load_checkpoint, pretrained_names, read_config, resolve
from explorer.data.cache import eval_images
from explorer.evaluate import elbo_per_image, evaluate, importance_per_image

pytestmark = pytest.mark.integration
ELBO_TOLERANCE = 0.1  # nats per image: same images, same seed; room for other CPUs' float sums
MAX_FOLDER_BYTES = 10 * 1024 * 1024
GAP_K = 1000  # the ELBO-to-L_K gap is re-measured with this K on the first images:
GAP_IMAGES = {"mlp": 200, "conv": 20}  # a conv decoder costs ~40x an MLP's per draw: fewer images


@pytest.fixture
def two_threads():
    """Two intra-op threads (as the cards were measured with, so float sums agree), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_the_expected_models_are_shipped():
    assert {"mnist-z2", "mnist-z20", "fashion-mnist-z2"} <= set(pretrained_names())


@pytest.mark.parametrize("name", pretrained_names())
def test_shipped_model_matches_its_card(name, two_threads):
    folder = resolve(name)
    card = json.loads((folder / "card.json").read_text())
    assert sum(f.stat().st_size for f in folder.iterdir()) < MAX_FOLDER_BYTES
    for key in ("dataset", "dataset_md5", "commands", "seed", "epochs", "hardware", "train_seconds"):
        assert card.get(key) is not None, key
    ev = card["evaluation"]
    if ev.get("model", "vae") != "vae":  # an autoencoder: its reconstruction term, no bound
        check_autoencoder_card(name, card)
        return
    assert ev["k"] >= 1000 and ev["n"] >= 1000 and ev["nll"] == pytest.approx(-ev["log_likelihood"])
    model = load_checkpoint(name).eval()
    config = read_config(name)
    dataset = dataset_of(config)
    assert dataset == card["dataset"]
    x, _ = eval_images(dataset, "test", ev["binarized"], ev["n"])
    again = evaluate(model, x, k=0)  # the card's ELBO, re-measured on the same images and seed
    assert again.elbo == pytest.approx(ev["elbo"], abs=ELBO_TOLERANCE)
    assert again.active_units == ev["active_units"]
    # The card's L_K, checked against this model rather than against the card itself: how far
    # L_K lies above the ELBO is re-measured on a subset (the gap varies far less from image to
    # image than either bound does), within four of its standard errors and half a nat (the
    # subset's K = 1000 against the card's K).
    subset = x[: GAP_IMAGES[model.config.arch]]
    torch.manual_seed(0)
    recon, kl = elbo_per_image(model, subset)
    gaps = (importance_per_image(model, subset, GAP_K) - (recon - kl)).double()
    mean, se = gaps.mean().item(), gaps.std().item() / len(gaps) ** 0.5
    assert mean > 0  # L_K >= ELBO
    assert abs(mean - (ev["log_likelihood"] - ev["elbo"])) <= 4 * se + 0.5, (mean, se)


def check_autoencoder_card(name: str, card: dict) -> None:
    """An autoencoder's card: its reconstruction term re-measured on the same images, no ELBO."""
    ev = card["evaluation"]
    assert ev["elbo"] is None and ev["nll"] is None and ev["k"] == 0 and ev["n"] >= 1000
    model = load_checkpoint(name).eval()
    x, _ = eval_images(card["dataset"], "test", ev["binarized"], ev["n"])
    again = evaluate(model, x, k=0)
    assert again.recon == pytest.approx(ev["recon"], abs=ELBO_TOLERANCE)
    assert again.active_units == ev["active_units"]


MEASURED_FID = [
    n for n in pretrained_names() if "sample_quality" in json.loads((resolve(n) / "card.json").read_text())
]


@pytest.mark.parametrize("name", MEASURED_FID)
def test_shipped_fid_matches_its_card(name, two_threads):
    """The card's FID, re-measured with the same seeded samples and the shipped feature network."""
    from explorer.fid import frechet_distance, model_samples

    quality = json.loads((resolve(name) / "card.json").read_text())["sample_quality"]
    measured = quality["model"]
    dataset = dataset_of(read_config(name))
    named = f"pretrained/classifiers/{dataset}" if measured["features"] == "classifier" else "Inception-v3"
    assert named in measured["feature_source"]  # every figure says which features it is in
    real, _ = eval_images(dataset, "test", binarized=False, limit=measured["n_real"])
    samples = model_samples(load_checkpoint(name).eval(), measured["n_generated"])
    again = frechet_distance(real, samples, dataset, measured["features"])
    assert again.value == pytest.approx(measured["value"], rel=1e-3)
    assert quality["test_vs_train"]["value"] < measured["value"]  # samples never beat real images
