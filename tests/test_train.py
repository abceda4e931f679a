"""The trainer on real MNIST subsets: learning, metrics, reproducibility, exact resume, clean stop."""

import importlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from explorer.checkpoints import load_checkpoint, read_config
from explorer.config import TrainConfig
from explorer.errors import ExplorerError
from explorer.model import ModelConfig
from explorer.runfolder import LATENTS_DIR, RunFolder
from explorer.train import resume_run, start_run

pytestmark = pytest.mark.integration
trainer_module = importlib.import_module("explorer.trainer")
steps_module = importlib.import_module("explorer.steps")


def read_metrics(folder):
    return RunFolder(folder).read_metrics()


def read_status(folder):
    return RunFolder(folder).read_status()


def read_latent_snapshots(folder):
    return RunFolder(folder).read_latent_snapshots()


SMALL = ModelConfig(hidden=(64,), latent_dim=2)


def _cfg(**kw):
    base = dict(epochs=2, limit=1000, test_limit=500, log_every=5, device="cpu", seed=3)
    return TrainConfig(**{**base, **kw})


def _weights(folder):
    return load_checkpoint(folder).state_dict()


def cli_train_command(out) -> list[str]:
    """`vae-explorer train` of 2 epochs x 300 steps, logging every 10 steps: long enough to be
    interrupted mid-epoch by a test."""
    return [
        sys.executable,
        "-m",
        "explorer.cli",
        "train",
        "--out",
        str(out),
        "--limit",
        "3000",
        "--test-limit",
        "200",
        "--batch-size",
        "10",
        "--hidden",
        "32",
        "--epochs",
        "2",
        "--log-every",
        "10",
        "--device",
        "cpu",
        "--no-progress",
    ]


def test_training_learns_and_logs(tmp_path):
    out = start_run(tmp_path / "run", SMALL, _cfg(), progress=False)
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
    straight = start_run(tmp_path / "a", SMALL, _cfg(epochs=2), progress=False)
    part = start_run(tmp_path / "b", SMALL, _cfg(epochs=1), progress=False)
    resume_run(part, epochs=2, progress=False)
    wa, wb = _weights(straight), _weights(part)
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
    out = start_run(tmp_path / "run", SMALL, _cfg(epochs=2), progress=False)
    epochs, frames, labels = read_latent_snapshots(out)
    assert epochs == [0, 1, 2]
    assert frames.shape == (3, 500, 2) and labels.shape == (500,)  # test_limit 500 < 2000
    model = load_checkpoint(out)
    from explorer.evaluate import eval_images

    x, y = eval_images("mnist", "test", True, 500)
    with torch.no_grad():
        mu = model.encode(x)[0]
    assert np.array_equal(labels, y.numpy())
    assert np.allclose(frames[-1], mu.numpy(), atol=0.02)  # a 2-D latent is saved as it is (float16)
    assert not np.allclose(frames[0], frames[-1], atol=0.05)  # training moved the points
    wide = start_run(tmp_path / "z5", ModelConfig(hidden=(64,), latent_dim=5), _cfg(epochs=1), progress=False)
    epochs, frames, _ = read_latent_snapshots(wide)
    assert epochs == [0, 1] and frames.shape == (2, 500, 2)  # z > 2: the top two components
    (wide / LATENTS_DIR / "epoch-0001.npy").write_bytes(b"torn")
    assert read_latent_snapshots(wide)[0] == [0]  # a damaged frame is skipped, not fatal


