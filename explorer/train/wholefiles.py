"""A run's files written whole or not at all: lines appended with one synced write and cut back
on failure (a full disk), files replaced through a temporary file and a rename; the mount point
that a full disk's message names; rows made standard JSON."""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path


def append_whole(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` with one write, synced; on failure (a full disk) the file is
    cut back to its old length, so that it never ends in a torn line. Raises the ``OSError``."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, data) != len(data):  # a short write: the disk filled up mid-line
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def replace_whole(path: Path, text: str) -> None:
    """Replace ``path`` by a file holding ``text`` (a temporary file, then a rename): readers see
    the old file or the new one; a failed write leaves neither a temporary file nor a torn file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (or its nearest existing parent)."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    device = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == device:
        path = path.parent
    return path


def finite_row(row: dict) -> dict:
    """``row`` as standard JSON allows it: a float that is NaN or infinite becomes null and its
    key is listed under "nonfinite" (strict JSON readers reject bare NaN and Infinity)."""
    bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
    if not bad:
        return row
    return {**{k: (None if k in bad else v) for k, v in row.items()}, "nonfinite": bad}
