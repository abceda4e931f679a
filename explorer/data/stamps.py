"""Hashing files, in one place (``file_digest``, ``md5_file``, ``sha256_file``), and verifying a
cached file once: its digest is kept in a stamp beside it with the file's size and modification
time, and later checks read the stamp instead of hashing the file again, as long as size and
mtime (to the nanosecond) are unchanged. A file replaced or rewritten gets a new mtime and is
hashed again; a stamp that cannot be read or written costs only the hashing.

The stamp is ``.verified.json`` in the file's folder: {file name: {"size", "mtime_ns",
algorithm: hex digest}}.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

STAMP = ".verified.json"


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """The hex digest of a file's bytes (hashlib's ``algorithm``), read in 1 MB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def md5_file(path: Path) -> str:
    return file_digest(path, "md5")


def sha256_file(path: Path) -> str:
    return file_digest(path, "sha256")


def _read(folder: Path) -> dict:
    try:
        data = json.loads((folder / STAMP).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def digest(path: Path, algorithm: str) -> str:
    """The hex digest (hashlib's ``algorithm``) of the file at ``path``: from the stamp when the
    file's size and mtime match it, else computed and stamped.

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path)
    status = path.stat()
    stamps = _read(path.parent)
    entry = stamps.get(path.name) or {}
    if (
        entry.get("size") == status.st_size
        and entry.get("mtime_ns") == status.st_mtime_ns
        and algorithm in entry
    ):
        return entry[algorithm]
    value = file_digest(path, algorithm)
    if entry.get("size") != status.st_size or entry.get("mtime_ns") != status.st_mtime_ns:
        entry = {"size": status.st_size, "mtime_ns": status.st_mtime_ns}
    stamps[path.name] = {**entry, algorithm: value}
    tmp = path.parent / f"{STAMP}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(stamps, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path.parent / STAMP)
    except OSError:  # a read-only cache: verify again next time
        tmp.unlink(missing_ok=True)
    return value