def test_resume_with_a_new_learning_rate(tmp_path):
    import shutil

    first = start_run(tmp_path / "a", SMALL, _cfg(epochs=1, limit=300), progress=False)
    shutil.copytree(first, tmp_path / "b")
    start = _weights(first)
    same_rate = resume_run(tmp_path / "a", epochs=2, progress=False)
    tiny_rate = resume_run(tmp_path / "b", epochs=2, progress=False, lr=1e-9)
    moved = max((_weights(same_rate)[k] - start[k]).abs().max().item() for k in start)
    barely = max((_weights(tiny_rate)[k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-3 and barely < 1e-6  # the new rate is the one used (Adam's step is ~lr)
    assert read_config(tiny_rate)["train"]["lr"] == 1e-9  # and kept for later resumes
    assert read_config(same_rate)["train"]["lr"] == 1e-3


def test_iwae_objective_trains_and_reports_the_bound_it_trains_on(tmp_path):
    out = start_run(tmp_path / "iwae", SMALL, _cfg(objective="iwae", samples=5), progress=False)
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
        _cfg(objective="iwae", beta=0.5)


def test_resume_can_switch_to_the_iwae_objective(tmp_path):
    out = start_run(tmp_path / "r", SMALL, _cfg(epochs=1, limit=300), progress=False)
    resume_run(out, epochs=2, progress=False, objective="iwae", samples=4)
    first, second = [r for r in read_metrics(out) if r["type"] == "epoch"]
    assert "test_bound" not in first and second["test_bound"] > second["test_elbo"]
    saved = read_config(out)["train"]
    assert (saved["objective"], saved["samples"], saved["limit"]) == ("iwae", 4, 300)
    # None keeps the saved setting: only K changes here.
    resume_run(out, epochs=3, progress=False, samples=2)
    assert (read_config(out)["train"]["objective"], read_config(out)["train"]["samples"]) == ("iwae", 2)
    beta = start_run(tmp_path / "beta", SMALL, _cfg(epochs=1, limit=300, beta=0.5), progress=False)
    before = (beta / "model.safetensors").read_bytes()
    with pytest.raises(ExplorerError, match="cannot change the run.*set beta to 1 \\(not 0.5\\)"):
        resume_run(beta, epochs=2, progress=False, objective="iwae", samples=4)
    assert (beta / "model.safetensors").read_bytes() == before


def test_init_from_starts_at_the_checkpoints_weights(tmp_path):
    base = start_run(tmp_path / "base", SMALL, _cfg(epochs=1, limit=300), progress=False)
    # A rate too small to move the weights: the new run's first test ELBO is the base model's.
    tuned = start_run(
        tmp_path / "tuned",
        config=_cfg(epochs=1, limit=300, lr=1e-12, objective="iwae", samples=3),
        progress=False,
        init_from=base,
    )
    start, end = _weights(base), _weights(tuned)
    assert all(torch.allclose(start[k], end[k], atol=1e-8) for k in start)
    assert read_config(tuned)["model"] == read_config(base)["model"]  # the architecture came along
    assert read_config(tuned)["epoch"] == 1  # a new run: its own epoch count
    with pytest.raises(ExplorerError, match="trained on mnist, not fashion-mnist"):
        start_run(tmp_path / "fashion", config=_cfg(dataset="fashion-mnist"), progress=False, init_from=base)
    assert not (tmp_path / "fashion").exists()


def test_seed_controls_the_run(tmp_path):
    a = start_run(tmp_path / "a", SMALL, _cfg(epochs=1, limit=300), progress=False)
    b = start_run(tmp_path / "b", SMALL, _cfg(epochs=1, limit=300), progress=False)
    c = start_run(tmp_path / "c", SMALL, _cfg(epochs=1, limit=300, seed=4), progress=False)
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["enc_head.weight"], wc["enc_head.weight"])


def test_training_works_when_the_caller_turned_gradients_off(tmp_path):
    plain = start_run(tmp_path / "plain", SMALL, _cfg(epochs=1, limit=300), progress=False)
    with torch.no_grad():  # as in a notebook cell, or an app thread that only does inference
        quiet = start_run(tmp_path / "quiet", SMALL, _cfg(epochs=1, limit=300), progress=False)
        assert not torch.is_grad_enabled()  # and the caller's mode is left as it was
    wa, wb = _weights(plain), _weights(quiet)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("optimizer", ["adam", "adagrad", "rmsprop", "sgd"])
def test_every_optimizer_and_estimator_trains(tmp_path, optimizer):
    cfg = _cfg(
        epochs=1,
        limit=300,
        optimizer=optimizer,
        estimator="mc",
        samples=2,
        weight_decay=1e-4,
        lr=0.01 if optimizer in ("sgd", "adagrad") else 1e-3,
    )
    out = start_run(tmp_path / optimizer, SMALL, cfg, progress=False)
    row = read_metrics(out)[-1]
    assert row["type"] == "epoch" and row["test_elbo"] > -544


def test_existing_run_needs_resume(tmp_path):
    out = start_run(tmp_path / "r", SMALL, _cfg(epochs=1, limit=200), progress=False)
    with pytest.raises(ExplorerError, match="--resume"):
        start_run(out, SMALL, _cfg(epochs=1, limit=200))
    with pytest.raises(ExplorerError, match="holds no checkpoint"):
        resume_run(tmp_path / "empty")


def test_divergence_stops_with_message_and_keeps_checkpoint(tmp_path, monkeypatch):
    out = start_run(tmp_path / "r", SMALL, _cfg(epochs=1), progress=False)
    before = (out / "model.safetensors").read_bytes()
    real = steps_module.elbo_terms

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        return terms._replace(recon=terms.recon * float("nan"))

    monkeypatch.setattr(steps_module, "elbo_terms", poisoned)
    with pytest.raises(ExplorerError, match="diverged at step 15.*last good checkpoint"):
        resume_run(out, epochs=2, progress=False)
    assert (out / "model.safetensors").read_bytes() == before


def test_sigterm_stops_cleanly_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    cmd = cli_train_command(out)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    stopped = read_config(out)
    assert 0 < stopped["step"] < 600, "stopped mid-run with a checkpoint"
    rc = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "train", "--resume", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rc.returncode == 0, rc.stderr
    rows = read_metrics(out)
    steps = [r["step"] for r in rows if r["type"] == "step"]
    assert steps == sorted(set(steps)), "no metric line duplicated"
    assert set(range(10, 601, 10)) <= set(steps), "no metric line lost"
    assert stopped["step"] in steps, "the stop logged the partial interval"
    assert [r["epoch"] for r in rows if r["type"] == "epoch"] == [1, 2]
    assert read_config(out)["step"] == 600
    assert "Traceback" not in err


def test_failed_checkpoint_write_keeps_the_previous_one_and_says_so(tmp_path, monkeypatch, disk_full):
    out = start_run(tmp_path / "r", SMALL, _cfg(epochs=1), progress=False)
    before = (out / "model.safetensors").read_bytes()
    disk_full()
    with pytest.raises(
        ExplorerError, match=r"No space left.*last good checkpoint .*\(epoch 1, step 10\) is intact"
    ):
        resume_run(out, epochs=2, progress=False)
    monkeypatch.undo()
    assert (out / "model.safetensors").read_bytes() == before
    assert read_status(out)["state"] == "failed"
    resume_run(out, epochs=2, progress=False)  # then it carries on
    rows = read_metrics(out)
    assert [r["epoch"] for r in rows if r["type"] == "epoch"] == [1, 2]
    steps = [r["step"] for r in rows if r["type"] == "step"]
    assert steps == sorted(set(steps)) == [5, 10, 15, 20], "no line lost or duplicated"


def test_kill_9_mid_epoch_then_resume_loses_and_duplicates_nothing(tmp_path):
    from explorer.jobs import JobRegistry

    out = tmp_path / "runs" / "killed"
    cmd = cli_train_command(out)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until epoch 2 is under way (a checkpoint exists)
        rows = read_metrics(out)
        if any(r["type"] == "step" and r["epoch"] == 2 for r in rows):
            break
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no handler runs, nothing is saved
    proc.wait()
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"type": "step", "epoch": 2, "ste')  # a line torn by the kill
    assert JobRegistry(tmp_path / "runs").view("killed").state == "lost"
    assert read_config(out)["epoch"] == 1  # the last checkpoint is the end of epoch 1
    rc = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "train", "--resume", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rc.returncode == 0, rc.stderr
    rows = read_metrics(out)
    assert (out / "metrics.jsonl").read_text().endswith("}\n"), "no torn line kept"
    steps = [r["step"] for r in rows if r["type"] == "step"]
    assert steps == list(range(10, 601, 10)), "every step line once, none lost"
    assert [r["epoch"] for r in rows if r["type"] == "epoch"] == [1, 2]


def test_a_run_whose_test_elbo_goes_non_finite_fails_loudly(tmp_path):
    """Adam at a learning rate of 1e6 (the handed case): the training loss of the one step per
    epoch looks finite, but the test ELBO is -1e30 nats after the first epoch (NaN and an infinite
    KL by the third). The run fails with the message and a non-zero exit, saves no checkpoint of
    a diverged model, and its metrics.jsonl is standard JSON."""
    out = tmp_path / "r"
    command = [
        sys.executable, "-m", "explorer.cli", "train", "--optimizer", "adam", "--lr", "1000000",
        "--limit", "100", "--batch-size", "100", "--epochs", "3", "--hidden", "32",
        "--latent-dim", "2", "--test-limit", "500", "--device", "cpu", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "run saved" not in proc.stdout and "Traceback" not in proc.stderr
    assert "diverged in epoch 1" in proc.stderr and "no checkpoint had been saved" in proc.stderr
    assert "Lower --lr (it is 1e+06)." in proc.stderr  # no advice to use what it already uses
    status = read_status(out)
    assert status["state"] == "failed" and "diverged" in status["message"]
    assert not (out / "model.safetensors").exists()
    import json

    for line in (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []:
        row = json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.jsonl"))
        assert all(np.isfinite(v) for v in row.values() if isinstance(v, float))


def test_an_absurd_test_elbo_ends_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    out = start_run(tmp_path / "r", SMALL, _cfg(epochs=1, limit=200), progress=False)
    before = (out / "model.safetensors").read_bytes()
    real = trainer_module.Trainer.test
    monkeypatch.setattr(trainer_module.Trainer, "test", lambda self: {**real(self), "test_elbo": -1e30})
    with pytest.raises(ExplorerError, match=r"diverged in epoch 2.*\(epoch 1, step \d+\) is kept"):
        resume_run(out, epochs=2, progress=False)
    assert (out / "model.safetensors").read_bytes() == before


def test_non_finite_figures_are_written_as_null_with_a_flag(tmp_path):
    run = RunFolder(tmp_path)
    run.append_metrics([{"step": 1, "kl": float("inf"), "recon": float("nan"), "train_loss": 3.0}])
    text = run.metrics.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert run.read_metrics() == [
        {"step": 1, "kl": None, "recon": None, "train_loss": 3.0, "nonfinite": ["kl", "recon"]}
    ]


def test_a_model_whose_weights_are_not_finite_is_never_saved(tmp_path):
    out = start_run(tmp_path / "r", SMALL, _cfg(epochs=1, limit=200), progress=False)
    from explorer.distributed import World

    trainer = trainer_module.Trainer(
        RunFolder(out), SMALL, _cfg(epochs=2, limit=200), World(), False, resume=True
    )
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = float("nan")
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(ExplorerError, match="no longer finite.*epoch 1"):  # names the kept one
        trainer.save()
    assert (out / "model.safetensors").read_bytes() == before


def test_a_step_too_big_for_memory_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ExplorerError, match=r"--samples 100000 .* GB .* use --samples \d+ or fewer"):
        start_run(tmp_path / "r", SMALL, _cfg(objective="iwae", samples=100_000), progress=False)
    assert not (tmp_path / "r").exists()
