"""A run folder: every path and file of one training run, and the rules for naming runs.

A run folder holds the checkpoint (``model.safetensors``, ``train_state.safetensors``,
``config.json``: see ``explorer.checkpoints``), ``metrics.jsonl`` (one JSON line per logging step
and per epoch), ``status.json`` (what the training process is doing), ``commands.txt`` (how the
run was made, for its model card), ``latents/`` (where test images sit in latent space after each
epoch), ``dataset.json`` (the counts and checksum of its data, checked on --resume),
``run.lock`` (held by the one process that trains the run: ``RunFolder.claim``) and, for
runs the app started, ``train.log``. The trainer writes them; the app, the cards
and the benches read them, all through this class.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time
from pathlib import Path

from explorer.data.record import RECORD_FILE
from explorer.errors import ExplorerError
from explorer.locations import MODEL_FILE, runs_root
from explorer.train.wholefiles import append_whole, finite_row, mount_point, replace_whole

METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
COMMANDS_FILE = "commands.txt"  # each command line that trained this run, one per line
LOG_FILE = "train.log"  # what a run started by the app printed
LATENTS_DIR = "latents"
DATA_FILE = RECORD_FILE  # dataset.json: the counts and checksum of the data the run trains on
LOCK_FILE = "run.lock"  # locked (flock) by the process training the run; holds its pid
JOB_ENV = "VAE_EXPLORER_JOB"  # the app's token for a job it started, written into its status
CLAIMED_ENV = "VAE_EXPLORER_CLAIMED_RUN"  # the run folder `train --nproc`'s launcher holds for its workers
SNAPSHOT_SIZE = 2000  # test images whose latent means are saved every epoch
NO_RUN_FOLDER = (  # a resume of a folder that is not there: said before the folder is claimed (made)
    "cannot resume: there is no run folder {folder}; name a run that exists, or start a new one "
    "without --resume"
)
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_run_name(name: str) -> str:
    """A run name is one folder name: letters, digits, '.', '_', '-'; no '..', no separators.

    Raises:
        ExplorerError: any other name, with what is allowed.
    """
    if not RUN_NAME.fullmatch(name or "") or ".." in name:
        raise ExplorerError(
            f"run name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '..' or '/')"
        )
    return name


def list_runs(root: Path | None = None) -> list[str]:
    """Run folders under the runs root that hold metrics, a checkpoint or a status, newest first."""
    root = root or runs_root()
    if not root.is_dir():
        return []
    runs = [
        p for p in root.iterdir() if p.is_dir() and RUN_NAME.fullmatch(p.name) and RunFolder(p).holds_run()
    ]
    return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie, exited but not reaped, is not)."""
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


