"""The density contours of points that carry no Gaussians (an autoencoder's codes, a t-SNE or UMAP
map): explorer.ui.latent.code_density."""

from __future__ import annotations

import numpy as np

from explorer.ui.latent import BINS, DECADES, code_density


def heavy_tailed(seed: int = 0) -> np.ndarray:
    """Like mnist-ae-z2's codes: a dense core, a wide sparse cluster, a few far outliers."""
    rng = np.random.default_rng(seed)
    core = rng.normal(0, 1, size=(4000, 2))
    wide = rng.normal(0, 8, size=(900, 2)) + [-20, 40]
    far = rng.uniform(-100, 100, size=(100, 2))
    return np.concatenate([core, wide, far])


def test_the_dense_core_and_the_sparse_cluster_both_get_contours():
    """plotly's histogram spanned every point (cells 5 units wide for a core of +-2) with linear
    levels: the sparse cluster got no line and the core was one blot."""
    xs, ys, log_q = code_density(heavy_tailed())
    assert log_q.shape == (BINS, BINS) and xs.shape == ys.shape == (BINS,)
    assert xs[1] - xs[0] < 1.5  # the core (sd 1) spans several cells
    top = log_q.max()
    peak = np.unravel_index(log_q.argmax(), log_q.shape)
    assert abs(xs[peak[1]]) < 1.5 and abs(ys[peak[0]]) < 1.5  # at the core
    wide = log_q[np.abs(ys - 40).argmin(), np.abs(xs + 20).argmin()]
    assert top - DECADES < wide < top - 1  # inside the outermost line, below the core's
    # a proper density: it integrates to about the share of points on the grid
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert 0.85 < (10**log_q).sum() * cell <= 1.0


def test_too_few_or_unplaced_points_draw_nothing():
    assert code_density(np.zeros((1, 2))) is None
    assert code_density(np.array([[np.nan, 0.0], [np.inf, 1.0]])) is None
    xs, ys, log_q = code_density(np.zeros((50, 2)))  # all on one spot: still a grid
    assert np.isfinite(log_q).all() and np.isfinite(xs).all()
