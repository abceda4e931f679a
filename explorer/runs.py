"""The files of a run folder besides the checkpoint: ``metrics.jsonl`` (one JSON line per
logging step and per epoch), ``status.json`` (what the training process is doing) and
``commands.txt`` (how the run was made). Written by the trainer, read by the app and the cards."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
COMMANDS_FILE = "commands.txt"  # each command line that trained this run, one per line


def finite_row(row: dict) -> dict:
    """``row`` as standard JSON allows it: a float that is NaN or infinite becomes null and its
    key is listed under "nonfinite" (strict JSON readers reject bare NaN and Infinity)."""
    bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
    if not bad:
        return row
    return {**{k: (None if k in bad else v) for k, v in row.items()}, "nonfinite": bad}


def append_metrics(path: Path | None, rows: list[dict]) -> None:
    """Append JSON lines, standard JSON only (``path`` None: nothing, e.g. in a process other
    than rank 0)."""
    if path is None:
        return
    with open(path, "a") as f:
        f.write("".join(json.dumps(finite_row(r), allow_nan=False) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The complete lines of a metrics.jsonl (a torn last line is skipped)."""
    rows = []
    try:
        lines = Path(path).read_text().splitlines(keepends=True)
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


def truncate_metrics(path: Path, step: int) -> list[dict]:
    """Keep only complete lines up to ``step`` (the checkpoint's), atomically; return them."""
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(finite_row(r), allow_nan=False) + "\n" for r in rows))
    os.replace(tmp, path)
    return rows


def write_status(out: Path, state: str, **fields) -> None:
    """Record the run's state in RUN/status.json (atomically) for the app and other observers:
    starting, running, stopped (checkpoint saved, resumable), finished or failed (with message)."""
    record = {"state": state, "pid": os.getpid(), "time": time.time(), **fields}
    tmp = out / f".{STATUS_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, out / STATUS_FILE)


def read_status(out: str | os.PathLike) -> dict | None:
    try:
        return json.loads((Path(out) / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# -- the latent space as it forms: one small file per epoch ------------------------------------------
LATENTS_DIR = "latents"
SNAPSHOT_SIZE = 2000  # test images whose latent means are saved every epoch


def write_latent_snapshot(out: Path, epoch: int, points, labels=None) -> Path:
    """Save the 2-D latent coordinates (n, 2) of the snapshot images after ``epoch`` (0 = before
    training) as RUN/latents/epoch-NNNN.npy (float16, atomically); ``labels`` once, with epoch 0."""
    import numpy as np

    folder = Path(out) / LATENTS_DIR
    folder.mkdir(exist_ok=True)
    # float16 holds up to 65,504: a diverging run's points are clipped there, not turned to inf.
    limit = np.finfo(np.float16).max
    points = np.nan_to_num(np.asarray(points, dtype=np.float64), nan=0.0, posinf=limit, neginf=-limit)
    items = [(f"epoch-{epoch:04d}.npy", np.clip(points, -limit, limit).astype(np.float16))]
    if labels is not None:
        items.append(("labels.npy", np.asarray(labels, dtype=np.int16)))
    for name, array in items:
        tmp = folder / f".{name}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, folder / name)
    return folder / items[0][0]


def read_latent_snapshots(out: str | os.PathLike):
    """(epochs [int], coordinates float32 (E, n, 2), labels (n,)) of a run's saved snapshots, in
    epoch order; None when the run saved none. Unreadable files (a run from before snapshots,
    a damaged file) are skipped."""
    import numpy as np

    folder = Path(out) / LATENTS_DIR
    try:
        labels = np.load(folder / "labels.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    epochs, frames = [], []
    for path in sorted(folder.glob("epoch-*.npy")):
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
