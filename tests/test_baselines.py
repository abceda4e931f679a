"""The autoencoder baselines (Hinton & Salakhutdinov 2006; Vincent et al. 2008): their objectives
on tiny tensors, the denoising corruption, the settings that do not apply to them, and a baseline
through the trainer: trained, checkpointed, resumed, evaluated."""

import pytest
import torch
from torch.distributions import Bernoulli, Independent

from explorer.config import ModelConfig, TrainConfig, check_combination
from explorer.model import VAE
from explorer.objectives import autoencoder_terms, corrupt
from explorer.train.steps import Loss


@pytest.fixture
def autoencoder(tiny_config) -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(**{**tiny_config.to_dict(), "model": "ae"})).double()


def test_an_autoencoder_has_a_code_and_no_variance(autoencoder, tiny_batch):
    code, logvar = autoencoder.encode(tiny_batch)
    assert code.shape == (5, 2) and logvar is None
    assert autoencoder.enc_head.out_features == 2  # the VAE's head is twice as wide (mu, logvar)
    assert torch.equal(autoencoder.reparameterize(code, None, 3), code.expand(3, 5, 2))


def test_the_autoencoder_loss_is_the_reconstruction_term_alone(autoencoder, tiny_batch):
    terms = autoencoder_terms(autoencoder, tiny_batch)
    code = autoencoder.encode(tiny_batch)[0]
    logits = autoencoder.decoder_params(code).reshape(5, 1, 4, 3)
    reference = Independent(Bernoulli(logits=logits), 3).log_prob(tiny_batch)
    torch.testing.assert_close(terms.recon, reference)
    assert torch.equal(terms.kl, torch.zeros(5, dtype=torch.float64))
    loss, stats = Loss(autoencoder, TrainConfig(device="cpu"))(tiny_batch, torch.randn(1, 5, 2))
    torch.testing.assert_close(loss, -reference.mean())
    torch.testing.assert_close(
        stats, torch.stack([-reference.mean(), reference.mean(), reference.new_zeros(())])
    )


def test_masking_noise_hides_about_the_level_and_keeps_the_rest():
    torch.manual_seed(0)
    x = torch.rand(200, 1, 28, 28) * 0.9 + 0.1  # no zeros of its own
    masked = corrupt(x, "mask", 0.3)
    hidden = masked == 0
    assert abs(hidden.float().mean().item() - 0.3) < 0.01
    assert torch.equal(masked[~hidden], x[~hidden])
    noisy = corrupt(x, "gaussian", 0.5)
    assert abs((noisy - x).std().item() - 0.5) < 0.01 and abs((noisy - x).mean().item()) < 0.01
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(x, "salt", 0.1)


def test_the_dae_corrupts_its_input_and_reconstructs_the_clean_image(tiny_config, tiny_batch, monkeypatch):
    torch.manual_seed(0)
    dae = VAE(ModelConfig(**{**tiny_config.to_dict(), "model": "dae"})).double()
    seen = []
    encode = dae.encode
    monkeypatch.setattr(dae, "encode", lambda x: seen.append(x.clone()) or encode(x))
    cfg = TrainConfig(device="cpu", corruption="mask", corruption_level=0.5)
    torch.manual_seed(1)
    loss, _ = Loss(dae, cfg)(tiny_batch, torch.randn(1, 5, 2))
    (inputs,) = seen
    assert not torch.equal(inputs, tiny_batch)  # the encoder saw the corrupted copy
    assert torch.equal(inputs[inputs != 0], tiny_batch[inputs != 0])  # masking only zeroes pixels
    # The target is the clean batch: the same loss, recomputed by hand from the corrupted input.
    target = Independent(Bernoulli(logits=dae.decoder_params(encode(inputs)[0]).reshape(5, 1, 4, 3)), 3)
    torch.testing.assert_close(loss, -target.log_prob(tiny_batch).mean())


