"""What a newcomer meets first, page by page (AppTest): resuming a run from the Train page, a
form that says what each field does for the chosen model, and the small wordings that misled."""

import json

import pytest

from tests.apptest import TRAIN, labelled, page, small_run, wait_for

pytestmark = pytest.mark.integration


def test_a_finished_run_resumes_from_the_train_page(shipped):
    """A finished (or stopped) run offers Resume to a new epoch count; it runs `train --resume`:
    the same run folder goes on, with its optimiser state, to the epochs asked for."""
    at = page(TRAIN).run()
    small_run(at, "goes-on")
    folder = shipped / "runs" / "goes-on"
    wait_for(folder, "finished")
    at.run()
    assert labelled(at.selectbox, "Run").value == "goes-on"
    epochs = at.get_by_key("resume-epochs-goes-on")
    assert epochs.value > 1 and epochs.min == 2  # on from the epoch done
    epochs.set_value(2)
    at.get_by_key("resume-goes-on").click().run()
    assert not at.exception and not at.error
    wait_for(folder, "finished", seconds=180)
    saved = json.loads((folder / "config.json").read_text())
    assert saved["epoch"] == 2 and saved["train"]["epochs"] == 2
    commands = (folder / "commands.txt").read_text()
    assert "--resume" in commands and "--epochs 2" in commands
    at.run()
    assert at.get_by_key("resume-epochs-goes-on").min == 3
