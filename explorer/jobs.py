"""Training jobs for the app: each job is a ``vae-explorer train`` process writing into its run
folder. The truth about a job lives on disk (``status.json``, ``metrics.jsonl``), so a page
reload, a second tab or a restarted app all see the same job. No Streamlit here."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from explorer.checkpoints import MODEL_FILE
from explorer.errors import ExplorerError
from explorer.runs import METRICS_FILE, read_metrics, read_status

LOG_FILE = "train.log"
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def runs_root() -> Path:
    """Where the app keeps runs: ``$VAE_EXPLORER_RUNS`` or ``runs/`` in the working folder."""
    return Path(os.environ.get("VAE_EXPLORER_RUNS") or "runs").resolve()


def check_run_name(name: str) -> str:
    """A run name is one folder name: letters, digits, '.', '_', '-'; no '..', no separators."""
    if not RUN_NAME.fullmatch(name or "") or ".." in name:
        raise ExplorerError(
            f"run name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '..' or '/')"
        )
    return name


def list_runs(root: Path | None = None) -> list[str]:
    """Run folders under the runs root that hold metrics or a checkpoint, newest first."""
    root = root or runs_root()
    if not root.is_dir():
        return []
    runs = [
        p
        for p in root.iterdir()
        if p.is_dir()
        and RUN_NAME.fullmatch(p.name)
        and ((p / METRICS_FILE).exists() or (p / MODEL_FILE).exists() or (p / "status.json").exists())
    ]
    return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


@dataclass
class JobView:
    """What the Train page shows about one run."""

    name: str
    state: str  # starting, running, stopped, finished, failed, lost, none
    message: str
    step: int
    epoch: int
    epochs: int | None
    total_steps: int | None
    samples_per_s: float | None
    eta_s: float | None
    rows: list[dict]
    path: str = ""  # how it trains: processes, device, CUDA graph or eager step
    steps_per_epoch: int | None = None  # places the step rows at fractional epochs on the curves

    @property
    def active(self) -> bool:
        return self.state in ("starting", "running")

    @property
    def fraction(self) -> float:
        if not self.total_steps:
            return 0.0
        return min(1.0, self.step / self.total_steps)


def job_environment() -> dict[str, str]:
    """The environment of a training job started from the app: unless the user chose a thread
    count (OMP_NUM_THREADS), the job leaves one core to the app. Two processes that each spread
    over every core make each other crawl (measured on 2 cores, with two other busy processes: a
    training step 13x slower with 2 threads than with 1)."""
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) - 1))
    return env


class JobRegistry:
    """Starts and stops training processes, one per run name; safe to share between sessions."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or runs_root()
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen] = {}

    def folder(self, name: str) -> Path:
        return self.root / check_run_name(name)

    def start(self, name: str, args: list[str], resume: bool = False) -> Path:
        """Launch ``vae-explorer train`` for run ``name`` with extra ``args``. A second start of
        a run whose job is alive is refused (two tabs pressing Start start one job)."""
        folder = self.folder(name)
        with self._lock:
            self._reap()
            view = self.view(name)
            if view.active:
                raise ExplorerError(f"run {name!r} is already training; watch it or stop it first")
            if not resume and view.state != "none":
                raise ExplorerError(f"a run named {name!r} exists already; choose another name")
            folder.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "explorer.cli", "train", "--no-progress"]
            cmd += ["--resume", str(folder)] if resume else ["--out", str(folder)]
            launched = time.time()
            with open(folder / LOG_FILE, "a") as log:
                proc = subprocess.Popen(
                    cmd + args,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env=job_environment(),
                )
            self._procs[name] = proc
            # Wait until the process has claimed the run, so that a rerun sees it at once (with
            # --nproc the claim comes from rank 0, a child of torchrun: hence the time, not the PID).
            deadline = time.time() + 10
            while time.time() < deadline and proc.poll() is None:
                status = read_status(folder)
                if status and (status.get("pid") == proc.pid or status.get("time", 0) >= launched):
                    break
                time.sleep(0.05)
            if proc.poll() not in (None, 0) and not read_status(folder):
                # Refused before it claimed the run (a device this machine lacks, a step too big
                # for its memory): say why, and leave no empty run behind.
                why = _log_tail(folder, lines=1) or f"exit code {proc.returncode}"
                del self._procs[name]
                if not resume and all(p.name == LOG_FILE for p in folder.iterdir()):
                    shutil.rmtree(folder, ignore_errors=True)
                raise ExplorerError(
                    f"training did not start: {why.removeprefix('vae-explorer train: error: ')}"
                )
        return folder

    def stop(self, name: str) -> None:
        """Ask the run's process to stop: it saves a checkpoint and exits (resumable)."""
        status = read_status(self.folder(name)) or {}
        pid = status.get("pid")
        if status.get("state") in ("starting", "running") and pid and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)

    def _reap(self) -> None:
        for name, proc in list(self._procs.items()):
            if proc.poll() is not None:
                del self._procs[name]

    def view(self, name: str) -> JobView:
        """The run's state from its files; a 'running' run whose process is gone is 'lost'."""
        folder = self.folder(name)
        self._reap()
        status = read_status(folder) or {}
        rows = read_metrics(folder / METRICS_FILE)
        state, message = status.get("state", "none"), status.get("message", "")
        if state in ("starting", "running") and not _pid_alive(int(status.get("pid", 0)) or -1):
            state = "lost"
            message = (
                "the training process ended without saying why (killed?); its last "
                "checkpoint is kept: resume it to continue"
            )
        if state == "failed" and not message:
            message = _log_tail(folder)
        last = rows[-1] if rows else {}
        epochs, per_epoch = status.get("epochs"), status.get("steps_per_epoch")
        total = epochs * per_epoch if epochs and per_epoch else None
        speed = next((r["samples_per_s"] for r in reversed(rows) if "samples_per_s" in r), None)
        step = last.get("step", status.get("step", 0))
        eta = None
        if total and rows and step:
            elapsed = last.get("seconds", 0.0)
            eta = max(0.0, elapsed / step * (total - step)) if state in ("starting", "running") else None
        epoch_rows = [r for r in rows if r.get("type") == "epoch"]
        return JobView(
            name,
            state,
            message,
            step,
            epoch_rows[-1]["epoch"] if epoch_rows else 0,
            epochs,
            total,
            speed,
            eta,
            rows,
            status.get("path", ""),
            per_epoch,
        )


def _log_tail(folder: Path, lines: int = 3) -> str:
    try:
        text = (folder / LOG_FILE).read_text().strip().splitlines()
    except OSError:
        return ""
    return " / ".join(text[-lines:])
