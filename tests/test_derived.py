"""The figures stored beside a model (explorer/explore/derived.py): their round trip, their refusal when
they are not the model's or are damaged, a page's first view reading them instead of measuring,
and a finished run writing them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.cards import run_binarizes
from explorer.checkpoints import save_checkpoint
from explorer.explore import derived
from explorer.model import VAE, ModelConfig

N = 400  # test images for the direct round trips: the figures' size does not matter here


def small_model(folder, z: int = 3, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    model = VAE(ModelConfig(hidden=(32,), latent_dim=z))
    save_checkpoint(folder, model, epoch=1, step=10, train_config={"dataset": "mnist"})
    return model


@pytest.fixture(scope="module")
def measured(tmp_path_factory, mnist_test):
    """A small model's figures over N test images, measured once for the module."""
    model = small_model(tmp_path_factory.mktemp("measured") / "m")
    x = mnist_test.images[:N].float() / 255.0
    return model, x, derived.compute(model, "mnist", derived.CORE, x=x, binarized=True)  # as its run scores


@pytest.fixture
def stored(tmp_path, measured):
    """The small model in a folder of its own, its figures saved beside it."""
    model, x, figures = measured
    small_model(tmp_path / "m")  # the same seed: the same weights
    derived.save(tmp_path / "m", figures)
    return tmp_path / "m", model, x, figures


def test_the_figures_come_back_as_they_were_stored(stored):
    folder, model, x, figures = stored
    back = derived.load(folder)
    for name in ("codes", "elbo", "kl", "variance"):
        assert torch.equal(getattr(back, name), getattr(figures, name).to(getattr(back, name).dtype)), name
    assert back.codes.shape == (N, 3) and back.elbo.shape == (N,)
    for name in ("prior", "map"):
        a, b = figures.densities[name], back.densities[name]
        assert np.array_equal(a.xs, b.xs) and np.array_equal(a.holes, b.holes)
        assert np.allclose(a.aggregate, b.aggregate, rtol=1e-6) and a.hole_mass == b.hole_mass
    # the restored detector (NumPy, no scikit-learn) judges as the fitted one (scikit-learn's
    # mixture and regression), on images it never saw
    from explorer.explore.outliers import noise_images
    from explorer.explore.strangers import image_statistics

    seen = image_statistics(model, torch.cat([x[:50], noise_images(20, seed=5)]))
    assert np.allclose(
        figures.detector.strangeness(seen), back.detector.strangeness(seen), rtol=1e-9, atol=1e-9
    )
    assert np.allclose(figures.detector.density_score(seen), back.detector.density_score(seen), rtol=1e-9)
    assert [v.stranger for v in back.detector.verdicts(seen)] == [
        v.stranger for v in figures.detector.verdicts(seen)
    ]
    # independent references: the codes are the encoder's means, the units its KL and variance
    # (those over the binarised test set, as the run scores it)
    from explorer.data.cache import eval_images

    with torch.no_grad():
        mu = model.encode(x)[0]
        assert torch.allclose(back.codes, mu, atol=1e-6)
        mu, logvar = model.encode(eval_images("mnist", "test", binarized=True)[0])
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    assert torch.allclose(back.kl, kl.double().mean(0), rtol=1e-5)
    assert torch.allclose(back.variance, mu.double().var(0), rtol=1e-5)


