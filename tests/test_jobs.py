"""Training jobs seen from the app: a restarted app finds a running job; exposure settings."""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

from explorer.errors import ExplorerError
from explorer.pictures.reading import MAX_UPLOAD_BYTES
from explorer.train.jobs import JobRegistry
from tests.browser import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
def test_a_restarted_app_finds_the_running_job_and_can_stop_it(tmp_path):
    first = JobRegistry(tmp_path)  # the app that started the job
    args = [
        "--limit",
        "3000",
        "--test-limit",
        "100",
        "--batch-size",
        "10",
        "--hidden",
        "16",
        "--epochs",
        "50",
        "--device",
        "cpu",
        "--log-every",
        "10",
    ]
    first.start("long", args)
    second = JobRegistry(tmp_path)  # the app after a restart: nothing in memory
    deadline = time.time() + 60
    while time.time() < deadline and not second.view("long").rows:
        time.sleep(0.1)
    view = second.view("long")
    assert view.active and view.state == "running" and view.total_steps == 50 * 300
    with pytest.raises(ExplorerError, match="run 'long' is already training; watch it or stop it first"):
        second.start("long", args, resume=True)
    second.stop("long")
    deadline = time.time() + 60
    while time.time() < deadline and second.view("long").active:
        time.sleep(0.1)
    assert second.view("long").state == "stopped"
    assert (tmp_path / "long" / "model.safetensors").is_file()


def test_server_exposure_settings():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] * 1024 * 1024 == MAX_UPLOAD_BYTES


def _listening(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (Linux's /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.integration
def test_make_run_listens_on_loopback_only():
    """The server `make run` starts accepts connections from this machine only: its socket is
    bound to 127.0.0.1 (0100007F in /proc/net/tcp), not to every address."""
    port = free_port()
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "run", f"PORT={port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    command = shlex.split(dry.stdout.strip().splitlines()[-1])  # the recipe's server line
    settings = {}
    while "=" in command[0]:  # the environment the recipe sets first: NAME=value ...
        name, _, value = command.pop(0).partition("=")
        settings[name] = value
    assert settings.get("MALLOC_ARENA_MAX") == "2", settings  # the server's memory stays flat
    assert Path(command[0]).name == "python" and command[1:3] == ["-m", "explorer.ui.serve"], command
    command[0] = sys.executable  # this environment's
    env = {**os.environ, **settings}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not _listening(port) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert _listening(port) == {"0100007F"}, _listening(port)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_jobs_leave_a_core_to_the_app_unless_told(monkeypatch):
    import os

    from explorer.train.jobs import job_environment

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert job_environment()["OMP_NUM_THREADS"] == "7"
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert job_environment()["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert job_environment()["OMP_NUM_THREADS"] == "3"


def test_a_run_stopped_while_starting_says_nothing_was_saved_and_can_be_deleted(tmp_path):
    """Stop pressed before the first step ended the process with status.json at "starting" and
    no checkpoint: the page said "its last checkpoint is kept: resume it" and offered nothing."""
    import json

    from explorer.train.jobs import LOST, NOTHING_SAVED

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid no process has any more
    registry = JobRegistry(tmp_path)
    for name in ("early", "later"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "status.json").write_text(
            json.dumps({"state": "starting", "pid": gone.pid, "time": 0})
        )
    (tmp_path / "later" / "model.safetensors").write_bytes(b"weights")
    view = registry.view("early")
    assert (view.state, view.message) == ("lost", NOTHING_SAVED)
    assert registry.view("later").message == LOST  # a checkpoint to resume: the old words hold
    with pytest.raises(ExplorerError, match="holds a checkpoint"):
        registry.delete("later")
    registry.delete("early")
    assert not (tmp_path / "early").exists() and (tmp_path / "later" / "model.safetensors").exists()


def test_a_run_killed_while_storing_what_the_pages_need_is_finished_not_lost(tmp_path):
    """kill -9 after the last epoch, while the run stored its test-set figures: the Train page said
    "lost ... resume it to continue" (resume then asked for more epochs), and `vae-explorer derive`
    stored the figures but left the status "running"."""
    from types import SimpleNamespace

    from explorer.cli.derive import cmd_derive
    from explorer.train.run import start_run
    from explorer.train.runfolder import RunFolder
    from tests.runs import SMALL, small_config

    out = start_run(tmp_path / "k", SMALL, small_config(epochs=1, limit=200), progress=False)
    run = RunFolder(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status = {k: v for k, v in run.read_status().items() if k not in ("state", "pid", "time")}
    run.write_status("running", **status, stage="storing what the pages need", stage_part=1, stage_parts=4)
    record = run.status_file.read_text().replace(f'"pid": {os.getpid()}', f'"pid": {dead.pid}')
    run.status_file.write_text(record)  # as the killed process left it
    view = JobRegistry(tmp_path).view("k")
    assert view.state == "finished" and "vae-explorer derive" in view.message, view.message
    cmd_derive(SimpleNamespace(checkpoint=[str(out)], force=False, no_maps=True))
    after = run.read_status()
    assert after["state"] == "finished" and after["derived"] == "stored" and "stage" not in after


def test_steps_per_epoch_are_read_from_the_rows_when_the_status_does_not_say(tmp_path):
    """A failed run's status holds no steps_per_epoch: its curves drew every logged step of an
    epoch at the epoch's whole number (vertical jumps). The epoch rows, each at its epoch's last
    step, give it."""
    from explorer.train.jobs import JobRegistry
    from explorer.train.runfolder import RunFolder

    run = RunFolder(tmp_path / "cut")
    run.create()
    rows = [
        {"type": "step", "epoch": 1 + (s - 1) // 200, "step": s, "loss": 1.0} for s in range(100, 601, 100)
    ]
    rows += [{"type": "epoch", "epoch": e, "step": 200 * e, "test_elbo": -100.0} for e in (1, 2, 3)]
    run.append_metrics(sorted(rows, key=lambda r: (r["step"], r["type"] == "epoch")))
    run.write_status("failed", message="disk full", epochs=5)
    view = JobRegistry(tmp_path).view("cut")
    assert view.steps_per_epoch == 200 and view.total_steps == 1000
