"""The Train page: the settings form (widgets found by their setting's key), starting, watching,
stopping, fine-tuning and refusing runs, and the latent space of a run forming."""

import itertools
import json

import pytest
import torch

from explorer.model import ModelConfig
from tests.apptest import (
    TRAIN,
    charts,
    fill,
    labelled,
    page,
    setting,
    small_run,
    spec,
    start,
    wait_for,
    wait_for_file,
)

pytestmark = pytest.mark.integration


def test_train_start_watch_stop(shipped):
    at = page(TRAIN).run()
    assert "No runs yet" in at.info[0].value
    start(fill(at, run="ui-run", epochs=50, limit=2000, hidden=(32,), device="cpu"))
    assert not at.exception and not at.error
    folder = shipped / "runs" / "ui-run"
    wait_for_file(folder / "metrics.jsonl")
    at.run()
    assert labelled(at.selectbox, "Run").value == "ui-run"
    start(fill(at, run="ui-run"))  # a second Start of the same run name is refused
    assert "already training" in at.error[0].value
    at.get_by_key("stop-ui-run").click().run()
    wait_for(folder, "stopped")
    assert (folder / "model.safetensors").is_file()
    at.run()
    assert any(p.proto.text.startswith("stopped: step") for p in at.get("progress"))
    assert "Training on: single process on cpu" in [c.value for c in at.caption]
    # The stopped run (with its checkpoint) is now in the model picker.
    assert "runs/ui-run" in at.sidebar.selectbox[0].options


def test_a_refused_start_keeps_the_typed_run_name(shipped, monkeypatch):
    import explorer.ui.train_form as train_form

    ticks = itertools.count()  # every suggestion made is a new name, as seconds pass
    monkeypatch.setattr(train_form.time, "strftime", lambda fmt: f"t{next(ticks)}")
    at = page(TRAIN).run()
    assert labelled(at.text_input, "Run name").value == "run-t0"
    start(fill(at, run="mine", hidden="lots"))
    assert "hidden sizes must be positive whole numbers like 512,512, not 'lots'" in at.error[0].value
    small_run(at, "mine")
    assert not at.error and (shipped / "runs" / "mine").is_dir()  # the name typed once is kept
    fresh = labelled(at.text_input, "Run name").value
    assert fresh.startswith("run-t") and fresh != "run-t0"  # then a fresh suggestion, at once
    # While "mine" trains: a name typed now is the one used (no rerun in between) ...
    small_run(at, "second")
    assert not at.error and (shipped / "runs" / "second").is_dir()
    # ... and Start pressed twice on one name is refused, not started under another name.
    start(fill(at, run="second"))
    assert "already training" in at.error[0].value
    assert sorted(p.name for p in (shipped / "runs").iterdir()) == ["mine", "second"]
    wait_for(shipped / "runs" / "mine", "finished")
    wait_for(shipped / "runs" / "second", "finished")


def test_train_page_trains_on_the_iwae_bound(shipped):
    at = page(TRAIN).run()
    start(fill(at, objective="iwae", beta=0.5))
    assert "no KL weight: set beta to 1 (not 0.5)" in at.error[0].value
    small_run(at, "iwae", beta=1.0, samples=3, weight_decay=1e-4)
    assert not at.exception and not at.error
    folder = shipped / "runs" / "iwae"
    wait_for(folder, "finished")
    train = json.loads((folder / "config.json").read_text())["train"]
    assert (train["objective"], train["samples"], train["beta"]) == ("iwae", 3, 1.0)
    assert train["weight_decay"] == 1e-4  # a setting reaches the run through the command line
    assert "--weight-decay 0.0001" in (folder / "commands.txt").read_text()
    at.run()
    assert not at.exception
    names = [t["name"] for c in charts(at) for t in spec(c)["data"] if "name" in t]
    assert any("L_K" in n for n in names)  # the bound it trained on is drawn


def test_train_page_fine_tunes_a_shipped_model_or_a_run(shipped):
    at = page(TRAIN).run()
    assert at.get_by_key("start-from").options == ["a new model", "mnist-z2", "mnist-z5"]
    at.get_by_key("start-from").select("mnist-z5").run()
    latent, hidden = setting(at, "latent_dim"), setting(at, "hidden")
    assert (latent.value, latent.disabled, hidden.value, hidden.disabled) == (5, True, "32", True)
    at.get_by_key("start-from").select("mnist-z2").run()
    assert setting(at, "latent_dim").value == 2  # follows the choice
    small_run(at, "tuned", lr=5e-4, samples=2, objective="iwae")
    assert not at.exception and not at.error
    folder = shipped / "runs" / "tuned"
    wait_for(folder, "finished")
    config = json.loads((folder / "config.json").read_text())
    assert (config["model"]["latent_dim"], config["model"]["hidden"]) == (2, [32])
    commands = (folder / "commands.txt").read_text().splitlines()
    assert commands[0] == "# started from the weights of mnist-z2" and "--init-from mnist-z2" in commands[1]
    # A run of one's own is a starting point too, passed by its folder (in a new session: nothing
    # typed before is remembered).
    at = page(TRAIN).run()
    at.get_by_key("start-from").select("runs/tuned").run()
    assert any("Starting from the weights of **runs/tuned**" in c.value for c in at.caption)
    # the form offers the recipe it was trained with
    assert (setting(at, "lr").value, setting(at, "samples").value) == (5e-4, 2)
    assert setting(at, "objective").value == "iwae"
    small_run(at, "tuned-again")
    assert not at.exception and not at.error
    again = shipped / "runs" / "tuned-again"
    wait_for(again, "finished")
    commands = (again / "commands.txt").read_text()
    assert f"--init-from {folder}" in commands and "--objective iwae" in commands


