"""Every shipped model loads by name, matches the figures on its card, and obeys L_K >= ELBO."""

import json

import pytest
import torch

from explorer.checkpoints import dataset_of, load_checkpoint, pretrained_names, read_config, resolve
from explorer.evaluate import eval_images, evaluate

pytestmark = pytest.mark.integration
ELBO_TOLERANCE = 0.1  # nats per image: same images, same seed; room for other CPUs' float sums
MAX_FOLDER_BYTES = 10 * 1024 * 1024
GAP_IMAGES, GAP_K = 200, 1000  # the ELBO-to-L_K gap re-measured on these many images with this K
GAP_TOLERANCE = 1.5  # nats: a subset's sampling error and K = 1000 against the card's K


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
    # image than either bound does).
    small = evaluate(model, x[:GAP_IMAGES], k=GAP_K)
    gap = small.log_likelihood - small.elbo
    assert gap > 0  # L_K >= ELBO
    assert gap == pytest.approx(ev["log_likelihood"] - ev["elbo"], abs=GAP_TOLERANCE)
