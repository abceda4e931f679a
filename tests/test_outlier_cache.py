"""The synthetic outliers a stranger detector is fitted against are made once per dataset and
kept in the dataset cache: every later fit (a run storing its figures) reads them back."""

from __future__ import annotations

import torch

from explorer.explore import outliers
from explorer.explore.outliers import outlier_cache, outlier_images

SMALL = {"marks": 9, "noise": 3, "seed": 4, "objects": 2}


def test_the_outliers_are_made_once_then_read_back_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path))
    made = outlier_images("mnist", **SMALL)
    path = outlier_cache("mnist", *SMALL.values())
    assert path.is_file() and path.parent == tmp_path / ".outliers"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left

    def never(*args, **kwargs):
        raise AssertionError("made again")

    monkeypatch.setattr(outliers, "outlier_set", never)
    again = outlier_images("mnist", **SMALL)
    assert again.shape == made.shape == (len(made), 1, 28, 28) and torch.equal(again, made)


def test_other_arguments_or_datasets_are_other_files(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path))
    paths = {
        outlier_cache("mnist", 9, 3, 4, 2),
        outlier_cache("mnist", 9, 3, 5, 2),
        outlier_cache("fashion-mnist", 9, 3, 4, 2),
    }
    assert len(paths) == 3


def test_a_torn_cache_file_is_made_again_and_an_unwritable_cache_passed_by(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path))
    path = outlier_cache("mnist", *SMALL.values())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    made = outlier_images("mnist", **SMALL)
    assert len(made) > 0 and torch.equal(outlier_images("mnist", **SMALL), made)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache's folder would be")
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(blocked))
    assert torch.equal(outlier_images("mnist", **SMALL), made)  # made afresh, nothing kept
