"""Runs that go wrong fail loudly and lose nothing: divergence, signals, kill -9, a full disk,
non-finite figures, a step too big for memory."""

import importlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from explorer.checkpoints import read_config
from explorer.cli.args import EXIT_INTERRUPTED
from explorer.errors import ExplorerError
from explorer.train.run import resume_run, start_run
from explorer.train.runfolder import RunFolder
from tests.runs import (
    SMALL,
    cli_resume,
    cli_train_command,
    read_metrics,
    read_status,
    small_config,
)

pytestmark = pytest.mark.integration
trainer_module = importlib.import_module("explorer.train.loop")
steps_module = importlib.import_module("explorer.train.steps")


def test_existing_run_needs_resume(tmp_path):
    out = start_run(tmp_path / "r", SMALL, small_config(epochs=1, limit=200), progress=False)
    with pytest.raises(ExplorerError, match="--resume"):
        start_run(out, SMALL, small_config(epochs=1, limit=200))
    with pytest.raises(ExplorerError, match="there is no run folder .*nope; name a run that exists"):
        resume_run(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()  # (it was made, and said to hold no checkpoint)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExplorerError, match="holds no checkpoint"):
        resume_run(tmp_path / "empty")


def test_divergence_stops_with_message_and_keeps_checkpoint(tmp_path, monkeypatch):
    out = start_run(tmp_path / "r", SMALL, small_config(epochs=1), progress=False)
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
    assert proc.returncode == EXIT_INTERRUPTED, err  # stopped, not finished: `&&` must not go on
    assert f"vae-explorer train --resume {out}" in err  # and it says how to go on
    stopped = read_config(out)
    assert 0 < stopped["step"] < 600, "stopped mid-run with a checkpoint"
    rc = cli_resume(out)
    assert rc.returncode == 0, rc.stderr
    rows = read_metrics(out)
    steps = [r["step"] for r in rows if r["type"] == "step"]
    assert steps == sorted(set(steps)), "no metric line duplicated"
    assert set(range(10, 601, 10)) <= set(steps), "no metric line lost"
    assert stopped["step"] in steps, "the stop logged the partial interval"
    assert [r["epoch"] for r in rows if r["type"] == "epoch"] == [1, 2]
    assert read_config(out)["step"] == 600
    assert "Traceback" not in err


def test_a_stop_while_the_run_starts_checkpoints_at_its_first_step(tmp_path, monkeypatch):
    """The Train page's Stop while a run loaded its data (its status "starting") ended the process
    with nothing saved: the page said "lost ... delete the run and start it again". The stop is
    kept until the first step, which checkpoints; the run resumes from there to the end."""
    import os

    from explorer.train.start import start_or_resume

    loading = trainer_module.RunImages.load

    def stopped_while_loading(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # (SIGINT: before the fix, a KeyboardInterrupt, not a kill)
        return loading(*args, **kwargs)

    monkeypatch.setattr(trainer_module.RunImages, "load", staticmethod(stopped_while_loading))
    values = dict(epochs=1, limit=1000, test_limit=500, log_every=5, device="cpu")
    done = start_or_resume(out=tmp_path / "r", model_values={"hidden": (16,)}, train_values=values,
                           progress=False)  # fmt: skip
    assert done.stopped and read_status(done.folder)["state"] == "stopped"
    assert read_config(done.folder)["step"] == 0  # a checkpoint before any step: nothing lost, nothing done
    monkeypatch.setattr(trainer_module.RunImages, "load", staticmethod(loading))
    resume_run(done.folder, progress=False)
    assert read_status(done.folder)["state"] == "finished" and read_config(done.folder)["step"] == 10


def test_failed_checkpoint_write_keeps_the_previous_one_and_says_so(tmp_path, monkeypatch, disk_full):
    out = start_run(tmp_path / "r", SMALL, small_config(epochs=1), progress=False)
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


def test_a_full_disk_before_the_first_checkpoint_says_start_again_and_a_new_run_takes_the_folder(
    tmp_path, monkeypatch, disk_full
):
    """The disk filled at a run's first save: the message said "continue with --resume", which then
    said "holds no checkpoint; train without --resume", which said "already holds a run; pass
    --resume": a loop with no way out but deleting the folder."""
    disk_full()
    command = f"vae-explorer train --out {tmp_path / 'r'} --epochs 1 --hidden 16"
    with pytest.raises(ExplorerError, match=r"no checkpoint had been saved.*start it again ") as exc:
        start_run(tmp_path / "r", SMALL, small_config(epochs=1), progress=False, command=command)
    assert "--resume" not in str(exc.value) and str(exc.value).endswith(command)  # the whole command
    monkeypatch.undo()
    run = RunFolder(tmp_path / "r")
    assert read_status(run.path)["state"] == "failed" and not run.has_checkpoint()
    with pytest.raises(ExplorerError, match=r"holds no checkpoint .*start it again without --resume") as exc:
        resume_run(run.path, progress=False)
    assert str(exc.value).endswith(f"without --resume: {command}")  # the command itself, not "--out r ..."
    # (a first checkpoint that did not fit leaves no training state either: tests/test_checkpoints.py)
    assert not list(run.path.glob("train_state*"))
    start_run(run.path, SMALL, small_config(epochs=1), progress=False)  # the same command, again
    rows = read_metrics(run.path)
    assert [r["epoch"] for r in rows if r["type"] == "epoch"] == [1]  # the failed attempt's lines gone
    steps = [r["step"] for r in rows if r["type"] == "step"]
    assert steps == sorted(set(steps)) == [5, 10]
    assert run.has_checkpoint() and read_status(run.path)["state"] == "finished"
    with pytest.raises(ExplorerError, match="already holds a run"):  # a run with a checkpoint stays
        start_run(run.path, SMALL, small_config(epochs=1), progress=False)


def test_kill_9_mid_epoch_then_resume_loses_and_duplicates_nothing(tmp_path):
    from explorer.train.jobs import JobRegistry

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
    rc = cli_resume(out)
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
    assert "Lower the learning rate (--lr; it is 1e+06)." in proc.stderr  # not: use what it uses
    status = read_status(out)
    assert status["state"] == "failed" and "diverged" in status["message"]
    assert not (out / "model.safetensors").exists()
    import json

    for line in (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []:
        row = json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.jsonl"))
        assert all(np.isfinite(v) for v in row.values() if isinstance(v, float))


def test_an_absurd_test_elbo_ends_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    out = start_run(tmp_path / "r", SMALL, small_config(epochs=1, limit=200), progress=False)
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
    out = start_run(tmp_path / "r", SMALL, small_config(epochs=1, limit=200), progress=False)
    from explorer.train.distributed import World

    trainer = trainer_module.Trainer(
        RunFolder(out), SMALL, small_config(epochs=2, limit=200), World(), False, resume=True
    )
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = float("nan")
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(ExplorerError, match="no longer finite.*epoch 1"):  # names the kept one
        trainer.save()
    assert (out / "model.safetensors").read_bytes() == before


def test_a_step_too_big_for_memory_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ExplorerError, match=r"--samples 100000 .* GB .* use --samples \d+ or fewer"):
        start_run(tmp_path / "r", SMALL, small_config(objective="iwae", samples=100_000), progress=False)
    assert not (tmp_path / "r").exists()


def test_the_epoch_line_gives_bits_per_dim_for_grey_levels_and_colour():
    """A logistic or Gaussian decoder's epoch lines said nats only, where the README and evaluate
    report such models in bits/dim; a Bernoulli decoder's stay in nats, as the paper's."""
    import math

    from explorer.config import ModelConfig, TrainConfig
    from explorer.train.loop import _epoch_line

    cfg, test = TrainConfig(epochs=3), {"test_elbo": -4481.02}
    colour = ModelConfig(image_shape=(3, 32, 32), likelihood="logistic")
    line = _epoch_line(1, cfg, 4500.0, test, 2.0, colour)
    assert f"test ELBO -4481.02 nats ({4481.02 / (3 * 32 * 32 * math.log(2)):.3f} bits/dim)" in line
    assert "bits/dim" not in _epoch_line(1, cfg, 90.0, {"test_elbo": -90.0}, 2.0, ModelConfig())
    assert "nats" not in _epoch_line(1, cfg, 90.0, {}, 2.0, ModelConfig())  # Monte Carlo EM: no figure
