"""Placing new codes into a fitted t-SNE map: a code equal to a fitted one lands on its place, and
copies jittered by far less than the codes' spacing land next to their originals (measured in the
map's median nearest-neighbour distance, as bench/projections.py reports it)."""

import pytest
import torch

from explorer.explore.projections import fit_nonlinear


def _clusters(seed: int = 0) -> torch.Tensor:
    """300 codes in 8-D: six clusters of 50 with overlapping tails (a small latent space)."""
    g = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn(6, 8, generator=g)
    return torch.cat([c + torch.randn(50, 8, generator=g) for c in centres])


def median_nn(points: torch.Tensor) -> float:
    d = torch.cdist(points.double(), points.double())
    d.fill_diagonal_(float("inf"))
    return float(d.min(1).values.median())


@pytest.mark.parametrize(
    "kind", ["tsne", pytest.param("umap", marks=pytest.mark.slow)]
)  # UMAP: numba compiles
def test_copies_of_fitted_codes_land_on_their_places(kind):
    means = _clusters()
    projection = fit_nonlinear(kind, means)
    rows = torch.randperm(len(means), generator=torch.Generator().manual_seed(1))[:100]
    exact = projection(means[rows].clone())  # 100 rows: placed, not looked up one by one
    assert torch.allclose(exact, projection.points[rows], atol=1e-4)
    g = torch.Generator().manual_seed(2)
    spacing = median_nn(projection.points)
    for scale in (1e-4, 1e-2):  # the codes' own spacing here is about 1
        jittered = means[rows] + scale * torch.randn(len(rows), 8, generator=g)
        error = (projection(jittered) - projection.points[rows]).norm(dim=1) / spacing
        assert float(error.max()) <= 2.0, (scale, float(error.median()), float(error.max()))


def test_neighbour_place_is_shepards_weighted_mean_of_the_nearest_places():
    from explorer.explore.projections import neighbour_place

    codes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [9.0, 9.0]])
    places = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [50.0, 50.0]])
    z = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    d = torch.cdist(z.double(), codes.double())[:, :3]  # k = 3: the far code is left out
    w = d.pow(-4) / d.pow(-4).sum(1, keepdim=True)
    expected = (w[..., None] * places.double()[:3]).sum(1).float()
    got = neighbour_place(z, codes, places, k=3, power=4)
    assert torch.allclose(got[0], expected[0]) and torch.equal(got[1], places[1])
