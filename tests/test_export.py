"""`vae-explorer export`: a run shipped as a pretrained model with a card measured on the weights
as written, in float16 with --half (half the file, for a size limit)."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.cards import Card
from explorer.checkpoints import MODEL_FILE, load_checkpoint
from explorer.cli import main
from explorer.train.run import start_run
from tests.runs import SMALL, small_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return start_run(tmp_path_factory.mktemp("export") / "run", SMALL, small_config(epochs=1))


@pytest.mark.integration
def test_a_half_copy_is_half_the_file_and_its_card_measures_it(run, tmp_path, capsys):
    full, half = tmp_path / "full", tmp_path / "half"
    assert main(["export", str(run), str(full), "--k", "0", "--limit", "200"]) == 0
    assert main(["export", str(run), str(half), "--k", "0", "--limit", "200", "--half"]) == 0
    size = (half / MODEL_FILE).stat().st_size / (full / MODEL_FILE).stat().st_size
    assert 0.45 < size < 0.55, size
    a, b = load_checkpoint(full).state_dict(), load_checkpoint(half).state_dict()
    assert all(b[k].dtype == torch.float32 for k in b)  # loads into the float32 network
    assert all(torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-4) for k in a)  # float16's rounding
    card_full, card_half = json.loads((full / "card.json").read_text()), Card.read(half).fields
    assert card_half["weights"] == "float16" and "weights" not in card_full
    elbo_full, elbo_half = card_full["evaluation"]["elbo"], card_half["evaluation"]["elbo"]
    assert elbo_half != elbo_full and abs(elbo_half - elbo_full) < 0.05, (elbo_full, elbo_half)
    assert f"{elbo_half:.2f}" in capsys.readouterr().out  # said as measured on the copy


def test_a_stopped_measurement_leaves_no_model_without_a_card(run, tmp_path, monkeypatch):
    import explorer.cli.models as models

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "scored", stop)
    assert main(["export", str(run), str(tmp_path / "dest"), "--k", "0", "--limit", "50"]) != 0
    assert not (tmp_path / "dest").exists()
