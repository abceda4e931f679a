"""A run records the counts and checksum of its data; --resume on data that changed since (a folder
added again with more, fewer or other images) is refused in one line saying what changed and
how to start a new run from the checkpoint; a run from before the record resumes with a note."""

import re

import numpy as np
import pytest
from PIL import Image

from explorer.config import ModelConfig, TrainConfig
from explorer.data.cache import fingerprint, load_dataset
from explorer.data.folders import add_folder
from explorer.errors import ExplorerError
from explorer.train.run import resume_run, start_run
from explorer.train.runfolder import DATA_FILE, RunFolder


@pytest.fixture
def pictures(tmp_path, monkeypatch):
    """A dataset cache of its own, and ``write(n, seed)``: a folder of n 8x8 pictures."""
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path / "cache"))

    def write(n: int, seed: int = 0):
        folder = tmp_path / f"pictures-{n}-{seed}"
        folder.mkdir()
        rng = np.random.default_rng(seed)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i:03d}.png")
        return folder

    return write


def _train(out, epochs: int):
    config = ModelConfig(image_shape=(1, 8, 8), hidden=(8,), latent_dim=2, likelihood="logistic")
    settings = TrainConfig(dataset="tiny", epochs=epochs, batch_size=4, log_every=1, device="cpu", seed=0)
    return start_run(out, config, settings, progress=False)


@pytest.mark.parametrize("change", ["more", "fewer", "other"])
def test_resume_on_changed_data_is_refused_saying_what_changed(tmp_path, pictures, change):
    add_folder("tiny", pictures(30), size=8, grey=True)
    out = _train(tmp_path / "run", epochs=1)
    recorded = RunFolder(out).read_data_record()
    train, test = len(load_dataset("tiny", "train")), len(load_dataset("tiny", "test"))
    assert (recorded["train"], recorded["test"]) == (train, test) and train + test == 30
    assert recorded == fingerprint("tiny")
    again = {"more": pictures(45), "fewer": pictures(12), "other": pictures(30, seed=1)}[change]
    add_folder("tiny", again, size=8, grey=True, replace=True)
    with pytest.raises(ExplorerError) as refused:
        resume_run(out, epochs=2, progress=False)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"the dataset tiny has changed since the run in {out}")
    now = fingerprint("tiny")
    if change == "other":
        assert f"same counts, other images (sha256 {recorded['sha256'][:12]}" in message
    else:
        assert (
            f"it had {train} training and {test} test images, it has {now['train']} and {now['test']} now"
            in message
        )
    assert message.endswith(f"vae-explorer train --out NEW_RUN --init-from {out} --dataset tiny")
    assert RunFolder(out).read_data_record() == recorded  # the record stays the run's own
    # What it says to do works: a new run from the checkpoint, on the data as it is now.
    config = TrainConfig(dataset="tiny", epochs=1, batch_size=4, log_every=1, device="cpu")
    start_run(tmp_path / "new", config=config, init_from=out, progress=False)
    assert RunFolder(tmp_path / "new").read_data_record() == now


def test_a_run_without_the_record_resumes_with_one_note(tmp_path, pictures, capsys):
    add_folder("tiny", pictures(20), size=8, grey=True)
    out = _train(tmp_path / "run", epochs=1)
    (out / DATA_FILE).unlink()  # as a run from before the record
    capsys.readouterr()
    resume_run(out, epochs=2, progress=False)
    assert capsys.readouterr().err.count("has no record of its data") == 1
    assert RunFolder(out).read_data_record() == fingerprint("tiny")  # recorded now: noted once
    resume_run(out, epochs=3, progress=False)
    assert "has no record" not in capsys.readouterr().err


def test_resume_on_data_of_another_image_size_says_the_sizes_and_what_works(tmp_path, pictures):
    """Added again at another --size: resume said "the same counts, other images" and advised
    --init-from, which a model of another image size cannot take."""
    add_folder("tiny", pictures(30), size=8, grey=True)
    out = _train(tmp_path / "run", epochs=1)
    add_folder("tiny", pictures(30, seed=1), size="8x12", grey=True, replace=True)
    with pytest.raises(ExplorerError) as refused:
        resume_run(out, epochs=2, progress=False)
    message = str(refused.value)
    assert "has 8x12 grey images now" in message and "a model of 8x8 grey images" in message
    assert "--init-from" not in message
    assert message.endswith("vae-explorer train --out NEW_RUN --dataset tiny")
    config = TrainConfig(dataset="tiny", epochs=1, batch_size=4, log_every=1, device="cpu")
    start_run(tmp_path / "new", ModelConfig(image_shape=(1, 8, 12), hidden=(8,), latent_dim=2,
              likelihood="logistic"), config, progress=False)  # fmt: skip


