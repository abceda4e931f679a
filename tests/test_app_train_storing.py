"""The Train page after a run's last epoch, while it stores what the pages need of the test set
(the derive step, a minute or more on a CPU): what it says, how far it has gone, and Skip, which
ends it with the trained model kept (AppTest)."""

import re
import time

import pytest

from tests.apptest import TRAIN, labelled, page, small_run, wait_for

pytestmark = pytest.mark.integration


def test_the_train_page_says_what_a_finished_run_is_storing(shipped):
    """After the last epoch the run stores what the pages need of the test set (about 60-90 s on
    this CPU), and the page sat silent at the last step with no way out: it now says what is
    being stored, how far it has gone (parts done of all, seconds) from the run's status, and
    offers Skip in place of Stop (no training is left to stop; the model is saved)."""
    import time

    from explorer.cli.train import derive_stage
    from explorer.explore.derived import CORE
    from explorer.train.runfolder import RunFolder

    run = RunFolder(shipped / "runs" / "storing")
    run.create()
    run.append_metrics([{"type": "epoch", "epoch": 1, "step": 10, "test_elbo": -200.0, "seconds": 1.0}])
    # this process stands in for the run's (alive): status.json as the run writes it while storing
    part = CORE.index("detector")
    run.write_status("running", epochs=1, steps_per_epoch=10, step=10, stage=derive_stage("detector"),
                     stage_part=part, stage_parts=len(CORE), stage_started=time.time() - 12)  # fmt: skip
    at = page(TRAIN).run()
    assert not at.exception
    said = " ".join(i.value for i in at.info)
    assert "Training has ended and the model is saved. The run is storing what the pages need" in said
    assert "now the stranger detector" in said and "Skip it and each page measures" in said, said
    bar = at.get("progress")[0].proto
    seconds = re.search(r"stranger detector \((\d+) s\)", bar.text)  # since the storing began
    assert bar.value == round(100 * part / len(CORE)) and seconds and 12 <= int(seconds[1]) < 60, bar
    assert not [b for b in at.button if b.label.startswith("Stop")]
    assert [b for b in at.button if b.label.startswith("Skip")]
    assert labelled(at.selectbox, "Run").options == ["storing (storing what the pages need)"]
    run.write_status("running", epochs=1, steps_per_epoch=10, step=5)  # while it trains: no word of it
    at.run()
    assert "Training has ended" not in " ".join(i.value for i in at.info)
    assert [b for b in at.button if b.label.startswith("Stop")]
    assert not [b for b in at.button if b.label.startswith("Skip")]
    assert labelled(at.selectbox, "Run").options == ["storing (training)"]


def test_skip_on_the_train_page_ends_the_storing_and_keeps_the_trained_run(shipped, monkeypatch):
    """A real run started from the Train page, storing what the pages need after its epoch:
    Skip ends that within seconds, the run finishes with its checkpoint and no derived files
    (the pages measure them on first visit), and the page says the storing was skipped."""
    from explorer.checkpoints import load_checkpoint
    from tests.apptest import status

    monkeypatch.setenv("VAE_EXPLORER_DERIVE", "1")  # as a user's run does (the suite's are spared it)
    at = page(TRAIN).run()
    small_run(at, "skips")
    folder = shipped / "runs" / "skips"
    deadline = time.time() + 180
    while "stage" not in status(folder):
        assert time.time() < deadline and status(folder).get("state") != "finished", status(folder)
        time.sleep(0.2)
    at.run()
    at.get_by_key("skip-skips").click().run()
    pressed = time.time()
    done = wait_for(folder, "finished", "lost", "failed", seconds=60)
    assert done["state"] == "finished" and done["derived"] == "skipped", done
    assert time.time() - pressed < 30
    assert load_checkpoint(folder) is not None and not (folder / "derived" / "derived.json").exists()
    at.run()
    assert not at.exception
    assert "storing what the pages need was skipped" in " ".join(i.value for i in at.info)


def test_a_run_that_ended_before_its_first_checkpoint_offers_delete(shipped):
    """Stopped while starting: the page says nothing was saved (not "resume it"), offers no Resume
    and deletes the run on request, so that its name can be used again."""
    import json
    import subprocess
    import sys

    from explorer.train.jobs import NOTHING_SAVED

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder = shipped / "runs" / "early"
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"state": "starting", "pid": gone.pid, "time": 0}))
    at = page(TRAIN).run()
    labelled(at.selectbox, "Run").set_value("early").run()
    assert any(NOTHING_SAVED in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "resume-early"]
    at.get_by_key("delete-early").click().run()
    assert not at.exception and not folder.exists()
