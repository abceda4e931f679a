"""The Train page's view of one run (explorer/ui/run_view.py), from the run's own files."""

from __future__ import annotations

import json


def test_a_run_between_its_last_step_and_its_test_figures_says_so(tmp_path):
    """The Train page said "running: step 180 of 180" beside "Epoch 5 / 6" while the sixth epoch's
    test figures were measured."""
    from streamlit.testing.v1 import AppTest

    from explorer.train.runfolder import RunFolder

    run = RunFolder(tmp_path / "tiny2")
    run.create()
    run.write_status("running", epochs=6, steps_per_epoch=30)
    rows = [
        {"type": "epoch", "epoch": e, "step": 30 * e, "test_elbo": -150.0, "seconds": e} for e in range(1, 6)
    ]
    rows.append({"type": "step", "epoch": 6, "step": 180, "loss": 140.0, "seconds": 6.0})
    (run.path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def script(root: str) -> None:
        from pathlib import Path

        from explorer.train.jobs import JobRegistry
        from explorer.ui.run_view import show_run

        show_run(JobRegistry(Path(root)), "tiny2")

    at = AppTest.from_function(script, kwargs={"root": str(tmp_path)}).run()
    assert not at.exception
    bars = [e.proto.text for e in at.get("progress")]
    assert any("step 180 of 180; epoch 6 is measured on the test set" in t for t in bars), bars