def test_train_page_explains_a_start_point_it_cannot_read(shipped):
    (shipped / "runs" / "broken").mkdir(parents=True)
    (shipped / "runs" / "broken" / "model.safetensors").write_bytes(b"not a checkpoint")
    (shipped / "runs" / "broken" / "config.json").write_text("{not json")
    at = page(TRAIN).run()
    at.get_by_key("start-from").select("runs/broken").run()
    assert not at.exception
    assert "Cannot start from 'runs/broken'" in at.error[0].value
    assert not setting(at, "latent_dim").disabled  # a new model, then


def test_failed_training_process_is_reported(shipped, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # make sure no GPU is seen
    at = page(TRAIN).run()
    start(fill(at, run="no-gpu", device="cuda"))
    assert not at.exception
    assert any("did not start" in e.value and "no CUDA GPU is available" in e.value for e in at.error)
    assert not (shipped / "runs" / "no-gpu").exists()  # a refused start leaves nothing behind


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "a/b", "..", ".hidden"])
def test_train_page_refuses_path_traversal(shipped, name):
    at = page(TRAIN).run()
    start(fill(at, run=name))
    assert not at.exception
    assert "is not allowed" in at.error[0].value
    assert not (shipped / "escape").exists() and not (shipped / "runs" / "a").exists()
    runs = shipped / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "nothing was created"


def test_train_page_animates_the_latent_space_of_a_run(shipped):
    from explorer.config import TrainConfig
    from explorer.train.run import start_run

    cfg = TrainConfig(epochs=2, limit=500, test_limit=300, device="cpu", log_every=2)
    start_run(shipped / "runs" / "small", ModelConfig(hidden=(32,), latent_dim=2), cfg, progress=False)
    at = page(TRAIN).run()
    assert not at.exception
    figures = [spec(c) for c in charts(at)]
    # The curves: 5 steps an epoch, logged every 2, so the train loss lies at fractional epochs.
    # Both the run's own chart and the Compare runs overlay.
    curves = [c for c in figures if not c.get("frames")]
    assert len(curves) == 2
    for chart in curves:
        loss = chart["data"][0]
        assert loss["x"] == [0.4, 0.8, 1.2, 1.6, 2.0] and len(loss["y"]) == 5
    animated = [c for c in figures if c.get("frames")]
    assert len(animated) == 1
    anim = animated[0]
    assert [f["name"] for f in anim["frames"]] == ["0", "1", "2"]
    assert sum(len(t["x"]) for t in anim["data"]) == 300  # every snapshot image, opening on the last epoch
    assert anim["layout"]["sliders"][0]["active"] == 2
    assert any("Press Play" in c.value for c in at.caption)


def test_train_page_offers_processes_with_several_gpus_and_runs_them(shipped, monkeypatch):
    at = page(TRAIN).run()
    with pytest.raises(KeyError):
        at.get_by_key("processes")  # this machine: no GPUs, no choice
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    at.run()
    at.get_by_key("processes").set_value(2)
    start(fill(at, batch_size=61))
    assert "does not split over 2 processes" in at.error[0].value
    small_run(at, "two-procs", batch_size=60)  # on the cpu, over gloo: what CI can run
    assert not at.exception and not at.error
    status = wait_for(shipped / "runs" / "two-procs", "finished", "failed", seconds=180)
    assert status["state"] == "finished", status
    assert status["path"] == "2 processes, DistributedDataParallel over gloo"


def test_the_form_is_derived_from_the_settings(shipped):
    """One widget per setting that explorer.config puts on the form, with its label and help, and
    none for the others (they are CLI flags only)."""
    from explorer.config import MODEL_SETTINGS, TRAIN_SETTINGS

    at = page(TRAIN).run()
    for s in (*MODEL_SETTINGS, *TRAIN_SETTINGS):
        if s.form:
            widget = setting(at, s.name)
            assert widget.label == s.form and widget.help.startswith(s.help), s.name
        else:
            with pytest.raises(KeyError):
                setting(at, s.name)


def test_enter_in_a_field_does_not_start_a_run(shipped):
    """Pressing Enter in a number field submitted the form: one newcomer's Start became four runs
    (each Enter one), the first with the default 50 epochs on all of MNIST. Only Start starts one."""
    at = page(TRAIN).run()
    forms = {f.proto.form.form_id: f.proto.form for f in at.get("form")}
    assert forms["train_form"].enter_to_submit is False


