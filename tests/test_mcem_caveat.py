"""A Monte Carlo EM model has a decoder only: every page and `evaluate` say that its encoder's
figures describe an untrained network (they were shown as any VAE's)."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.checkpoints import save_checkpoint
from explorer.cli import main
from explorer.config import encoder_trained
from explorer.model import VAE, ModelConfig
from tests.apptest import page


@pytest.fixture
def models(tmp_path, monkeypatch):
    """Two tiny shipped models of MNIST, one trained (as its config says) by Monte Carlo EM."""
    for name, algorithm in (("by-aevb", "aevb"), ("by-mcem", "mcem")):
        torch.manual_seed(0)
        model = VAE(ModelConfig(hidden=(32,), latent_dim=3))
        train = {"dataset": "mnist", "algorithm": algorithm}
        save_checkpoint(tmp_path / "pretrained" / name, model, epoch=1, step=10, train_config=train)
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path / "pretrained"))
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    return tmp_path / "pretrained"


def test_the_rule_reads_the_algorithm_from_the_config():
    assert not encoder_trained({"train": {"algorithm": "mcem"}})
    assert encoder_trained({"train": {"algorithm": "wake-sleep"}}) and encoder_trained({"train": {}})
    assert encoder_trained({})  # a bare record: nothing says otherwise


@pytest.mark.parametrize("name, warned", [("by-mcem", True), ("by-aevb", False)])
def test_every_page_says_an_mcem_model_has_no_trained_encoder(models, name, warned):
    at = page()
    at.query_params["model"] = name
    at.run()
    assert not at.exception
    said = [w.value for w in at.warning if "Monte Carlo EM" in w.value]
    assert bool(said) == warned, [w.value for w in at.warning]
    if warned:
        assert "encoder q(z|x) was never trained" in said[0]
        assert f"evaluate {name} --estimator paper-hmc" in said[0]


def test_evaluate_says_so_too(models, capsys):
    assert main(["evaluate", "by-mcem", "--k", "0", "--limit", "20"]) == 0
    out = capsys.readouterr().out
    assert "note: This model was trained by Monte Carlo EM" in out and "--estimator paper-hmc" in out
    assert main(["evaluate", "by-mcem", "--k", "0", "--limit", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["encoder_trained"] is False
    assert main(["evaluate", "by-aevb", "--k", "0", "--limit", "20"]) == 0
    assert "note:" not in capsys.readouterr().out


def test_the_train_page_says_why_an_mcem_run_has_no_latent_space_forming(tmp_path, monkeypatch):
    """The Train page said "the run ended before its first snapshot" of a Monte Carlo EM run,
    which never has one: no encoder, no codes."""
    from streamlit.testing.v1 import AppTest

    for name, algorithm in (("by-mcem", "mcem"), ("by-aevb", "aevb")):
        model = VAE(ModelConfig(hidden=(16,), latent_dim=2))
        save_checkpoint(tmp_path / name, model, train_config={"dataset": "mnist", "algorithm": algorithm})

    def script(root: str, name: str) -> None:
        from pathlib import Path

        from explorer.train.jobs import JobRegistry
        from explorer.ui.run_view import latent_forming

        latent_forming(JobRegistry(Path(root)), name)

    for name, said in (("by-mcem", True), ("by-aevb", False)):
        at = AppTest.from_function(script, kwargs={"root": str(tmp_path), "name": name}).run()
        assert not at.exception
        text = " ".join(c.value for c in at.caption)
        assert ("Monte Carlo EM trains no encoder" in text) == said, text


def test_an_mcem_run_is_named_for_what_it_is_and_its_decoder_is_swept(tmp_path, monkeypatch):
    """A Monte Carlo EM run's Home card said "VAE" and "Test ELBO n/a ... best during training (the
    model saved after 1 epochs)"; Traversals judged its units by the untrained encoder and drew
    none ("No active unit"), where the decoder is what was learnt."""

    folder = tmp_path / "runs" / "mc3"
    save_checkpoint(folder, VAE(ModelConfig(hidden=(16,), latent_dim=3)), epoch=1, step=10,
                    train_config={"dataset": "mnist", "algorithm": "mcem"})  # fmt: skip
    (folder / "metrics.jsonl").write_text(
        json.dumps(
            {
                "type": "bound",
                "epoch": 1,
                "step": 10,
                "samples": 1000,
                "train_bound": -200.0,
                "test_bound": -210.5,
            }
        )
        + "\n"  # fmt: skip
    )
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    at = page()
    at.session_state["model"] = "runs/mc3"
    at.run()
    assert not at.exception
    said = " ".join(m.value for m in at.markdown)
    assert "VAE, Monte Carlo EM (decoder only)" in said
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test NLL, Appendix D (nats)"] == "210.50", metrics
    assert "no ELBO (its encoder was never trained)" in " ".join(c.value for c in at.caption)
    at = page("pages/7_Traversals.py")
    at.session_state["model"] = "runs/mc3"
    at.run()
    assert not at.exception and not [w for w in at.warning if "No active unit" in w.value]
    assert "this model's encoder was never trained" in " ".join(c.value for c in at.caption)
    assert sum("**z" in m.value for m in at.markdown) == 3  # every dimension of the decoder swept


def test_an_mcem_models_units_and_verdicts_are_not_the_untrained_encoders(tmp_path, monkeypatch):
    """A Monte Carlo EM model's Manifold called every unit "inactive" over a grid that varies, its
    Prior tab said "the encoder ignores them", and Interpolate gave a stranger verdict: all read
    through its untrained encoder."""
    save_checkpoint(tmp_path / "runs" / "mc3", VAE(ModelConfig(hidden=(16,), latent_dim=3)), epoch=1, step=10,
                    train_config={"dataset": "mnist", "algorithm": "mcem"})  # fmt: skip
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    at = page("pages/3_Manifold.py")
    at.session_state["model"] = "runs/mc3"
    at.run()
    assert not at.exception
    assert not [o for o in at.selectbox(key="ax-runs/mc3").options if "inactive" in o]
    at = page("pages/2_Latent_space.py")
    at.session_state["model"] = "runs/mc3"
    at.session_state["latent-tab"] = "Prior vs aggregate posterior"
    at.run()
    assert not at.exception and not at.metric  # no "Active units 0 of 3"
    assert any("encoder was never trained" in i.value for i in at.info)
    at = page("pages/6_Interpolate.py")
    at.session_state["model"] = "runs/mc3"
    at.run()
    assert not at.exception
    said = " ".join(m.value for m in at.markdown)
    assert "no stranger verdict" in said and "typical enough" not in said and "a stranger" not in said
