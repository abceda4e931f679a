"""A cached file is hashed once: later checks read the stamp while size and mtime hold, and a file
changed in place is hashed again and caught."""

import hashlib
import os

import pytest

from explorer.data import sources, stamps


@pytest.fixture
def hashed(monkeypatch):
    """Count the files actually hashed."""
    calls = []
    real = stamps.file_digest
    monkeypatch.setattr(
        stamps, "file_digest", lambda path, algorithm="md5": calls.append(path) or real(path, algorithm)
    )
    return calls


def test_a_file_is_hashed_once_while_it_is_unchanged(tmp_path, hashed):
    path = tmp_path / "images.bin"
    path.write_bytes(b"\x01" * 100_000)
    expected = hashlib.md5(path.read_bytes()).hexdigest()
    assert stamps.digest(path, "md5") == expected
    assert stamps.digest(path, "md5") == expected
    assert len(hashed) == 1  # the second check read the stamp
    assert stamps.digest(path, "sha256") == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(hashed) == 2  # another algorithm is hashed once too


def test_a_file_changed_in_place_is_hashed_again(tmp_path, hashed):
    path = tmp_path / "images.bin"
    path.write_bytes(b"\x01" * 1000)
    first = stamps.digest(path, "md5")
    before = path.stat().st_mtime_ns
    path.write_bytes(b"\x02" * 1000)  # same size, other bytes
    os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
    assert stamps.digest(path, "md5") != first and len(hashed) == 2


def test_a_damaged_cache_is_still_refused(tmp_path, monkeypatch):
    from explorer.data import cache as data
    from explorer.errors import DatasetError

    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path))
    monkeypatch.setattr(data.sources, "SOURCES", {**data.sources.SOURCES, "mnist": []})
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in sources.dataset_files("mnist"):
        (folder / name).write_bytes(b"not mnist")
    with pytest.raises(DatasetError, match="md5"):
        data.fetch("mnist")
    with pytest.raises(DatasetError, match="md5"):  # the stamp records the wrong digest, not a pass
        data.fetch("mnist")


def test_an_unwritable_stamp_costs_only_the_hashing(tmp_path, hashed, monkeypatch):
    path = tmp_path / "images.bin"
    path.write_bytes(b"\x03" * 10)
    monkeypatch.setattr(stamps.os, "replace", lambda *a: (_ for _ in ()).throw(PermissionError("read-only")))
    assert stamps.digest(path, "md5") == hashlib.md5(b"\x03" * 10).hexdigest()
    assert stamps.digest(path, "md5") and len(hashed) == 2
    assert not list(tmp_path.glob("*.tmp"))
