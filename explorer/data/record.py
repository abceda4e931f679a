"""The data a model was trained on, recorded beside it, and the check that it is still the data
there now.

A run writes ``dataset.json`` when it starts (``explorer.data.cache.fingerprint``: the counts of
training and test images and one SHA-256 over both splits). A folder added again with ``data add
--replace`` (more images, fewer, another test fraction) keeps its name and changes under every
model trained on it: resuming one is refused (``explorer.train.run.same_data``), and so is
measuring one on it (``check_trained_data``: the pages, ``evaluate``, ``evidence``, ``reconstruct``,
``export``, ``derive``), since its "test images" would then include images it was trained on and
its stored figures would rank new images against old ones. A model without a record (the shipped
models, runs from before the record was kept) is not checked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from explorer.errors import ExplorerError

RECORD_FILE = "dataset.json"  # in a run's folder: the counts and checksum of the data it trains on
_MEMO: dict[str, tuple[tuple, dict]] = {}  # dataset -> (its files' stats, its fingerprint)


class DataChanged(ExplorerError):
    """A model's dataset is not the one it was trained on any more."""


def read_record(folder: str | os.PathLike) -> dict | None:
    """The record of the data the model in ``folder`` was trained on; None when it has none."""
    try:
        record = json.loads((Path(folder) / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def what_changed(was: dict, now: dict) -> str | None:
    """How the data ``now`` differs from the data recorded ``was`` (both as ``fingerprint``
    makes them), in words ("it had 11 training and 1 test images, it has 7 and 5 now"); None when
    the counts and the checksum agree."""
    if (was.get("train"), was.get("test"), was.get("sha256")) == (now["train"], now["test"], now["sha256"]):
        return None
    if (was.get("train"), was.get("test")) != (now["train"], now["test"]):
        return (
            f"it had {was.get('train')} training and {was.get('test')} test images, it has "
            f"{now['train']} and {now['test']} now"
        )
    return (
        f"the same counts, other images (sha256 {str(was.get('sha256'))[:12]}... then, "
        f"{now['sha256'][:12]}... now)"
    )


def current_fingerprint(dataset: str) -> dict:
    """``explorer.data.cache.fingerprint`` of ``dataset`` as it is now, computed once per version
    of its files in this process (a folder added again gets new files, and is measured again).

    Raises:
        DatasetError: as ``load_dataset``.
    """
    from explorer.data.cache import cache_dir, fingerprint

    folder = cache_dir(dataset)
    try:
        stats = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        stats = ()
    memo = _MEMO.get(dataset)
    if memo is None or memo[0] != stats or not stats:
        memo = _MEMO[dataset] = (stats, fingerprint(dataset))
    return memo[1]


def _pinned(dataset: str) -> bool:
    """Whether every file of ``dataset`` is verified against a published checksum (MNIST,
    Fashion-MNIST): then it cannot change under a model, and is not hashed again."""
    from explorer.data.sources import dataset_files

    files = dataset_files(dataset)
    return bool(files) and all(md5 is not None for md5 in files.values())


def check_trained_data(folder: str | os.PathLike, dataset: str) -> None:
    """Refuse to measure the model in ``folder`` on ``dataset`` when that is no longer the data
    the model was trained on (its recorded counts and checksum against the data's now). A model
    without a record, or of a dataset pinned by published checksums, passes. The first check of a
    dataset's version hashes it (about 0.5 s for 70,000 images); later ones stat its files.

    Raises:
        DataChanged: what changed, and the two ways on (add the folder again as it was, or train a
            model on the new data starting from this one).
    """
    from explorer.errors import DatasetError

    was = read_record(folder)
    if was is None or _pinned(dataset):
        return
    try:
        now = current_fingerprint(dataset)
    except DatasetError:  # not in the cache at all: whoever loads the model or the data says so
        return
    changed = what_changed(was, now)
    if changed is None:
        return
    raise DataChanged(
        f"the dataset {dataset} has changed since the model in {folder} was trained on it "
        f"({changed}): its test images would not be the ones it was measured on, and some may be "
        f"images it was trained on. Add the folder again as it was, or train a model of the new "
        f"data starting from this one: vae-explorer train --out NEW_RUN --init-from {folder} "
        f"--dataset {dataset}"
    )


def outdated_models(dataset: str, folders) -> list[Path]:
    """Of the model folders ``folders``, those trained on ``dataset`` as it was before it changed
    (their record names it and differs from it now): what ``data add --replace`` leaves behind."""
    now, out = None, []
    for folder in map(Path, folders):
        was = read_record(folder)
        if was is None or was.get("dataset") != dataset:
            continue
        now = now or current_fingerprint(dataset)
        if what_changed(was, now) is not None:
            out.append(folder)
    return out
