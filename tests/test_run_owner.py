"""A run folder belongs to one process at a time: a second `train` (new or --resume) on it is
refused in one line naming the owner's pid, with nothing logged twice; the folder of an owner
that died (kill -9) can be taken over; the app's Train page says why a job did not start."""

import os
import subprocess
import sys
import time

import pytest

from explorer.errors import ExplorerError
from explorer.train.runfolder import LOCK_FILE, RunFolder
from tests.runs import cli_train_command, read_metrics

pytestmark = pytest.mark.integration


def _wait_for_owner(out, proc, what=lambda: True, timeout=600.0) -> None:
    """Until ``proc`` holds the run folder ``out`` (and ``what()`` holds)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        if RunFolder(out).owner(wait=0) == proc.pid and what():
            return
        time.sleep(0.05)
    raise AssertionError(f"{proc.pid} never held {out}")


def _refused(command, owner: int) -> None:
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr  # one line, no traceback
    assert f"in use by another training process (pid {owner})" in lines[0]


def _steps_once(out) -> list[int]:
    steps = [r["step"] for r in read_metrics(out) if r["type"] == "step"]
    assert steps == sorted(set(steps)), "a step logged twice"
    return steps


def test_a_second_train_on_a_busy_folder_is_refused_naming_the_owner(tmp_path):
    out = tmp_path / "twin"
    first = subprocess.Popen(cli_train_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_owner(out, first)
    _refused([*cli_train_command(out), "--seed", "2"], first.pid)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert _steps_once(out) == list(range(10, 601, 10))
    assert [r["epoch"] for r in read_metrics(out) if r["type"] == "epoch"] == [1, 2]
    assert len((out / "commands.txt").read_text().splitlines()) == 1  # the refused one is not recorded


def test_a_dead_owners_folder_is_taken_over_and_two_resumes_are_one(tmp_path):
    out = tmp_path / "killed"
    first = subprocess.Popen(cli_train_command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_owner(out, first, lambda: any(r.get("epoch") == 2 for r in read_metrics(out)))
    first.kill()  # SIGKILL: nothing runs at exit; the kernel drops the lock
    first.wait()
    assert RunFolder(out).owner(wait=0) is None
    resume = [sys.executable, "-m", "explorer.cli", "train", "--resume", str(out), "--no-progress"]
    second = subprocess.Popen(resume, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_owner(out, second)
    _refused(resume, second.pid)
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert _steps_once(out) == list(range(10, 601, 10))
    assert [r["epoch"] for r in read_metrics(out) if r["type"] == "epoch"] == [1, 2]


def test_a_claim_is_exclusive_and_a_refused_claim_makes_nothing(tmp_path):
    held = RunFolder(tmp_path / "a").claim()
    try:
        busy = rf"in use by another training process \(pid {os.getpid()}\)"
        for _ in range(2):  # the lock is per open file: the same process is refused too
            with pytest.raises(ExplorerError, match=busy):
                RunFolder(tmp_path / "a").claim()
    finally:
        held.release()
    assert not (tmp_path / "a").exists()  # made by the claim, left empty: gone with it
    with RunFolder(tmp_path / "a").claim():
        (tmp_path / "a" / "metrics.jsonl").write_text("")
    assert (tmp_path / "a" / LOCK_FILE).exists()  # a folder with a run keeps its lock file
    with RunFolder(tmp_path / "a").claim():  # and can be claimed again
        pass


def test_the_app_says_why_a_job_did_not_start(tmp_path):
    from explorer.train.jobs import JobRegistry

    registry = JobRegistry(tmp_path)
    with RunFolder(tmp_path / "busy").claim():
        with pytest.raises(ExplorerError) as refused:
            registry.start("busy", ["--limit", "200", "--epochs", "1", "--hidden", "16", "--device", "cpu"])
        assert (tmp_path / "busy").is_dir()  # another process's folder is left alone
    message = str(refused.value)
    assert message.startswith("training did not start: ")
    assert f"in use by another training process (pid {os.getpid()})" in message
    assert "\n" not in message


def test_a_job_refused_while_a_cli_run_starts_in_the_folder_is_said_to_be_refused(tmp_path):
    """Resume pressed just after `train --resume` was started in a shell: the shell's run wrote its
    first status after the app's job was launched, and by time that status passed for the app's
    job; the page watched "starting" for 40 s and never said its job was refused."""
    import threading

    from explorer.train.jobs import JobRegistry

    registry = JobRegistry(tmp_path)
    run = RunFolder(tmp_path / "k9b")
    with run.claim():  # the shell's run: it holds the folder, its status comes a moment later
        timer = threading.Timer(0.3, lambda: run.write_status("starting", epochs=11))
        timer.start()
        try:
            with pytest.raises(ExplorerError, match=r"training did not start: .*in use by another"):
                registry.start("k9b", ["--epochs", "11"], resume=True)
        finally:
            timer.join()
    assert run.read_status()["state"] == "starting" and "job" not in run.read_status()


def test_the_train_page_shows_the_refusal(shipped):
    from tests.apptest import TRAIN, page, small_run

    with RunFolder(shipped / "runs" / "taken").claim():
        at = small_run(page(TRAIN).run(), "taken")
    assert not at.exception
    assert any(
        "did not start" in e.value and f"in use by another training process (pid {os.getpid()})" in e.value
        for e in at.error
    ), [e.value for e in at.error]


def test_the_train_page_follows_a_run_a_shell_has_taken_before_its_status_says_so(tmp_path):
    """The page said "finished" (with a live Resume button) for a run a shell's `train --resume`
    had taken, and never followed it: a run folder another process holds is shown as starting,
    and the app's own Resume is refused naming that process."""
    from explorer.train.jobs import JobRegistry

    run = RunFolder(tmp_path / "w31a")
    run.path.mkdir()
    run.write_status("finished")  # the run as a finished job left it (its pid: this process's)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from explorer.train.runfolder import RunFolder\n"
         f"with RunFolder({str(run.path)!r}).claim():\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        registry = JobRegistry(tmp_path)
        view = registry.view("w31a")
        assert view.active and f"pid {holder.pid}" in view.message
        with pytest.raises(
            ExplorerError, match=rf"training did not start: .*in use by another .*\(pid {holder.pid}\)"
        ):
            registry.start("w31a", ["--epochs", "3"], resume=True)
    finally:
        holder.kill()
        holder.wait()
    assert not JobRegistry(tmp_path).view("w31a").active  # its holder gone: as its status says