def test_a_run_failed_after_an_unkept_epoch_resumes_from_the_checkpoint_to_its_own_target(shipped):
    """A disk that filled while epoch 2's checkpoint was written (its figures were logged): the page
    said "Epoch 2 / ?", drew epoch 2 without a word and offered to train on to epoch 12, where the
    run had asked for 5 and goes on from epoch 1."""
    import json

    from explorer.config import TrainConfig
    from explorer.train.run import start_run
    from explorer.train.runfolder import RunFolder

    cfg = TrainConfig(epochs=1, limit=500, test_limit=300, device="cpu", log_every=2)
    folder = start_run(
        shipped / "runs" / "full", ModelConfig(hidden=(32,), latent_dim=2), cfg, progress=False
    )
    run = RunFolder(folder)
    epoch_1 = next(r for r in run.read_metrics() if r.get("type") == "epoch")
    run.append_metrics([{**epoch_1, "epoch": 2, "step": 2 * epoch_1["step"]}])  # logged, not kept
    message = "disk full: ... the last good checkpoint (epoch 1, step 5) is kept"
    run.write_status("failed", message=message, epochs=5, pid=0)
    assert json.loads(run.status_file.read_text())["epochs"] == 5
    at = page(TRAIN)
    at.session_state["watch"] = "full"
    at.run()
    assert not at.exception
    assert any(m.label == "Epoch" and m.value == "2 / 5" for m in at.get("metric"))
    said = " ".join(c.value for c in at.caption)
    assert (
        "Epoch 2's figures below were measured, but its checkpoint was not kept: Resume goes on from epoch 1"
        in said
    )
    resume = at.number_input(key="resume-epochs-full")
    assert resume.value == 5 and resume.min == 2


def test_a_run_of_grey_levels_reports_its_test_bound_in_bits_per_dim_too(shipped):
    """Continuous data is reported in bits per dimension (README), and a logistic or Gaussian
    run's Train page gave nats alone; a Bernoulli run keeps the paper's nats."""
    import math

    from explorer.config import TrainConfig
    from explorer.evaluate import bits_per_dim
    from explorer.train.run import start_run

    for name, likelihood, binarize in (("grey", "gaussian", "none"), ("binary", "bernoulli", "auto")):
        cfg = TrainConfig(epochs=1, limit=500, test_limit=300, device="cpu", log_every=2, binarize=binarize)
        config = ModelConfig(hidden=(32,), latent_dim=2, likelihood=likelihood)
        start_run(shipped / "runs" / name, config, cfg, progress=False)
    for name, shown in (("grey", True), ("binary", False)):
        at = page(TRAIN)
        at.session_state["watch"] = name
        at.run()
        assert not at.exception
        elbo = next(float(m.value) for m in at.get("metric") if m.label == "Test ELBO (nats)")
        said = [c.value for c in at.caption if "bits/dim" in c.value]
        if shown:
            assert said == [f"-ELBO: {bits_per_dim(-elbo, 784, 'gaussian', False):.3f} bits/dim"]
            assert math.isfinite(float(said[0].split()[1]))
        else:
            assert said == []


def test_the_home_page_gives_the_saved_models_figure_not_the_best_epochs(shipped):
    """Home said "Test ELBO -21712.23 ... Best test ELBO during training, after 20 epochs": epoch
    7's figure, where the weights loaded are epoch 20's (-23371.45). It gives the row of the saved
    epoch, and says so."""
    from explorer.config import TrainConfig
    from explorer.train.run import start_run
    from explorer.train.runfolder import RunFolder

    cfg = TrainConfig(epochs=2, limit=500, test_limit=300, device="cpu", log_every=2)
    folder = start_run(
        shipped / "runs" / "mine", ModelConfig(hidden=(32,), latent_dim=2), cfg, progress=False
    )
    rows = [r for r in RunFolder(folder).read_metrics() if r.get("type") == "epoch"]
    at = page("app.py")
    at.query_params["model"] = "mine"
    at.run()
    assert not at.exception
    shown = next(m.value for m in at.get("metric") if m.label == "Test ELBO (nats)")
    assert shown == f"{rows[-1]['test_elbo']:.2f}"
    assert any("Test ELBO at epoch 2, the saved model's" in c.value for c in at.caption)


def test_the_train_page_follows_the_run_chosen_in_the_sidebar_and_keeps_no_view_in_its_address(shipped):
    """`/Train?model=tall-conv` showed the newest run, not tall-conv; `?point=99999&map=tsne` stayed
    in its address (checked by no model there)."""
    from explorer.config import TrainConfig
    from explorer.train.run import start_run

    cfg = TrainConfig(epochs=1, limit=300, test_limit=200, device="cpu", log_every=2)
    for name in ("older", "newer"):
        start_run(shipped / "runs" / name, ModelConfig(hidden=(16,), latent_dim=2), cfg, progress=False)
    at = page(TRAIN)
    at.query_params.update({"model": "older", "point": "99999", "map": "tsne", "density": "7"})
    at.run()
    assert not at.exception
    assert next(s for s in at.selectbox if s.label == "Run").value == "older"
    assert not list(at.query_params)
    at.sidebar.selectbox(key="model_picker").set_value("runs/newer").run()
    assert next(s for s in at.selectbox if s.label == "Run").value == "newer"