def test_a_model_of_changed_data_is_refused_wherever_it_is_measured(tmp_path, pictures, monkeypatch, capsys):
    """A folder added again after a model was trained on it: evaluate, reconstruct, export (the
    card and TensorBoard's) and derive measured the model on the new test set (which held images it
    was trained on) and ranked new images against the stored figures of the old one; the Reconstruct
    page raised IndexError indexing the new test set with the old stored codes. Each is refused in
    one line saying what changed; nothing is written."""
    from explorer.cards import evaluate_checkpoint
    from explorer.cli import main
    from explorer.data.record import DataChanged
    from explorer.explore.derived import ensure, folder_of

    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    first = pictures(30)
    add_folder("tiny", first, size=8, grey=True)
    out = _train(tmp_path / "runs" / "old", epochs=1)
    assert evaluate_checkpoint(out, 0).evaluation.elbo is not None  # the data it was trained on: measured
    ensure(out, parts=("codes",))
    main(["data", "add", "tiny", str(pictures(12)), "--size", "8", "--grey", "--replace"])
    assert "1 run(s) were trained on other data under the name tiny: old" in capsys.readouterr().err
    said = f"the dataset tiny has changed since the model in {out} was trained on it (it had "
    for measure in (lambda: evaluate_checkpoint(out, 0), lambda: ensure(out, parts=("codes", "elbo"))):
        with pytest.raises(DataChanged, match=re.escape(said)):
            measure()
    derived_before = sorted(p.name for p in folder_of(out).iterdir())
    commands = [
        ["evaluate", str(out)], ["reconstruct", str(out), "-n", "2"], ["derive", "old"],
        ["export", str(out), str(tmp_path / "exported")],
        ["export", "old", str(tmp_path / "exported")],  # by its name (a relative path was not checked)
        ["evidence", "old", "--index", "0"],
        ["export", str(out), "--tensorboard", str(tmp_path / "tb")],
    ]  # fmt: skip
    for command in commands:
        assert main(command) == 1, command
        err = capsys.readouterr().err.strip()
        assert said in err and "--init-from" in err and "Traceback" not in err, command
    assert not (tmp_path / "exported").exists() and not (tmp_path / "tb").exists()
    assert sorted(p.name for p in folder_of(out).iterdir()) == derived_before  # the old figures kept
    _every_model_page_says_so(said)
    add_folder("tiny", first, size=8, grey=True, replace=True)  # the folder as it was: measured again
    assert evaluate_checkpoint(out, 0).evaluation.elbo is not None


def test_each_version_of_a_dataset_is_hashed_once_and_pinned_data_never(tmp_path, pictures, monkeypatch):
    from explorer.data import cache, record

    add_folder("tiny", pictures(30), size=8, grey=True)
    out = _train(tmp_path / "run", epochs=1)
    hashed = []
    monkeypatch.setattr(cache, "fingerprint", lambda name: hashed.append(name) or fingerprint(name))
    record._MEMO.clear()
    for _ in range(3):
        record.check_trained_data(out, "tiny")
    assert hashed == ["tiny"]
    add_folder("tiny", pictures(30, seed=2), size=8, grey=True, replace=True)
    with pytest.raises(record.DataChanged, match="the same counts, other images"):
        record.check_trained_data(out, "tiny")
    assert hashed == ["tiny", "tiny"]  # a new version: hashed again
    (out / DATA_FILE).write_text('{"dataset": "mnist", "train": 1, "test": 1, "sha256": "0"}')
    record.check_trained_data(out, "mnist")  # MNIST's files are pinned by checksum: never hashed
    assert hashed == ["tiny", "tiny"]
    (out / DATA_FILE).unlink()
    record.check_trained_data(out, "tiny")  # no record (a shipped model): not checked


def _every_model_page_says_so(said: str) -> None:
    """Every page that shows a model, on runs/old: the refusal where the model would be, no
    exception (Reconstruct raised IndexError)."""
    from tests.apptest import PAGE_FILES, PAPER, THEORY, TRAIN, page

    for name in sorted(set(PAGE_FILES) - {TRAIN, PAPER}):
        at = page(name)
        at.session_state["model"] = "runs/old"
        at.run()
        assert not at.exception, (name, at.exception)
        shown = [e.value for e in at.error if e.value.startswith("Cannot show model 'runs/old'")]
        assert shown and said in shown[0], name
        if name == THEORY:  # its first three tabs need no model: EM still runs (it showed nothing)
            assert at.get("plotly_chart") and any("Decreases along the way" in m.value for m in at.markdown)


def test_a_dataset_that_does_not_fit_on_the_disk_is_said_in_one_line(tmp_path, pictures, monkeypatch, capsys):
    """`data add` onto a full disk ended in numpy's traceback ("OSError: 3621888 requested and
    1535872 written"); nothing was left, as now, and an existing dataset stays as it was."""
    from explorer.cli import main
    from explorer.data import arrays

    add_folder("tiny", pictures(12), size=8, grey=True)
    before = fingerprint("tiny")
    real_save = arrays.np.save

    def full(path, array, **kwargs):
        real_save(path, array[: len(array) // 2], **kwargs)
        raise OSError(f"{array.nbytes} requested and {array.nbytes // 2} written")

    monkeypatch.setattr(arrays.np, "save", full)
    assert main(["data", "add", "tiny", str(pictures(30)), "--size", "8", "--grey", "--replace"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "the dataset could not be written into" in err and "MB free there): nothing was kept" in err
    monkeypatch.setattr(arrays.np, "save", real_save)  # (not undo(): it would drop the cache's place)
    assert fingerprint("tiny") == before  # the dataset that was there is kept whole
    cache = tmp_path / "cache"
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".")]  # no half-written folder
