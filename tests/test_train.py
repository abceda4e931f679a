"""The trainer on real MNIST subsets: learning, metrics, reproducibility, exact resume, objectives
and optimisers."""

import numpy as np
import pytest
import torch

from explorer.checkpoints import load_checkpoint, read_config
from explorer.errors import ExplorerError
from explorer.model import ModelConfig
from explorer.train.run import resume_run, start_run
from explorer.train.runfolder import LATENTS_DIR
from tests.runs import (
    SMALL,
    read_latent_snapshots,
    read_metrics,
    small_config,
    weights,
)

pytestmark = pytest.mark.integration


def test_training_learns_and_logs(tmp_path):
    out = start_run(tmp_path / "run", SMALL, small_config(), progress=False)
    rows = read_metrics(out)
    steps = [r for r in rows if r["type"] == "step"]
    epochs = [r for r in rows if r["type"] == "epoch"]
    assert [r["step"] for r in steps] == list(range(5, 21, 5))
    assert [(r["epoch"], r["step"]) for r in epochs] == [(1, 10), (2, 20)]
    for key in (
        "train_loss",
        "recon",
        "kl",
        "test_elbo",
        "test_recon",
        "test_kl",
        "seconds",
        "samples_per_s",
    ):
        assert key in epochs[0], key
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[1]["test_elbo"] > epochs[0]["test_elbo"]
    assert abs(epochs[1]["test_elbo"] - (epochs[1]["test_recon"] - epochs[1]["test_kl"])) < 1e-3
    assert epochs[0]["train_loss"] < 544  # 784 * log 2: better than coin flips after 10 steps
    config = read_config(out)
    assert config["epoch"] == 2 and config["step"] == 20
    assert config["best_test_elbo"] == pytest.approx(epochs[1]["test_elbo"])


def test_resume_continues_exactly_as_one_run(tmp_path):
    straight = start_run(tmp_path / "a", SMALL, small_config(epochs=2), progress=False)
    part = start_run(tmp_path / "b", SMALL, small_config(epochs=1), progress=False)
    resume_run(part, epochs=2, progress=False)
    wa, wb = weights(straight), weights(part)
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "resumed run differs from straight run"
    timing = ("seconds", "samples_per_s", "epoch_seconds")

    def strip(folder):
        return [{k: v for k, v in r.items() if k not in timing} for r in read_metrics(folder)]

    assert strip(straight) == strip(part)
    # the latent snapshots of the resumed run are those of the straight run, epoch for epoch
    ea, fa, la = read_latent_snapshots(straight)
    eb, fb, lb = read_latent_snapshots(part)
    assert ea == eb == [0, 1, 2]
    assert np.array_equal(fa, fb) and np.array_equal(la, lb)


def test_latent_snapshots_follow_the_test_images_every_epoch(tmp_path):
    out = start_run(tmp_path / "run", SMALL, small_config(epochs=2), progress=False)
    epochs, frames, labels = read_latent_snapshots(out)
    assert epochs == [0, 1, 2]
    assert frames.shape == (3, 500, 2) and labels.shape == (500,)  # test_limit 500 < 2000
    model = load_checkpoint(out)
    from explorer.data.cache import eval_images

    x, y = eval_images("mnist", "test", True, 500)
    with torch.no_grad():
        mu = model.encode(x)[0]
    assert np.array_equal(labels, y.numpy())
    assert np.allclose(frames[-1], mu.numpy(), atol=0.02)  # a 2-D latent is saved as it is (float16)
    assert not np.allclose(frames[0], frames[-1], atol=0.05)  # training moved the points
    wide = start_run(
        tmp_path / "z5", ModelConfig(hidden=(64,), latent_dim=5), small_config(epochs=1), progress=False
    )
    epochs, frames, _ = read_latent_snapshots(wide)
    assert epochs == [0, 1] and frames.shape == (2, 500, 2)  # z > 2: the top two components
    (wide / LATENTS_DIR / "epoch-0001.npy").write_bytes(b"torn")
    assert read_latent_snapshots(wide)[0] == [0]  # a damaged frame is skipped, not fatal