def test_figures_of_other_weights_are_refused_and_measured_again(stored, monkeypatch):
    folder, _, _, figures = stored
    small_model(folder, seed=1)  # the same architecture, retrained: other weights
    with pytest.raises(derived.Stale, match="other weights"):
        derived.load(folder)
    calls = []
    real = derived.compute
    monkeypatch.setattr(derived, "test_images", lambda dataset: torch.rand(N, 1, 28, 28))
    monkeypatch.setattr(derived, "compute", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = derived.ensure(folder, parts=("codes", "units"))
    assert len(calls) == 1 and not torch.equal(again.codes, figures.codes)
    assert again.detector is None  # only what was asked for
    assert torch.equal(derived.load(folder).codes, again.codes)  # rewritten, now the model's


@pytest.mark.parametrize("damage", ["truncated", "flipped", "json"])
def test_a_damaged_file_is_refused_and_rewritten(stored, monkeypatch, damage):
    folder, _, x, figures = stored
    arrays, meta = folder / "derived" / derived.ARRAYS, folder / "derived" / derived.META
    if damage == "truncated":
        arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
    elif damage == "flipped":
        blob = bytearray(arrays.read_bytes())
        blob[-3] ^= 0xFF
        arrays.write_bytes(bytes(blob))
    else:
        meta.write_text(meta.read_text()[:40])
    with pytest.raises(derived.Stale):
        derived.load(folder)
    monkeypatch.setattr(derived, "test_images", lambda dataset: x)
    again = derived.ensure(folder, parts=("codes",))
    assert torch.equal(again.codes, figures.codes)
    assert json.loads(meta.read_text())["parts"] == ["codes"]
    assert torch.equal(derived.load(folder).codes, figures.codes)


def test_a_missing_part_is_added_and_the_others_kept(stored, monkeypatch):
    folder, model, x, figures = stored
    monkeypatch.setattr(derived, "test_images", lambda dataset: x)
    with_map = derived.ensure(folder, model, parts=("tsne",))
    back = derived.load(folder)
    assert back.maps["tsne"].shape == (N, 2) and torch.equal(back.maps["tsne"], with_map.maps["tsne"])
    assert torch.equal(back.elbo, figures.elbo) and back.detector is not None


def test_a_detector_of_other_statistics_is_left_out_and_fitted_again_alone(stored, monkeypatch):
    """A detector stored before the statistics changed (here: before the ink statistics) would
    misread today's: it is left out when read, and only it is measured again."""
    from explorer.explore.strangers import STATISTICS

    folder, model, x, figures = stored
    meta_file = folder / "derived" / derived.META
    meta = json.loads(meta_file.read_text())
    assert meta["detector"]["statistics"] == list(STATISTICS)
    meta["detector"]["statistics"] = list(STATISTICS[:4])
    meta_file.write_text(json.dumps(meta))
    back = derived.load(folder)
    assert not back.has("detector") and torch.equal(back.codes, figures.codes)
    import explorer.explore.strangers

    fitted = []  # the fit itself (a minute) is the measured one: what matters is that it is asked for
    monkeypatch.setattr(
        explorer.explore.strangers, "fit_detector", lambda *a: fitted.append(a[2]) or figures.detector
    )
    monkeypatch.setattr(derived, "test_images", lambda dataset: x)
    again = derived.ensure(folder, model)
    assert fitted == ["mnist"] and again.has("detector") and torch.equal(again.elbo, figures.elbo)
    assert derived.load(folder).detector.threshold == pytest.approx(figures.detector.threshold)


def test_density_maps_of_another_estimator_are_left_out_and_drawn_again_alone(stored, monkeypatch):
    """Maps drawn before the posteriors were widened to their neighbours' spacing (no estimator
    named) would show gaps between narrow posteriors as holes: left out when read, redrawn alone."""
    from explorer.explore.density import ESTIMATOR

    folder, model, x, figures = stored
    meta_file = folder / "derived" / derived.META
    meta = json.loads(meta_file.read_text())
    assert meta["density_estimator"] == ESTIMATOR
    del meta["density_estimator"]
    meta_file.write_text(json.dumps(meta))
    back = derived.load(folder)
    assert not back.has("densities") and back.has("detector") and torch.equal(back.codes, figures.codes)
    monkeypatch.setattr(derived, "test_images", lambda dataset: x)
    again = derived.ensure(folder, model)
    assert again.has("densities") and again.seconds["detector"] == figures.seconds["detector"]
    stored_again = derived.load(folder).densities["prior"]
    assert np.allclose(stored_again.aggregate, figures.densities["prior"].aggregate, rtol=1e-5)


SHIPPED = sorted(p.parent for p in (Path(__file__).parent.parent / "pretrained").glob("*/derived"))


@pytest.mark.parametrize("folder", SHIPPED, ids=[f.name for f in SHIPPED])
def test_the_shipped_figures_are_the_models_and_of_todays_statistics(folder):
    """Every shipped model's derived files are its own and hold a detector of the statistics
    ``image_statistics`` gives today, so the app reads it instead of fitting it (a minute)."""
    figures = derived.load(folder)
    assert all(figures.has(p) for p in derived.CORE), folder
    config = json.loads((folder / "config.json").read_text())
    binarized = run_binarizes(config, figures.dataset, config["model"]["likelihood"])
    assert figures.units_on == derived.UNITS_ON[binarized]  # the inputs evaluate scores


@pytest.mark.integration
def test_the_pages_active_units_are_the_ones_evaluate_counts(stored, monkeypatch):
    """The pages measured each unit's activity on grey levels while `evaluate` scores a model of
    binarised MNIST on binarised images: paper-wake-sleep-z20 had 18 active units on the pages, 19
    in evaluate (a unit near the threshold). Units stored without saying on what are measured again."""
    from explorer.data.cache import eval_images
    from explorer.evaluate import evaluate

    folder, model, x, figures = stored
    meta_file = folder / "derived" / derived.META
    meta = json.loads(meta_file.read_text())
    del meta["units_on"]  # as every file stored before the pages measured on evaluate's images
    meta_file.write_text(json.dumps(meta))
    assert not derived.load(folder).has("units")
    monkeypatch.setattr(derived, "test_images", lambda dataset: x)
    units = derived.ensure(folder, model, parts=("units",))
    assert units.units_on == "binarised" and derived.load(folder).units_on == "binarised"
    scored = evaluate(model, eval_images("mnist", "test", binarized=True)[0], k=0)
    assert [round(v, 4) for v in units.variance.tolist()] == scored.posterior_mean_variance
    assert [round(v, 4) for v in units.kl.tolist()] == scored.kl_per_dim


def test_a_stored_map_places_new_codes_among_their_neighbours():
    from explorer.explore.projections import NonlinearProjection, fit_nonlinear

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0] * 5, [8.0] * 5, [-8.0, 8.0, -8.0, 8.0, -8.0]])
    means = torch.cat([c + 0.3 * torch.randn(150, 5, generator=g) for c in centres])
    fitted = fit_nonlinear("tsne", means)  # (UMAP's first fit in a process compiles for minutes)
    stored = NonlinearProjection("umap", means, None, fitted.points.numpy(), 0.0)  # as read back
    assert torch.equal(stored(means[:40]), fitted.points[:40])
    new = stored(centres + 0.05)
    cluster_centres = torch.stack([fitted.points[150 * k : 150 * (k + 1)].mean(0) for k in range(3)])
    assert [int((cluster_centres - p).norm(dim=1).argmin()) for p in new] == [0, 1, 2]


