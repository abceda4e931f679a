"""Training jobs for the app: each job is a ``vae-explorer train`` process writing into its run
folder. The truth about a job lives on disk (``status.json``, ``metrics.jsonl``), so a page
reload, a second tab or a restarted app all see the same job. No Streamlit here."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.train.runfolder import (
    JOB_ENV,
    LOCK_FILE,
    LOG_FILE,
    RunFolder,
    check_run_name,
    pid_alive,
    runs_root,
)

LOST = (
    "the training process ended without saying why (killed?); its last checkpoint is kept: "
    "resume it to continue"
)
CUT_SHORT = (
    "trained to its last epoch and saved; the process ended while it stored what the pages need "
    "(killed?): each page measures what it needs on its first visit (or: vae-explorer derive {folder})"
)
NOTHING_SAVED = (
    "the training process ended before its first checkpoint (stopped while starting, or "
    "killed): nothing was saved to resume; delete the run and start it again"
)


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
    stage: str = ""  # after the last epoch: what the run is storing for the pages, in words
    stage_fraction: float = 0.0  # how far that storing has gone: parts done of all
    stage_seconds: float = 0.0  # since it began
    derived: str = ""  # a finished run's figures for the pages: stored, skipped (stopped) or failed

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

    def folder(self, name: str) -> RunFolder:
        return RunFolder(self.root / check_run_name(name))

    def start(self, name: str, args: list[str], resume: bool = False) -> Path:
        """Launch ``vae-explorer train`` for run ``name`` with extra ``args``. A second start of
        a run whose job is alive is refused (two tabs pressing Start start one job).

        Raises:
            ExplorerError: the run is training already, the name is taken by another run, or the
                process refused to start (its reason, from its log); a refused new run leaves
                nothing behind.
        """
        run = self.folder(name)
        with self._lock:
            self._reap()
            status = run.read_status() or {}
            owner = _taken_by(run, status)
            if owner and name not in self._procs and status.get("state") not in ("starting", "running"):
                # a shell's run holds it and has not said so in its status yet
                raise ExplorerError(
                    f"training did not start: {run.path} is in use by another training process (pid "
                    f"{owner}): wait for it to end or stop it, or train into another folder"
                )
            view = self.view(name)
            if view.active:
                raise ExplorerError(f"run {name!r} is already training; watch it or stop it first")
            if not resume and view.state != "none":
                raise ExplorerError(f"a run named {name!r} exists already; choose another name")
            run.path.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "explorer.cli", "train", "--no-progress"]
            cmd += ["--resume", str(run.path)] if resume else ["--out", str(run.path)]
            token = uuid.uuid4().hex  # written into the job's status: its own, not another's
            with open(run.log, "a") as log:
                proc = subprocess.Popen(
                    cmd + args,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env=job_environment() | {JOB_ENV: token},
                )
            self._procs[name] = proc
            self._wait_for_claim(run, proc, token)
            if proc.poll() not in (None, 0) and not _claimed(run.read_status(), token):
                # Refused before it claimed the run (a device this machine lacks, a step too big
                # for its memory, another process training in the folder): say why, and leave no
                # empty run behind.
                why = _log_tail(run, lines=1) or f"exit code {proc.returncode}"
                del self._procs[name]
                leftovers = {p.name for p in run.path.iterdir()}
                if not resume and leftovers <= {LOG_FILE, LOCK_FILE} and not run.owner(wait=0):
                    shutil.rmtree(run.path, ignore_errors=True)
                raise ExplorerError(
                    f"training did not start: {why.removeprefix('vae-explorer train: error: ')}"
                )
        return run.path

    @staticmethod
    def _wait_for_claim(run: RunFolder, proc: subprocess.Popen, token: str) -> None:
        """Wait until the process has claimed the run, so that a rerun sees it at once (with
        --nproc the claim comes from rank 0, a child of torchrun, which inherits the token)."""
        deadline = time.time() + 10
        while time.time() < deadline and proc.poll() is None:
            if _claimed(run.read_status(), token):
                return
            time.sleep(0.05)

    def stop(self, name: str) -> None:
        """Ask the run's process to stop: it saves a checkpoint and exits (resumable); after its
        last epoch, while it stores what the pages need, it skips that and finishes (the pages
        then measure it on their first visit)."""
        status = self.folder(name).read_status() or {}
        pid = status.get("pid")
        if status.get("state") in ("starting", "running") and pid and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)

    def delete(self, name: str) -> None:
        """Delete the run's folder: only a run that no process trains and that holds no
        checkpoint (one that ended before its first), which nothing could resume.

        Raises:
            ExplorerError: the run is training, or it holds a checkpoint.
        """
        run, view = self.folder(name), self.view(name)
        if view.active or run.owner(wait=0):
            raise ExplorerError(f"run {name!r} is training: stop it first")
        if run.has_checkpoint():
            raise ExplorerError(f"run {name!r} holds a checkpoint: delete its folder by hand if you mean it")
        shutil.rmtree(run.path)

    def _reap(self) -> None:
        for name, proc in list(self._procs.items()):
            if proc.poll() is not None:
                del self._procs[name]

    def view(self, name: str) -> JobView:
        """The run's state from its files; a 'running' run whose process is gone is 'lost'."""
        run = self.folder(name)
        self._reap()
        status, rows = run.read_status() or {}, run.read_metrics()
        state, message = status.get("state", "none"), status.get("message", "")
        if state in ("starting", "running") and not pid_alive(int(status.get("pid", 0)) or -1):
            said = _log_tail(run, lines=1) if _mtime(run.log) >= status.get("time", 0) else ""
            # It died saying why, after its last status (a full disk kept status.json "running").
            if status.get("stage") and run.has_checkpoint():  # killed after its last epoch
                state, message = "finished", CUT_SHORT.format(folder=run.path)
                status = {**status, "derived": "skipped"}
            elif said.startswith("vae-explorer train: error: "):
                state, message = "failed", said.removeprefix("vae-explorer train: error: ")
            else:
                state, message = "lost", LOST if run.has_checkpoint() else NOTHING_SAVED
        owner = _taken_by(run, status)
        if state not in ("starting", "running") and owner:
            # another process has just taken the run (a shell's `train --resume`) and has not
            # written its status yet: the page follows it from now
            state, message = "starting", f"taken by another process (pid {owner}), which is starting"
        if state == "failed" and not message:
            message = _log_tail(run)
        last = rows[-1] if rows else {}
        epoch_rows = [r for r in rows if r.get("type") == "epoch"]
        epochs, per_epoch = status.get("epochs"), status.get("steps_per_epoch") or _per_epoch(epoch_rows)
        total = epochs * per_epoch if epochs and per_epoch else None
        speed = next((r["samples_per_s"] for r in reversed(rows) if "samples_per_s" in r), None)
        step = last.get("step", status.get("step", 0))
        eta = None
        if total and rows and step and state in ("starting", "running"):
            eta = max(0.0, last.get("seconds", 0.0) / step * (total - step))
        last_epoch = epoch_rows[-1]["epoch"] if epoch_rows else 0
        return JobView(
            name,
            state,
            message,
            step,
            last_epoch,
            epochs,
            total,
            speed,
            eta,
            rows,
            status.get("path", ""),
            per_epoch,
            *_stage(status, state in ("starting", "running")),
            status.get("derived", "") if state == "finished" else "",
        )


