"""Every shipped model loads by name, matches the figures on its card, and obeys L_K >= ELBO."""

import json

import pytest
import torch

from explorer.checkpoints import dataset_of, load_checkpoint, pretrained_names, read_config, resolve
from explorer.evaluate import eval_images, evaluate

pytestmark = pytest.mark.integration
ELBO_TOLERANCE = 0.1  # nats per image: same images, same seed; room for other CPUs' float sums
MAX_FOLDER_BYTES = 10 * 1024 * 1024


def test_the_expected_models_are_shipped():
    assert {"mnist-z2", "mnist-z20", "fashion-mnist-z2"} <= set(pretrained_names())


@pytest.mark.parametrize("name", pretrained_names())
def test_shipped_model_matches_its_card(name):
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
    torch.set_num_threads(2)
    again = evaluate(model, x, k=0)  # the card's ELBO, re-measured on the same images and seed
    assert again.elbo == pytest.approx(ev["elbo"], abs=ELBO_TOLERANCE)
    assert again.active_units == ev["active_units"]
    # The card's bound ordering, and a fresh one: L_K (K = 50 here) is at least the ELBO.
    assert ev["log_likelihood"] >= ev["elbo"]
    small = evaluate(model, x[:100], k=50)
    assert small.log_likelihood >= small.elbo