def test_a_first_view_reads_the_stored_figures_and_measures_nothing(shipped, tmp_path, monkeypatch, measured):
    """Interpolate needs the codes, the test set's ELBO and the stranger detector: with the
    figures stored beside the model, none is measured (the fit and the measuring fail here)."""
    from explorer.checkpoints import load_checkpoint
    from tests.apptest import INTERPOLATE, page

    folder = tmp_path / "pretrained" / "mnist-z2"
    figures = derived.compute(load_checkpoint(folder), "mnist", ("codes", "elbo", "units"))
    # the detector and the maps of the small model measured once for the module: what they say
    # does not matter here, only that the page reads them instead of measuring its own
    figures.detector, figures.densities = measured[2].detector, measured[2].densities
    derived.save(folder, figures)

    def refuse(*args, **kwargs):
        raise AssertionError("measured again instead of read")

    import explorer.explore.strangers

    monkeypatch.setattr(explorer.explore.strangers, "fit_detector", refuse)
    monkeypatch.setattr(derived, "compute", refuse)
    at = page(INTERPOLATE).run()
    assert not at.exception, at.exception
    assert "typical enough" in " ".join(m.value for m in at.markdown) or any(
        "stranger" in m.value for m in at.markdown
    )


def test_a_finished_run_stores_its_figures_and_a_run_told_not_to_does_not(
    tmp_path, monkeypatch, mnist_test, capsys
):
    """A finished run stores the pages' figures, and says so while it does: after its last
    epoch it measured them for about 90 s with its status still at the last step; each part now
    goes into its status (the Train page shows it) and its log as it starts, with the training
    figures kept, and "finished" follows."""
    from explorer.cli.train import _derive, derive_stage
    from explorer.train.run import start_run
    from explorer.train.runfolder import RunFolder
    from tests.runs import SMALL, small_config

    # the figures of the first N test images: what matters here is that they are written
    monkeypatch.setattr(derived, "test_images", lambda dataset: mnist_test.images[:N].float() / 255.0)
    written, real = [], RunFolder.write_status

    def record(self, state, **fields):
        written.append((state, fields))
        real(self, state, **fields)

    monkeypatch.setattr(RunFolder, "write_status", record)
    run = start_run(
        tmp_path / "run", SMALL, small_config(epochs=1), progress=False, after_training=_derive
    )  # as `train` does
    figures = derived.load(run)
    assert all(figures.has(p) for p in derived.CORE) and figures.codes.shape == (N, 2)
    meta = json.loads((run / "derived" / derived.META).read_text())
    assert meta["model_sha256"] == derived.model_checksum(run) and meta["format"] == derived.FORMAT
    staged = [(state, fields) for state, fields in written if "stage" in fields]
    assert [f["stage"] for _, f in staged] == [derive_stage(p) for p in derived.CORE]
    assert staged[0][1]["stage"].startswith("storing what the pages need of the test set (codes,")
    assert all(state == "running" and f["epochs"] == 1 and f["steps_per_epoch"] for state, f in staged)
    assert written[-1][0] == "finished" and "stage" not in written[-1][1]
    assert written[-1][1]["derived"] == "stored"
    log = capsys.readouterr().out  # what the run's log gets: the list once, then each part
    assert derive_stage("codes") in log
    assert all(f"the test set: now the {derived.WHAT[p]}\n" in log for p in derived.CORE[1:])
    quiet = start_run(tmp_path / "quiet", SMALL, small_config(epochs=1), progress=False)
    assert not (quiet / "derived").exists()