class RunClaim:
    """A run folder's lock, held by the process that trains the run (``RunFolder.claim``): the
    operating system releases it when the process ends, however it ends (kill -9 included)."""

    def __init__(self, run: RunFolder, fd: int | None = None, made: bool = False) -> None:
        self.run, self.fd, self.made = run, fd, made

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Give the folder up; a folder that ``claim`` made and nothing else wrote into goes too."""
        if self.fd is None:
            return
        try:
            if self.made and [p.name for p in self.run.path.iterdir()] == [LOCK_FILE]:
                (self.run.path / LOCK_FILE).unlink()  # while still held: no one locks a removed file
                self.run.path.rmdir()
        except OSError:
            pass
        finally:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


class RunFolder:
    """The files of one run, at ``path``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.metrics = self.path / METRICS_FILE
        self.status_file = self.path / STATUS_FILE
        self.commands = self.path / COMMANDS_FILE
        self.log = self.path / LOG_FILE
        self.latents = self.path / LATENTS_DIR

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def has_checkpoint(self) -> bool:
        return (self.path / MODEL_FILE).is_file()

    def forget_unsaved(self) -> bool:
        """In a folder without a checkpoint (its run failed or stopped before saving one: a full
        disk at the first save, say), remove what that run wrote about itself (metrics, status,
        commands, the data's record, latent snapshots), so that a new run can take the folder;
        whether there was any. ``train.log`` stays: the app opens it for the new run's output. Call
        while holding the folder (``claim``).

        Raises:
            ValueError: the folder holds a checkpoint (a run to resume, not to replace).
        """
        if self.has_checkpoint():
            raise ValueError(f"{self.path} holds a checkpoint")
        found = False
        for path in (self.metrics, self.status_file, self.commands, self.path / DATA_FILE):
            if path.is_file():
                path.unlink()
                found = True
        if self.latents.is_dir():
            shutil.rmtree(self.latents)
            found = True
        return found

    def holds_run(self) -> bool:
        """Whether a run has written here (metrics, a checkpoint or a status)."""
        return self.metrics.exists() or (self.path / MODEL_FILE).exists() or self.status_file.exists()

    # -- run.lock: one process per run folder ---------------------------------------------------------

    def claim(self, inheritable: bool = False) -> RunClaim:
        """Lock the run folder (made if needed) for this process, for as long as it trains it: a
        second process that claims it is refused until the first ends; the lock of a process that
        died (kill -9 included) is gone with it. The lock is the operating system's (flock, through
        the filelock package) on ``run.lock``, which holds the owner's pid for the refusal to name.
        ``inheritable``: the lock survives an exec (``train --nproc`` becomes torchrun). In a
        process group (``RANK`` set), rank 0 claims the folder for every rank.

        Raises:
            ExplorerError: another process holds the folder (its pid said), or it cannot be made.
        """
        from filelock import lock_descriptor

        if os.environ.get(CLAIMED_ENV) == str(self.path.resolve()) or os.environ.get("RANK", "0") != "0":
            return RunClaim(self)  # held for this process: by `train --nproc`'s launcher, or by rank 0
        made = not self.path.exists()
        self.create()
        lock = self.path / LOCK_FILE
        for _ in range(3):  # the file may be replaced between open and lock (a claim giving up)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                held = lock_descriptor(fd, blocking=False)
                same = held and os.path.samestat(os.fstat(fd), os.stat(lock))
            except OSError as exc:
                os.close(fd)
                if isinstance(exc, FileNotFoundError):
                    continue
                raise ExplorerError(
                    f"cannot lock the run folder {self.path}: {exc.strerror or exc}"
                ) from None
            if not held:
                os.close(fd)
                owner = self.owner()
                raise ExplorerError(
                    f"{self.path} is in use by another training process (pid {owner or 'unknown'}): "
                    "wait for it to end or stop it, or train into another folder"
                )
            if same:
                break
            os.close(fd)
        else:
            raise ExplorerError(f"cannot lock the run folder {self.path}: its {LOCK_FILE} keeps changing")
        try:  # in place, in the file's own block: a full disk cannot refuse it
            os.pwrite(fd, f"{os.getpid():<15}\n".encode(), 0)
        except OSError:
            pass
        os.set_inheritable(fd, inheritable)
        return RunClaim(self, fd, made)

    def owner(self, wait: float = 1.0) -> int | None:
        """The pid written in run.lock by the process holding it (waiting up to ``wait`` seconds
        for a process that has just taken the lock to write it); None when there is none."""
        deadline = time.monotonic() + wait
        while True:
            try:
                pid = int((self.path / LOCK_FILE).read_text().split()[0])
                if pid_alive(pid):
                    return pid
            except (OSError, ValueError, IndexError):
                pass
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    # -- metrics.jsonl -----------------------------------------------------------------------------

    def append_metrics(self, rows: list[dict]) -> None:
        """Append JSON lines, standard JSON only, flushed to disk: whole lines or none (a failed
        write, a full disk say, is cut back off; ``OSError`` is raised)."""
        append_whole(self.metrics, "".join(json.dumps(finite_row(r), allow_nan=False) + "\n" for r in rows))

    def read_metrics(self) -> list[dict]:
        """The complete lines of metrics.jsonl (a torn last line is skipped)."""
        rows = []
        try:
            lines = self.metrics.read_text().splitlines(keepends=True)
        except FileNotFoundError:
            return rows
        for line in lines:
            if not line.endswith("\n"):
                break
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return rows

    def truncate_metrics(self, step: int) -> list[dict]:
        """Keep only complete lines up to ``step`` (the checkpoint's), atomically; return them."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        replace_whole(self.metrics, "".join(json.dumps(finite_row(r), allow_nan=False) + "\n" for r in rows))
        return rows

    # -- status.json -------------------------------------------------------------------------------

    def write_status(self, state: str, **fields) -> None:
        """Record the run's state (atomically) for the app and other observers: starting, running,
        stopped (checkpoint saved, resumable), finished or failed (with a message). A job the app
        started carries its token (``JOB_ENV``), by which the app knows its own job's status from
        another process's training the same run."""
        job = {"job": os.environ[JOB_ENV]} if os.environ.get(JOB_ENV) else {}
        record = json.dumps({"state": state, "pid": os.getpid(), "time": time.time(), **job, **fields}) + "\n"
        try:
            replace_whole(self.status_file, record)
        except OSError:
            if not self.status_file.exists():
                raise
            # A full disk has no room for a new file, but the old one's block is there to reuse:
            # written in place (a reader may catch it half-written, and reads None then).
            with open(self.status_file, "r+b") as f:
                f.write(record.encode())
                f.truncate()

    def write_error(self, exc: OSError, what: str) -> str:
        """What went wrong writing ``what`` (a file's name) into this run, in words: a full disk
        named by its mount point, else the system's reason."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            full = "full" if exc.errno == errno.ENOSPC else "over its quota"
            return (
                f"disk full: the file system at {mount_point(self.path)} (holding {self.path}) is "
                f"{full} ({errno.errorcode[exc.errno]}: {exc.strerror}) while writing {what}"
            )
        return f"could not write {what} in {self.path}: {exc.strerror or exc}"

    def create(self) -> None:
        """Make the run folder (and its parents).

        Raises:
            ExplorerError: the path is a file, or the folder cannot be made (the reason said;
                nothing written).
        """
        if self.path.exists() and not self.path.is_dir():
            raise ExplorerError(f"{self.path} is a file, not a folder: choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExplorerError(f"cannot create the run folder {self.path}: {exc.strerror or exc}") from None

    def read_status(self) -> dict | None:
        try:
            return json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # -- dataset.json: the data the run trains on -----------------------------------------------------

    def write_data_record(self, record: dict) -> None:
        """Record the data the run trains on (``explorer.data.cache.fingerprint``), atomically."""
        replace_whole(self.path / DATA_FILE, json.dumps(record, indent=2) + "\n")

    def read_data_record(self) -> dict | None:
        """The recorded data of the run; None for a run from before the record was kept."""
        try:
            return json.loads((self.path / DATA_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # -- commands.txt ------------------------------------------------------------------------------

    def record_commands(self, lines: list[str]) -> None:
        """Append lines to commands.txt: how the run was made, for its model card."""
        append_whole(self.commands, "".join(line + "\n" for line in lines))

    def read_commands(self) -> list[str]:
        try:
            return self.commands.read_text().splitlines()
        except OSError:
            return []

    # -- latents/: the latent space as it forms, one small file per epoch ------------------------------

    def has_snapshot_labels(self) -> bool:
        return (self.latents / "labels.npy").exists()

    def write_latent_snapshot(self, epoch: int, points, labels=None) -> Path:
        """Save the 2-D latent coordinates (n, 2) of the snapshot images after ``epoch`` (0 = before
        training) as latents/epoch-NNNN.npy (float16, atomically); ``labels`` once, with epoch 0."""
        import numpy as np

        self.latents.mkdir(exist_ok=True)
        # float16 holds up to 65,504: a diverging run's points are clipped there, not turned to inf.
        limit = np.finfo(np.float16).max
        points = np.nan_to_num(np.asarray(points, dtype=np.float64), nan=0.0, posinf=limit, neginf=-limit)
        items = [(f"epoch-{epoch:04d}.npy", np.clip(points, -limit, limit).astype(np.float16))]
        if labels is not None:
            items.append(("labels.npy", np.asarray(labels, dtype=np.int16)))
        for name, array in items:
            tmp = self.latents / f".{name}.tmp-{os.getpid()}"
            try:
                with open(tmp, "wb") as f:
                    np.save(f, array)
                os.replace(tmp, self.latents / name)
            except BaseException:
                tmp.unlink(missing_ok=True)  # no empty temporary file left by a full disk
                raise
        return self.latents / items[0][0]

    def read_latent_snapshots(self):
        """(epochs [int], coordinates float32 (E, n, 2), labels (n,)) of the saved snapshots, in
        epoch order; None when the run saved none. Unreadable files (a run from before snapshots,
        a damaged file) are skipped."""
        import numpy as np

        try:
            labels = np.load(self.latents / "labels.npy", allow_pickle=False)
        except (OSError, ValueError):
            return None
        epochs, frames = [], []
        for path in sorted(self.latents.glob("epoch-*.npy")):
            try:
                frame = np.load(path, allow_pickle=False)
                epoch = int(path.stem.split("-")[1])
            except (OSError, ValueError):
                continue
            if frame.shape != (len(labels), 2):
                continue
            epochs.append(epoch)
            frames.append(frame.astype(np.float32))
        if not frames:
            return None
        return epochs, np.stack(frames), labels
