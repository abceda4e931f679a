"""Nearest neighbours of an image among the test set, in latent space (posterior means) and in
pixel space: what the encoder calls similar against what looks similar. Pure PyTorch."""

from __future__ import annotations

from dataclasses import dataclass

import torch

BLOCK = 4096  # reference rows per distance block: bounds memory for any test set
CANDIDATES = 64  # beyond k, measured again in float64: float32 rounding (~1e-6 relative) cannot
# move an item across that many places unless they all tie, and ties keep their index order


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
    flat_q = query.reshape(1, -1)
    flat_r = reference.reshape(len(reference), -1)
    if flat_r.shape[1] != flat_q.shape[1]:
        raise ValueError(f"the query has {flat_q.shape[1]} values, the reference items {flat_r.shape[1]}")
    # A rough ranking first, then the CANDIDATES nearest of it again in float64, which decides. A
    # floating-point reference is ranked by |r|^2 - 2 r.q (one matrix-vector product and one norm:
    # a tenth of the time pairwise distances took, which every click on a test image pays); the
    # rounding of that expansion, ~1e-7 of |r|^2, is far inside the CANDIDATES margin.
    if flat_r.is_floating_point():
        q = flat_q[0].to(flat_r.dtype)
        rough = torch.linalg.vector_norm(flat_r, dim=1).square() - 2 * (flat_r @ q)
    else:
        rough = torch.cat(
            [
                torch.cdist(flat_q.float(), flat_r[i : i + BLOCK].float())[0]
                for i in range(0, len(flat_r), BLOCK)
            ]
        )
    if exclude is not None:
        rough[exclude] = float("inf")
    k = min(k, len(rough) - (exclude is not None))
    candidates = torch.sort(rough, stable=True).indices[: k + CANDIDATES].sort().values  # by index
    distances = torch.cdist(flat_q.double(), flat_r[candidates].double())[0]
    if exclude is not None:
        distances[candidates == exclude] = float("inf")
    order = torch.sort(distances, stable=True).indices[:k]  # ties: the lower index first
    return Neighbours(candidates[order].tolist(), distances[order].tolist())
