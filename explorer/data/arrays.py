"""Datasets stored as NumPy arrays: the shapes generated on this machine and image folders a user
adds. A dataset folder holds, per split, ``{split}-images.npy`` (N, C, H, W) uint8,
``{split}-labels.npy`` (N,) int64 and, where the images were generated from known factors,
``{split}-factors.npy`` (N, F) float32; and ``dataset.json``: its ``DatasetSpec``, the SHA-256 of
every array file, where it came from and (for a folder) the files that were skipped and why.

Arrays are read with ``allow_pickle=False``: a .npy file cannot run code. A folder is written
into a temporary folder next to its place and renamed into place only when complete, so an
interrupted import leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from explorer.data.specs import SPEC_FILE, DatasetSpec
from explorer.data.stamps import digest as stamped_digest
from explorer.data.stamps import sha256_file
from explorer.errors import DatasetError, SourceFailed


def write_arrays(
    dest: Path,
    described: DatasetSpec,
    splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    origin: dict,
) -> Path:
    """Write a dataset into folder ``dest`` (which must not exist): per split (images (N, C, H, W)
    uint8, labels (N,), factors (N, F) or None), with ``dataset.json`` last. Atomic: the folder
    appears complete or not at all. Returns ``dest``.

    Raises:
        DatasetError: the folder could not be written (a full disk), saying so; nothing is kept.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        digests = {}
        for split, (images, labels, factors) in splits.items():
            shape = described.image_shape
            if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != shape:
                raise ValueError(f"{split} images are {images.dtype} {images.shape}, not uint8 (N, *{shape})")
            arrays = {"images": images, "labels": labels.astype(np.int64)}
            if factors is not None:
                arrays["factors"] = factors.astype(np.float32)
            for kind, array in arrays.items():
                path = tmp / f"{split}-{kind}.npy"
                np.save(path, np.ascontiguousarray(array), allow_pickle=False)
                digests[path.name] = sha256_file(path)
        record = {**described.to_dict(), "files": digests, "origin": origin}
        (tmp / SPEC_FILE).write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, dest)
    except OSError as exc:  # a full disk (numpy says "N requested and M written"): one line, nothing kept
        shutil.rmtree(tmp, ignore_errors=True)
        free = shutil.disk_usage(dest.parent).free / 1e6
        raise DatasetError(
            f"the dataset could not be written into {dest.parent} ({exc.strerror or exc}; {free:.1f} MB "
            "free there): nothing was kept. Make room, or point VAE_EXPLORER_DATA at a disk with room, "
            "and run the command again"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def record(folder: Path) -> dict:
    """The folder's dataset.json.

    Raises:
        SourceFailed: missing or unreadable.
    """
    path = folder / SPEC_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SourceFailed(f"{SPEC_FILE} is missing") from None
    except (OSError, ValueError) as exc:
        raise SourceFailed(f"{SPEC_FILE} is unreadable: {exc}") from None


def verify_arrays(folder: Path) -> None:
    """Raise SourceFailed unless every array file named in dataset.json is present with the
    recorded SHA-256."""
    files = record(folder).get("files") or {}
    if not any(name.startswith("test-images") for name in files):
        raise SourceFailed(f"{SPEC_FILE} lists no test images")
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            raise SourceFailed(f"{name} is missing")
        got = stamped_digest(path, "sha256")  # hashed once, then read from the stamp
        if got != digest:
            raise SourceFailed(f"{name} has sha256 {got[:16]}..., expected {digest[:16]}... (damaged)")


def read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(images (N, C, H, W) uint8, labels (N,) int64, factors (N, F) float32 or None) of a split."""
    images = np.load(folder / f"{split}-images.npy", allow_pickle=False)
    labels = np.load(folder / f"{split}-labels.npy", allow_pickle=False)
    factors_file = folder / f"{split}-factors.npy"
    factors = np.load(factors_file, allow_pickle=False) if factors_file.exists() else None
    return images, labels, factors