def test_a_stop_while_a_finished_run_stores_its_figures_skips_them_and_keeps_the_run(
    tmp_path, monkeypatch, mnist_test, capsys
):
    """A stop signal (the Train page's Skip, Ctrl-C) after the last epoch, while the run stores
    what the pages need: the storing ends at once, nothing half-stored is left, the trained model
    is kept, and the run finishes with its status saying the figures were skipped (it was killed
    before: "lost", or it could not be stopped at all). Each part's status carries its number."""
    import signal

    from explorer.checkpoints import load_checkpoint
    from explorer.cli.train import _derive
    from explorer.train.run import start_run
    from explorer.train.runfolder import RunFolder
    from tests.runs import SMALL, read_status, small_config

    monkeypatch.setattr(derived, "test_images", lambda dataset: mnist_test.images[:N].float() / 255.0)
    written, real = [], RunFolder.write_status

    def record(self, state, **fields):
        written.append((state, fields))
        real(self, state, **fields)
        if fields.get("stage_part") == derived.CORE.index("detector"):  # the Skip, mid-way
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(RunFolder, "write_status", record)
    run = start_run(tmp_path / "run", SMALL, small_config(epochs=1), progress=False, after_training=_derive)
    staged = [f for _, f in written if "stage" in f]
    assert [f["stage_part"] for f in staged] == list(range(derived.CORE.index("detector") + 1))
    assert all(f["stage_parts"] == len(derived.CORE) and f["stage_started"] > 0 for f in staged)
    final = read_status(run)
    assert final["state"] == "finished" and final["derived"] == "skipped"
    assert not (run / "derived" / derived.META).exists()  # the pages measure it on first visit
    assert load_checkpoint(run) is not None
    assert "skipped storing what the pages need" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is the process's again


