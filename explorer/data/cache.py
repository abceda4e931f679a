"""Datasets in the cache: fetched from their sources (``explorer.data.sources``), verified, loaded.

Every dataset lives in the cache folder ``$VAE_EXPLORER_DATA`` (default ``~/.cache/vae-explorer``)
as raw files that are verified by checksum before use. When the cache is missing or wrong, the
sources are tried in order (``explorer.data.sources.SOURCES``); each writes into a temporary folder
inside the cache, its files are verified, and only then moved into place, so an interrupted fetch
leaves no partial file behind. When every source fails, the error names each one and why it failed.

Images come back as uint8 tensors (N, C, H, W) and labels as int64 tensors (N,).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from explorer.data import sources
from explorer.data.arrays import read_split, record, verify_arrays
from explorer.data.sources import (
    CIFAR_SPLITS,
    FREY_FACE_FILE,
    FREY_FACE_TEST,
    Source,
    dataset_files,
    read_cifar_batch,
    read_frey,
    read_idx,
)
from explorer.data.specs import SPEC_FILE, data_root, spec
from explorer.data.stamps import digest as stamped_digest
from explorer.data.stamps import md5_file, sha256_file
from explorer.errors import DatasetError, SourceFailed


def _check_name(name: str) -> str:
    try:
        spec(name)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    return name


# ----------------------------------------------------------------------------------------------
# Verification and the cache


def _verify(name: str, folder: Path) -> None:
    """Raise SourceFailed unless every file of ``name`` in ``folder`` is present and correct."""
    if spec(name).form == "arrays":
        verify_arrays(folder)
        return
    for file, md5 in dataset_files(name).items():
        path = folder / file
        if not path.is_file():
            raise SourceFailed(f"{file} is missing")
        if md5 is not None:
            got = stamped_digest(path, "md5")  # hashed once, then read from the stamp
            if got != md5:
                raise SourceFailed(f"{file} has md5 {got}, expected {md5}")
    if name == "frey-face":
        read_frey(folder / FREY_FACE_FILE)  # checks shape and type


def cache_dir(name: str) -> Path:
    return data_root() / _check_name(name)


def fetch(name: str, tried: list[tuple[str, Source]] | None = None) -> Path:
    """Make sure ``name`` is in the cache and verified; return its folder.

    Tries the cache, then each source in order (``tried``, else the dataset's ``SOURCES``).

    Raises:
        DatasetError: naming every source tried and why it failed.
    """
    folder = cache_dir(name)
    failures = []
    try:
        _verify(name, folder)
        return folder
    except SourceFailed as exc:
        if folder.exists():
            failures.append(f"cache {folder}: {exc}")
        else:
            failures.append(f"cache {folder}: empty")
    folder.mkdir(parents=True, exist_ok=True)
    if tried is None and name not in sources.SOURCES:  # an added image folder: no other copy
        raise DatasetError(
            f"dataset {name!r} in {folder} is damaged ({failures[0].split(': ', 1)[1]}); add its "
            f"folder again: vae-explorer data add {name} PATH --replace"
        )
    for label, source in tried if tried is not None else sources.SOURCES[name]:
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=folder))
        try:
            source(name, tmp)
            _verify(name, tmp)
            files = sorted(p for p in tmp.iterdir() if p.is_file())
            for path in sorted(files, key=lambda p: p.name == SPEC_FILE):  # the description last
                os.replace(path, folder / path.name)  # same filesystem: atomic
            (folder / "source.json").write_text(json.dumps({"source": label}) + "\n")
            return folder
        except SourceFailed as exc:
            failures.append(f"{label}: {exc}")
        except Exception as exc:
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not any(folder.iterdir()):
        folder.rmdir()  # nothing fetched: no empty folder left to look like a damaged cache
    raise DatasetError(f"dataset {name!r} is unavailable; sources tried:\n  - " + "\n  - ".join(failures))


@dataclass(frozen=True)
class Dataset:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    factors: torch.Tensor | None = None  # (N, F) float32: the true factors of generated images

    def __len__(self) -> int:
        return len(self.labels)


_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_dataset(name: str, split: str = "train") -> Dataset:
    """Images (N, C, H, W) uint8 and labels (N,) int64 of one split, fetched if needed; with the
    true factors (N, F) where the dataset was generated from them (the shapes).

    Frey Face has no labels and no official split: labels are frame numbers and the last
    ``FREY_FACE_TEST`` frames are the test split.

    Raises:
        DatasetError: an unknown dataset or split, or a dataset that cannot be fetched.
    """
    if split not in _SPLIT_FILES:
        raise DatasetError(f"unknown split {split!r}; choose 'train' or 'test'")
    folder = fetch(name)
    form, factors = spec(name).form, None
    if form == "arrays":
        images, labels, factors = read_split(folder, split)
    elif form == "cifar":
        batches = [read_cifar_batch(folder / file) for file in CIFAR_SPLITS[split]]
        images, labels = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    elif form == "frey":
        frames = read_frey(folder / FREY_FACE_FILE)
        index = np.arange(len(frames))
        keep = (
            index < len(frames) - FREY_FACE_TEST
            if split == "train"
            else index >= len(frames) - FREY_FACE_TEST
        )
        images, labels = frames[keep][:, None], index[keep]
    else:
        image_file, label_file = _SPLIT_FILES[split]
        images, labels = read_idx(folder / image_file)[:, None], read_idx(folder / label_file)
    return Dataset(
        images=torch.from_numpy(np.array(images, dtype=np.uint8)),
        labels=torch.from_numpy(np.asarray(labels, dtype=np.int64)),
        factors=None if factors is None else torch.from_numpy(np.asarray(factors, dtype=np.float32)),
    )


def info(name: str) -> dict:
    """Counts, shape, source and checksums of a (fetched) dataset."""
    folder = fetch(name)
    source_file = folder / "source.json"
    if source_file.exists():
        source = json.loads(source_file.read_text())["source"]
    elif spec(name).form == "arrays":  # an added folder of images
        source = f"images from {record(folder).get('origin', {}).get('folder', 'a folder')}"
    else:
        source = "unknown"
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    files = {}
    listed = dataset_files(name) or dict.fromkeys(record(folder).get("files", {}))
    for file, md5 in listed.items():
        path = folder / file
        files[file] = {
            "bytes": path.stat().st_size,
            "md5": md5 or md5_file(path),
            "sha256": sha256_file(path),
            "checksum_published": md5 is not None,
        }
    return {
        "name": name,
        "folder": str(folder),
        "source": source,
        "train": len(train),
        "test": len(test),
        "shape": list(train.images.shape[1:]),
        "classes": list(spec(name).label_names or []) or None,
        "files": files,
    }


def binarize_fixed(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Binarise uint8 images once with a fixed seed: pixel ~ Bernoulli(grey level / 255).

    Uses NumPy's PCG64 stream so the result is the same on every machine and device; this is the
    evaluation test set of the MNIST likelihood protocol. Returns float32 in {0, 1}.
    """
    grey = images.cpu().numpy().astype(np.float64) / 255.0
    uniform = np.random.Generator(np.random.PCG64(seed)).random(grey.shape)
    return torch.from_numpy((uniform < grey).astype(np.float32))


def binarize_picture(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One picture (C, H, W) of grey levels in [0, 1] (an upload, a drawing) binarised once as the
    evaluation's test set is (``binarize_fixed``): pixel ~ Bernoulli(grey level), from NumPy's PCG64
    stream of ``seed``, the same on every machine. Returns float32 in {0, 1}."""
    grey = x.detach().cpu().numpy().astype(np.float64).clip(0.0, 1.0)
    uniform = np.random.Generator(np.random.PCG64(seed)).random(grey.shape)
    return torch.from_numpy((uniform < grey).astype(np.float32))


def eval_images(
    dataset: str,
    split: str = "test",
    binarized: bool = True,
    limit: int | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluation inputs (N, C, H, W) float32 and labels: fixed-seed binarised, or grey / 255."""
    data = load_dataset(dataset, split)
    images, labels = data.images[:limit], data.labels[:limit]
    x = binarize_fixed(images, seed) if binarized else images.float() / 255.0
    return x, labels


def fingerprint(name: str) -> dict:
    """What a run records of the data it trains on, to tell on --resume whether it changed: the
    counts of training and test images and one SHA-256 over both splits' images (uint8, C-order)
    and labels (int64). About 0.5 s for MNIST's 70,000 images.

    Raises:
        DatasetError: as ``load_dataset``.
    """
    import hashlib

    digest, counts = hashlib.sha256(), {}
    for split in ("train", "test"):
        data = load_dataset(name, split)
        counts[split] = len(data)
        digest.update(data.images.contiguous().numpy())
        digest.update(data.labels.contiguous().numpy())
    return {"dataset": name, **counts, "sha256": digest.hexdigest()}