def test_settings_that_do_not_apply_are_refused_with_the_reason():
    ae, dae, vae = ModelConfig(model="ae"), ModelConfig(model="dae"), ModelConfig()
    check_combination(ae, TrainConfig())
    check_combination(dae, TrainConfig(corruption="gaussian", corruption_level=0.4))
    with pytest.raises(ValueError, match="an autoencoder has no posterior.*--beta"):
        check_combination(ae, TrainConfig(beta=4.0))
    with pytest.raises(ValueError, match="--objective, --samples do not apply"):
        check_combination(dae, TrainConfig(objective="iwae", samples=5))
    with pytest.raises(ValueError, match="use it with --model dae, not --model vae"):
        check_combination(vae, TrainConfig(corruption="gaussian"))
    with pytest.raises(ValueError, match="must be below 1"):
        TrainConfig(corruption="mask", corruption_level=1.0)
    with pytest.raises(ValueError, match="model must be one of vae, ae, dae"):
        ModelConfig(model="gan")


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["ae", "dae"])
def test_a_baseline_trains_checkpoints_resumes_and_evaluates(tmp_path, kind):
    from explorer.checkpoints import load_checkpoint, read_config
    from explorer.data.cache import eval_images
    from explorer.evaluate import evaluate, reconstruction_per_image
    from explorer.train.run import resume_run, start_run
    from tests.runs import SMALL, read_metrics, small_config

    config = ModelConfig(**{**SMALL.to_dict(), "model": kind})
    cfg = small_config(epochs=1) if kind == "ae" else small_config(epochs=1, corruption="gaussian")
    out = start_run(tmp_path / kind, config, cfg, progress=False)
    resume_run(out, epochs=2, progress=False)
    epochs = [r for r in read_metrics(out) if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all("test_elbo" not in r and r["kl"] == 0.0 for r in epochs)  # no ELBO to report
    assert epochs[1]["test_recon"] > epochs[0]["test_recon"]  # it learns
    saved = read_config(out)
    assert saved["model"]["model"] == kind and saved["best_test_elbo"] == max(r["test_recon"] for r in epochs)
    model = load_checkpoint(out)
    assert model.config.model == kind and model.enc_head.out_features == 2
    x, _ = eval_images("mnist", limit=500)
    result = evaluate(model, x, k=5000)  # L_K does not apply: not computed, not an error
    assert result.elbo is None and result.nll is None and result.bits_per_dim is None and result.kl is None
    assert result.recon == pytest.approx(epochs[1]["test_recon"], abs=1e-3)
    assert result.recon == pytest.approx(reconstruction_per_image(model, x).double().mean().item())


@pytest.mark.integration
def test_the_cli_names_an_autoencoders_figure_and_finds_runs_by_name(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from explorer.cli import main
    from explorer.data.cache import eval_images

    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    digit = (eval_images("mnist", binarized=False, limit=1)[0][0, 0] * 255).byte().numpy()
    Image.fromarray(digit).save(tmp_path / "seven.png")
    assert main(["reconstruct", "mnist-ae-z2", str(tmp_path / "seven.png")]) == 0
    out = capsys.readouterr().out
    assert "seven.png: log p(x|z) " in out and "ELBO" not in out
    assert main(["reconstruct", "mnist-ae-z2", str(tmp_path / "seven.png"), "--json"]) == 0
    entry = __import__("json").loads(capsys.readouterr().out)[0]
    assert "log_p_x_given_z" in entry and "elbo" not in entry
    flags = ["--model", "ae", "--hidden", "16", "--limit", "500", "--test-limit", "200", "--epochs", "1"]
    assert main(["train", "--name", "tiny-ae", "--device", "cpu", "--no-progress", *flags]) == 0
    capsys.readouterr()
    assert main(["evaluate", "tiny-ae", "--k", "0", "--limit", "200"]) == 0  # found in $VAE_EXPLORER_RUNS
    assert "log p(x|z)" in capsys.readouterr().out