def _per_epoch(epoch_rows: list[dict]) -> int | None:
    """Steps per epoch from the run's epoch rows (each logged at its epoch's last step), for a
    status that does not say (a failed run's, one a full disk cut short): without it the curves
    drew every logged step of an epoch at the epoch's whole number, as vertical jumps."""
    for row in epoch_rows:
        if row.get("epoch") and row.get("step") and row["step"] % row["epoch"] == 0:
            return row["step"] // row["epoch"]
    return None


def _stage(status: dict, active: bool) -> tuple[str, float, float]:
    """(what an active run stores for the pages after its last epoch, the fraction done, the
    seconds since it began) from its status; empty while it trains, or once it has ended."""
    if not active or not status.get("stage"):
        return "", 0.0, 0.0
    parts = status.get("stage_parts") or 1
    since = time.time() - status["stage_started"] if "stage_started" in status else 0.0
    return status["stage"], min(1.0, status.get("stage_part", 0) / parts), max(0.0, since)


def _taken_by(run: RunFolder, status: dict) -> int | None:
    """The pid of a process that holds ``run`` other than the one its ``status`` names and this one
    (a shell's `train --resume` that has not written its status yet), or None. (The pid run.lock
    names stays there after a claim ends: a live process of that pid is not always its holder.)"""
    owner = run.owner(wait=0)
    return None if owner in (None, os.getpid(), status.get("pid")) else owner


def _claimed(status: dict | None, token: str) -> bool:
    """Whether ``status`` was written by the job started with ``token`` (``JOB_ENV``; with --nproc,
    by its rank 0), not by an earlier or another process training the run. (By time, a CLI run
    started just before the app's Resume, and writing its status just after, passed for the app's
    job: the page watched "starting" and never said the app's job was refused.)"""
    return bool(status) and status.get("job") == token


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _log_tail(run: RunFolder, lines: int = 3) -> str:
    try:
        text = run.log.read_text().strip().splitlines()
    except OSError:
        return ""
    return " / ".join(text[-lines:])