def test_reading_the_figures_and_judging_an_image_imports_no_scikit_learn(stored):
    import subprocess
    import sys

    folder = stored[0]
    script = (
        "import sys, numpy as np; from explorer.explore.derived import load; d = load(sys.argv[1]); "
        "v = d.detector.verdicts(np.array([[-100.0, 5.0, 900.0, 3.0, 0.5, 4.0]])); "
        "assert d.codes.shape[0] == 400 and len(v) == 1; "
        "print(sorted(m for m in sys.modules if m.startswith('sklearn')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_derive_command_checks_stored_figures_and_says_their_size(stored, capsys, monkeypatch):
    from explorer.cli import main

    folder = stored[0]
    monkeypatch.setattr(derived, "compute", lambda *a, **k: pytest.fail("measured again"))
    assert main(["derive", str(folder), "--no-maps"]) == 0
    line = capsys.readouterr().out
    assert str(folder / "derived") in line and " MB" in line


def test_the_train_command_stores_the_figures_unless_told_not_to(tmp_path, monkeypatch, mnist_test, capsys):
    """`vae-explorer train` stores derived/ when it finishes; --no-derive and VAE_EXPLORER_DERIVE=0
    (which the suite sets for every other run) skip it."""
    from explorer.cli import main

    monkeypatch.setattr(derived, "test_images", lambda dataset: mnist_test.images[:N].float() / 255.0)
    flags = ["--limit", "300", "--test-limit", "100", "--hidden", "16", "--latent-dim", "2", "--epochs", "1",
             "--device", "cpu", "--no-progress"]  # fmt: skip
    monkeypatch.setenv("VAE_EXPLORER_DERIVE", "1")
    assert main(["train", "--out", str(tmp_path / "a"), *flags]) == 0
    assert derived.load(tmp_path / "a").codes.shape == (N, 2)
    assert main(["train", "--out", str(tmp_path / "b"), "--no-derive", *flags]) == 0
    # Resumed without the flag, a run started with --no-derive keeps its choice, and says so (a
    # plain resume stored the figures on the nearly full disk the run had been kept off).
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "b"), "--epochs", "2", "--no-progress"]) == 0
    assert not (tmp_path / "b" / "derived").exists()
    assert "note: the run was started with --no-derive" in capsys.readouterr().err
    monkeypatch.setenv("VAE_EXPLORER_DERIVE", "0")
    assert main(["train", "--out", str(tmp_path / "c"), *flags]) == 0
    assert not (tmp_path / "b" / "derived").exists() and not (tmp_path / "c" / "derived").exists()


def test_a_session_waiting_for_another_ones_measurement_says_so(monkeypatch):
    """A second tab opening a t-SNE map that the first was fitting stood blank for the minute the fit
    took (it waited on the lock without a word); the fitting tab showed the spinner."""
    import contextlib
    import threading
    import time

    import explorer.ui.models as models

    said = []

    @contextlib.contextmanager
    def spinner(text, **_):
        said.append(text)
        yield

    class Fitted:
        def has(self, part):
            return True

    lock, holder = threading.Lock(), {"figures": None}
    monkeypatch.setattr(models.st, "spinner", spinner)
    monkeypatch.setattr(models, "_derived_store", lambda path, mtime: (lock, holder))
    monkeypatch.setattr(models, "ensure_derived", lambda *a, **k: pytest.fail("measured twice"))
    lock.acquire()  # the other tab fits

    def other_tab_ends():
        time.sleep(0.3)
        holder["figures"] = Fitted()
        lock.release()

    threading.Thread(target=other_tab_ends).start()
    assert isinstance(models.derived_figures("model", 0, "tsne"), Fitted)
    assert len(said) == 1 and "Fitting a t-SNE map" in said[0] and "Another tab started it" in said[0]


def test_a_full_disk_is_said_by_derive_and_not_called_stored(stored, capsys, monkeypatch):
    """`vae-explorer derive` on a full disk printed "derived (0.00 MB ...)" and exited 0 with
    nothing stored: ensure() took every OSError for a read-only install. The command (and a run's
    last stage) now says why, and the app's pages still get their figures for the session."""
    import errno
    import shutil

    from explorer.cli import main

    folder, *_ = stored
    shutil.rmtree(folder / "derived")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(derived, "save", full)
    monkeypatch.setattr(derived, "test_images", lambda dataset: stored[2])
    assert main(["derive", str(folder), "--no-maps"]) != 0
    out, err = capsys.readouterr()
    assert "MB" not in out and err.count("\n") == 1
    assert "could not be stored" in err and "the disk is full" in err
    assert f"vae-explorer derive {folder}" in err
    figures = derived.ensure(folder, parts=("elbo",))  # the app: served all the same
    assert figures.elbo.shape == (N,)
