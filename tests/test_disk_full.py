"""A disk that fills up under a run: one line naming the full file system and the checkpoint kept,
status.json "failed" with that reason, no temporary file left, metrics.jsonl lines whole or not
at all, and --resume carrying on once there is room; the Train page says "disk full"."""

import errno
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

import explorer.train.runfolder as runfolder
import explorer.train.wholefiles as wholefiles
from explorer.errors import ExplorerError
from explorer.train.jobs import JobRegistry
from explorer.train.run import resume_run, start_run
from tests.runs import SMALL, read_metrics, read_status, small_config

pytestmark = pytest.mark.integration


class FullDisk:
    """The ``os`` of explorer.train.wholefiles (which writes a run's files) on a disk with room
    for ``room`` more appends: the next goes half in (a short write, as the kernel does when the
    disk fills mid-line) and the rest fail with ENOSPC; from then on a new file
    (``Path.write_text``) is made empty and its write fails, as on a real full disk."""

    def __init__(self, room: int, monkeypatch) -> None:
        self.room, self.full = room, False
        real_write_text = pathlib.Path.write_text

        def write_text(path, text, *args, **kwargs):
            if not self.full:
                return real_write_text(path, text, *args, **kwargs)
            open(path, "w").close()  # the file is made, its data does not fit
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        monkeypatch.setattr(pathlib.Path, "write_text", write_text)
        monkeypatch.setattr(wholefiles, "os", self)

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd: int, data: bytes) -> int:
        self.room -= 1
        if self.room >= 0:
            return os.write(fd, data)
        self.full = True
        if self.room == -1:
            return os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _temporaries(folder: pathlib.Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and (".tmp" in p.name or p.stat().st_size == 0)]


def test_a_disk_that_fills_mid_run_fails_in_one_line_and_resume_carries_on(tmp_path, monkeypatch):
    out = tmp_path / "runs" / "full"
    # 10 steps an epoch, a metrics line every 5: step 5, step 10, epoch 1 fit; step 15 goes half in.
    FullDisk(3, monkeypatch)
    with pytest.raises(ExplorerError) as failed:
        start_run(out, SMALL, small_config(epochs=2), progress=False)
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith(f"disk full: the file system at {runfolder.mount_point(out)} (holding {out})")
    assert "(ENOSPC: No space left on device) while writing metrics.jsonl" in message
    assert f"the last good checkpoint in {out} (epoch 1, step 10) is kept" in message
    assert message.endswith(f"continue with: vae-explorer train --resume {out}")
    monkeypatch.undo()  # space freed
    assert read_status(out)["state"] == "failed" and read_status(out)["message"] == message
    view = JobRegistry(tmp_path / "runs").view("full")
    assert (view.state, view.message) == ("failed", message)  # the Train page: "failed: disk full ..."
    assert view.epochs == 2  # what the run asked for: "Epoch 1 / 2", not "1 / ?"
    assert _temporaries(out) == [], "no empty or temporary file left"
    text = (out / "metrics.jsonl").read_text()
    assert text.endswith("}\n") and [json.loads(line)["step"] for line in text.splitlines()] == [5, 10, 10]
    resume_run(out, progress=False)
    rows = read_metrics(out)
    assert [r["step"] for r in rows if r["type"] == "step"] == [5, 10, 15, 20]
    assert [r["epoch"] for r in rows if r["type"] == "epoch"] == [1, 2]
    assert read_status(out)["state"] == "finished"


def test_a_line_that_does_not_fit_is_not_written_at_all(tmp_path, monkeypatch):
    run = runfolder.RunFolder(tmp_path)
    run.append_metrics([{"type": "step", "step": 1}])
    run.write_status("running")
    before = run.metrics.read_bytes()
    FullDisk(0, monkeypatch)
    for _ in range(2):  # the short write, then the refused one
        with pytest.raises(OSError) as full:
            run.append_metrics([{"type": "step", "step": 2, "note": "x" * 5000}])
        assert full.value.errno == errno.ENOSPC
        assert run.metrics.read_bytes() == before
    with pytest.raises(OSError):
        run.truncate_metrics(1)
    run.write_status("failed", message="disk full")  # in place, in the old file's room
    assert read_status(tmp_path)["message"] == "disk full"
    (tmp_path / "other").mkdir()
    with pytest.raises(OSError):  # no old file to write into
        runfolder.RunFolder(tmp_path / "other").write_status("running")
    assert _temporaries(tmp_path) == []


def test_a_run_that_died_saying_disk_full_is_failed_not_lost(tmp_path):
    """A disk too full even for status.json leaves it "running"; the job's last words say why."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = runfolder.RunFolder(tmp_path / "r")
    run.create()
    run.status_file.write_text(json.dumps({"state": "running", "pid": gone.pid, "time": time.time() - 5}))
    said = "disk full: the file system at /mnt/small (holding r) is full; the last good checkpoint ..."
    run.log.write_text(f"training step: eager\nvae-explorer train: error: {said}\n")
    view = JobRegistry(tmp_path).view("r")
    assert (view.state, view.message) == ("failed", said)
    os.utime(run.log, (time.time() - 60, time.time() - 60))  # an older run's words: not this one's
    assert JobRegistry(tmp_path).view("r").state == "lost"


CHILD = """
import sys
from tests.test_disk_full import FullDisk

class Patch:  # monkeypatch's setattr, for good
    def setattr(self, target, name, value):
        setattr(target, name, value)

FullDisk(4, Patch())  # one more: commands.txt
from explorer.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_command_says_disk_full_in_one_line(tmp_path):
    out = tmp_path / "runs" / "cli"
    flags = "--limit 1000 --test-limit 500 --log-every 5 --hidden 64 --epochs 2 --device cpu --no-progress"
    started = time.time()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, "train", "--out", str(out), *flags.split()],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parent.parent)},
    )  # fmt: skip
    assert child.returncode == 1
    assert child.stderr.startswith("vae-explorer train: error: disk full: the file system at ")
    assert len(child.stderr.strip().splitlines()) == 1, child.stderr  # no traceback
    assert "(epoch 1, step 10) is kept" in child.stderr
    assert read_status(out)["state"] == "failed" and read_status(out)["time"] >= started
    assert _temporaries(out) == []