def test_resume_with_a_new_learning_rate(tmp_path):
    import shutil

    first = start_run(tmp_path / "a", SMALL, small_config(epochs=1, limit=300), progress=False)
    shutil.copytree(first, tmp_path / "b")
    start = weights(first)
    same_rate = resume_run(tmp_path / "a", epochs=2, progress=False)
    tiny_rate = resume_run(tmp_path / "b", epochs=2, progress=False, lr=1e-9)
    moved = max((weights(same_rate)[k] - start[k]).abs().max().item() for k in start)
    barely = max((weights(tiny_rate)[k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-3 and barely < 1e-6  # the new rate is the one used (Adam's step is ~lr)
    assert read_config(tiny_rate)["train"]["lr"] == 1e-9  # and kept for later resumes
    assert read_config(same_rate)["train"]["lr"] == 1e-3


def test_iwae_objective_trains_and_reports_the_bound_it_trains_on(tmp_path):
    out = start_run(tmp_path / "iwae", SMALL, small_config(objective="iwae", samples=5), progress=False)
    epochs = [r for r in read_metrics(out) if r["type"] == "epoch"]
    assert len(epochs) == 2
    for row in epochs:
        # On 500 test images the 5-sample bound is above the ELBO (by far more than its noise).
        assert row["test_bound"] > row["test_elbo"] > -544
        # The logged loss is -L_5 and recon, KL are the ELBO's parts: -loss >= recon - KL.
        assert -row["train_loss"] > row["recon"] - row["kl"]
    assert epochs[1]["test_bound"] > epochs[0]["test_bound"]
    saved = read_config(out)["train"]
    assert (saved["objective"], saved["samples"]) == ("iwae", 5)
    with pytest.raises(ValueError, match="no KL weight"):
        small_config(objective="iwae", beta=0.5)


def test_resume_can_switch_to_the_iwae_objective(tmp_path):
    out = start_run(tmp_path / "r", SMALL, small_config(epochs=1, limit=300), progress=False)
    resume_run(out, epochs=2, progress=False, objective="iwae", samples=4)
    first, second = [r for r in read_metrics(out) if r["type"] == "epoch"]
    assert "test_bound" not in first and second["test_bound"] > second["test_elbo"]
    saved = read_config(out)["train"]
    assert (saved["objective"], saved["samples"], saved["limit"]) == ("iwae", 4, 300)
    # None keeps the saved setting: only K changes here.
    resume_run(out, epochs=3, progress=False, samples=2)
    assert (read_config(out)["train"]["objective"], read_config(out)["train"]["samples"]) == ("iwae", 2)
    beta = start_run(tmp_path / "beta", SMALL, small_config(epochs=1, limit=300, beta=0.5), progress=False)
    before = (beta / "model.safetensors").read_bytes()
    with pytest.raises(ExplorerError, match="cannot change the run.*set beta to 1 \\(not 0.5\\)"):
        resume_run(beta, epochs=2, progress=False, objective="iwae", samples=4)
    assert (beta / "model.safetensors").read_bytes() == before


def test_init_from_starts_at_the_checkpointsweights(tmp_path):
    base = start_run(tmp_path / "base", SMALL, small_config(epochs=1, limit=300), progress=False)
    # A rate too small to move the weights: the new run's first test ELBO is the base model's.
    tuned = start_run(
        tmp_path / "tuned",
        config=small_config(epochs=1, limit=300, lr=1e-12, objective="iwae", samples=3),
        progress=False,
        init_from=base,
    )
    start, end = weights(base), weights(tuned)
    assert all(torch.allclose(start[k], end[k], atol=1e-8) for k in start)
    assert read_config(tuned)["model"] == read_config(base)["model"]  # the architecture came along
    assert read_config(tuned)["epoch"] == 1  # a new run: its own epoch count
    with pytest.raises(ExplorerError, match="trained on mnist, not fashion-mnist"):
        start_run(
            tmp_path / "fashion", config=small_config(dataset="fashion-mnist"), progress=False, init_from=base
        )
    assert not (tmp_path / "fashion").exists()


def test_seed_controls_the_run(tmp_path):
    a = start_run(tmp_path / "a", SMALL, small_config(epochs=1, limit=300), progress=False)
    b = start_run(tmp_path / "b", SMALL, small_config(epochs=1, limit=300), progress=False)
    c = start_run(tmp_path / "c", SMALL, small_config(epochs=1, limit=300, seed=4), progress=False)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["enc_head.weight"], wc["enc_head.weight"])


def test_training_works_when_the_caller_turned_gradients_off(tmp_path):
    plain = start_run(tmp_path / "plain", SMALL, small_config(epochs=1, limit=300), progress=False)
    with torch.no_grad():  # as in a notebook cell, or an app thread that only does inference
        quiet = start_run(tmp_path / "quiet", SMALL, small_config(epochs=1, limit=300), progress=False)
        assert not torch.is_grad_enabled()  # and the caller's mode is left as it was
    wa, wb = weights(plain), weights(quiet)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("estimator", ["analytic", "mc"])
@pytest.mark.parametrize("optimizer", ["adam", "adagrad", "rmsprop", "sgd"])
def test_every_optimizer_and_estimator_trains(tmp_path, optimizer, estimator):
    cfg = small_config(
        epochs=1,
        limit=300,
        optimizer=optimizer,
        estimator=estimator,
        samples=2,
        weight_decay=1e-4,
        lr=0.01 if optimizer in ("sgd", "adagrad") else 1e-3,
    )
    out = start_run(tmp_path / optimizer, SMALL, cfg, progress=False)
    row = read_metrics(out)[-1]
    # It learns: the test ELBO beats the untrained decoder's uniform guess of every binary pixel
    # (784 ln 2 = 543.4 nats), with the optimiser and estimator asked for.
    assert row["type"] == "epoch" and row["test_elbo"] > -544
    saved = read_config(out)["train"]
    assert (saved["optimizer"], saved["estimator"]) == (optimizer, estimator)


def test_a_conv_model_of_colour_images_trains_resumes_exactly_and_evaluates(tmp_path):
    from explorer.data.cache import eval_images
    from explorer.evaluate import evaluate

    conv = ModelConfig(arch="conv", channels=(4, 8), hidden=(16,), latent_dim=3, likelihood="logistic",
                       image_shape=(3, 32, 32))  # fmt: skip
    cfg = dict(dataset="shapes", limit=300, test_limit=100)
    straight = start_run(tmp_path / "a", conv, small_config(epochs=2, **cfg), progress=False)
    part = start_run(tmp_path / "b", conv, small_config(epochs=1, **cfg), progress=False)
    resume_run(part, epochs=2, progress=False)
    wa, wb = weights(straight), weights(part)
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "resumed conv run differs from straight run"
    rows = [r for r in read_metrics(straight) if r["type"] == "epoch"]
    assert rows[-1]["test_elbo"] > rows[0]["test_elbo"]  # it learns
    model = load_checkpoint(straight)
    assert model.config.arch == "conv" and model.config.image_shape == (3, 32, 32)
    x, _ = eval_images("shapes", "test", False, 50)
    result = evaluate(model, x, k=20)
    assert 0 < result.bits_per_dim < 8 and result.log_likelihood >= result.elbo - 1.0


def test_a_stop_just_after_a_log_line_gives_no_figures_of_its_one_step(tmp_path, monkeypatch):
    """A stop a step after a metrics line logged that one step's rate, timed with the line's own
    writing (the Train page then showed 2,471 samples/s for a run that had trained at 11,500), and
    its one minibatch's loss (a spike in the curves): the line keeps the position alone."""
    import os
    import signal

    from explorer.train import loop

    calls = []
    train_step = loop.Trainer.train_step

    def step_then_stop(self, idx):
        calls.append(1)
        if len(calls) == 11:  # just after the line of step 10 (log_every 5)
            os.kill(os.getpid(), signal.SIGINT)  # as Stop on the Train page or Ctrl-C does
        return train_step(self, idx)

    monkeypatch.setattr(loop.Trainer, "train_step", step_then_stop)
    out = start_run(tmp_path / "r", SMALL, small_config(epochs=1, limit=2000), progress=False)
    steps = [r for r in read_metrics(out) if r["type"] == "step"]
    assert [r["step"] for r in steps] == [5, 10, 11]
    assert all(r["samples_per_s"] > 0 and r["train_loss"] > 0 for r in steps[:2])
    assert not {"samples_per_s", "train_loss", "recon", "kl"} & set(steps[2])


def test_the_status_follows_the_run_epoch_by_epoch(tmp_path, monkeypatch):
    """status.json said "step": 0 for the whole of a running job (written when it began): it is
    written again at each epoch's end with the step reached."""
    from explorer.train.runfolder import RunFolder

    written = []
    real = RunFolder.write_status

    def record(self, state, **fields):
        written.append((state, fields.get("step")))
        return real(self, state, **fields)

    monkeypatch.setattr(RunFolder, "write_status", record)
    start_run(tmp_path / "run", SMALL, small_config(epochs=2), progress=False)
    running = [step for state, step in written if state == "running"]
    assert running[-2:] == [10, 20], written  # 10 steps an epoch
    assert written[-1] == ("finished", 20)
