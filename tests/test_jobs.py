"""Training jobs seen from the app: a restarted app finds a running job; exposure settings."""

import time
from pathlib import Path

import pytest
import tomllib

from explorer.jobs import JobRegistry
from explorer.reading import MAX_UPLOAD_BYTES

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
    with pytest.raises(Exception, match="already training"):
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
    makefile = (ROOT / "Makefile").read_text()
    assert "HOST   ?= 127.0.0.1" in makefile and "--server.address $(HOST)" in makefile


def test_jobs_leave_a_core_to_the_app_unless_told(monkeypatch):
    import os

    from explorer.jobs import job_environment

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert job_environment()["OMP_NUM_THREADS"] == "7"
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert job_environment()["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert job_environment()["OMP_NUM_THREADS"] == "3"
