"""A run folder and checkpoint written by an earlier layout of the package (explorer/ as flat
modules: tests/fixtures/old-layout-run, made by `vae-explorer train --limit 300 --epochs 1
--hidden 16 --optimizer sgd ...`, as its commands.txt says) loads, evaluates to the figures that
layout printed (tests/fixtures/old-layout-evaluate.json) and resumes."""

import json
import shutil
from pathlib import Path

import pytest

from explorer.checkpoints import load_checkpoint, read_config
from explorer.cli import main
from explorer.train.runfolder import RunFolder

pytestmark = pytest.mark.integration  # real MNIST

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OLD_RUN = FIXTURES / "old-layout-run"


def test_the_old_checkpoint_loads_as_it_was_written():
    model = load_checkpoint(OLD_RUN)
    config = read_config(OLD_RUN)
    assert model.config.hidden == (16,) and model.config.latent_dim == 2
    assert config["epoch"] == 1 and config["train"]["optimizer"] == "sgd"
    assert [r["type"] for r in RunFolder(OLD_RUN).read_metrics()][-1] == "epoch"


def test_the_old_run_evaluates_to_the_figures_the_old_layout_printed(capsys):
    assert main(["evaluate", str(OLD_RUN), "--k", "10", "--limit", "100", "--device", "cpu", "--json"]) == 0
    now = json.loads(capsys.readouterr().out)
    then = json.loads((FIXTURES / "old-layout-evaluate.json").read_text())
    for key in ("elbo", "recon", "kl", "log_likelihood", "nll", "bits_per_dim"):
        assert now[key] == pytest.approx(then[key], rel=1e-5), key
    for key in ("kl_per_dim", "posterior_mean_variance"):  # rounded to 4 places when written
        assert now[key] == pytest.approx(then[key], abs=2e-4), key
    measured = ("seconds", "checkpoint")  # the time taken, and the path as given
    exact = [k for k, v in then.items() if k not in measured and not isinstance(v, (float, list))]
    assert {k: now[k] for k in exact} == {k: then[k] for k in exact}  # n, k, dims, binarized, ...


def test_the_old_run_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    epochs = [r for r in RunFolder(run).read_metrics() if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert read_config(run)["epoch"] == 2 and RunFolder(run).read_status()["state"] == "finished"
    assert RunFolder(run).read_commands()[-1].startswith("vae-explorer train --resume")
    assert load_checkpoint(run).config.hidden == (16,)
