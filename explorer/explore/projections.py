"""Maps of a wide latent space beyond PCA: t-SNE (openTSNE, van der Maaten & Hinton 2008) and
UMAP (umap-learn, McInnes et al. 2018), fitted once on a model's encoded test set and able to
place new points (uploads, drawings, a posterior's draws) into the map they made. Both libraries
are imported only when a map is asked for (the library core does not need them).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from explorer.errors import ExplorerError

METHODS = ("pca", "tsne", "umap")
NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
SEED = 0
MIN_CODES = 100  # fewer codes make no t-SNE (perplexity 30) or UMAP (15 neighbours) map worth a fit


NEIGHBOURS = 10  # a new point goes to the weighted place of this many nearest fitted codes
POWER = 4  # ... weighted by 1 / distance**POWER in the latent space (Shepard's interpolation)


def neighbour_place(z: torch.Tensor, codes: torch.Tensor, places: torch.Tensor, k: int = NEIGHBOURS,
                    power: float = POWER) -> torch.Tensor:  # fmt: skip
    """New codes z (M, d) placed into a fitted map of ``codes`` (N, d) at ``places`` (N, 2): the
    mean of the places of the k nearest codes (exact Euclidean distances, float64), weighted by
    1 / distance**power (Shepard 1968, inverse-distance weighting). A code equal to a fitted one
    lands on its place, a copy jittered by much less than the codes' spacing next to it.

    openTSNE's own ``transform`` (or ``prepare_partial``'s median initialisation) does not: it
    places a point by the perplexity-weighted or median place of its neighbours, then optimises
    it against the fixed map, so a copy of a fitted code lands up to a cluster away from it."""
    codes, places, out = codes.double(), places.double(), []
    for rows in z.double().split(1024):  # (<= 1024, N) distances at a time
        dk, ik = torch.cdist(rows, codes).topk(min(k, len(codes)), largest=False)  # (m, k)
        w = dk.clamp_min(1e-60).pow(-power)  # an exact copy: a weight that swamps every other
        out.append(((w / w.sum(1, keepdim=True))[..., None] * places[ik]).sum(1))
    return torch.cat(out).float() if out else torch.zeros(0, 2)  # (M, 2)


class NonlinearProjection:
    """A fitted t-SNE or UMAP map: calling it on the codes it was fitted on returns their places;
    on other codes, places them into the map without moving the fitted points, by
    ``neighbour_place``: the weighted place of the nearest fitted codes, without the optimisation
    of openTSNE's or umap-learn's ``transform`` (seconds, and a copy of a fitted code moved up to
    a cluster away from it: measured in bench/projections.py)."""

    def __init__(self, kind: str, means: torch.Tensor, model, points: np.ndarray, seconds: float) -> None:
        self.kind, self.means, self.model = kind, means, model
        self.points = torch.as_tensor(np.asarray(points), dtype=torch.float32)  # (N, 2)
        self.seconds = seconds  # what the fit took
        self.explained: list[float] = []

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """(M, z) -> (M, 2): the fitted places for a prefix of the fitted codes, else placed anew."""
        z = z.float()
        if len(z) <= len(self.means) and torch.equal(z, self.means[: len(z)]):
            return self.points[: len(z)]
        out = torch.empty(len(z), 2)
        fitted = [self._fitted_row(row) for row in z] if len(z) <= 64 else [None] * len(z)
        new = [i for i, f in enumerate(fitted) if f is None]
        for i, f in enumerate(fitted):
            if f is not None:
                out[i] = self.points[f]  # a test image's own code: its place in the fitted map
        if new:
            out[new] = self._place(z[new])
        return out

    def _fitted_row(self, row: torch.Tensor) -> int | None:
        """The index of a fitted code equal to ``row`` (z,), or None."""
        same = torch.nonzero((self.means == row).all(1)).flatten()
        return int(same[0]) if len(same) else None

    def _place(self, z: torch.Tensor) -> torch.Tensor:
        """New codes (M, z) placed into the fitted map without moving it (``neighbour_place``),
        the same for a map read back from its stored places (``model`` None, ``explorer.explore.derived``)."""
        return neighbour_place(z, self.means, self.points)


def fit_nonlinear(kind: str, means: torch.Tensor) -> NonlinearProjection:
    """Fit a t-SNE (``tsne``) or UMAP (``umap``) map of codes ``means`` (N, z), seeded.

    Raises:
        ExplorerError: an unknown kind, its library is not installed (the message says which), or
            fewer than MIN_CODES codes.
    """
    if len(means) < MIN_CODES:
        raise ExplorerError(
            f"a {NAMES.get(kind, kind)} map needs at least {MIN_CODES} codes, not {len(means)}: use PCA"
        )
    data = means.double().numpy()
    start = time.perf_counter()
    if kind == "tsne":
        try:
            from openTSNE import TSNE
        except ImportError:
            raise ExplorerError("t-SNE maps need openTSNE: pip install openTSNE") from None
        model = TSNE(n_components=2, perplexity=30, random_state=SEED, n_jobs=-1, verbose=False).fit(data)
        points = np.asarray(model)
    elif kind == "umap":
        try:
            from umap import UMAP
        except ImportError:
            raise ExplorerError("UMAP maps need umap-learn: pip install umap-learn") from None
        model = UMAP(n_components=2, random_state=SEED, n_jobs=1).fit(data)
        points = model.embedding_
    else:
        raise ExplorerError(f"unknown map {kind!r}: use one of {', '.join(METHODS)}")
    return NonlinearProjection(kind, means.float(), model, points, time.perf_counter() - start)
