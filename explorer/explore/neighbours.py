"""Nearest neighbours of an image among the test set, in latent space (posterior means) and in
pixel space: what the encoder calls similar against what looks similar. Pure PyTorch."""

from __future__ import annotations

from dataclasses import dataclass

import torch

BLOCK = 4096  # reference rows per distance block: bounds memory for any test set


@dataclass
class Neighbours:
    """The k nearest reference items of one query, nearest first."""

    indices: list[int]  # into the reference set
    distances: list[float]  # Euclidean, in the space searched (z units, or pixel values in [0, 1])


def nearest(query: torch.Tensor, reference: torch.Tensor, k: int, exclude: int | None = None) -> Neighbours:
    """The ``k`` rows of ``reference`` (N, ...) nearest to ``query`` (...) in Euclidean distance
    (both flattened per item: codes (z,) or images (C, H, W)); ``exclude``: a reference index to
    leave out (the query itself when it is a test image). Ties go to the lower index.

    Raises:
        ValueError: k < 1, or shapes that do not match.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    flat_q = query.reshape(1, -1).double()
    flat_r = reference.reshape(len(reference), -1)
    if flat_r.shape[1] != flat_q.shape[1]:
        raise ValueError(f"the query has {flat_q.shape[1]} values, the reference items {flat_r.shape[1]}")
    distances = torch.cat(
        [torch.cdist(flat_q, flat_r[i : i + BLOCK].double())[0] for i in range(0, len(flat_r), BLOCK)]
    )
    if exclude is not None:
        distances[exclude] = float("inf")
    k = min(k, len(distances) - (exclude is not None))
    order = torch.sort(distances, stable=True).indices[:k]
    return Neighbours(order.tolist(), distances[order].tolist())
