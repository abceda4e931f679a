"""The latent-space maths on tiny tensors (explorer.explore: posterior, density, latent):
posterior ellipses and samples, interpolation, the aggregate posterior against the prior, GIFs.
(Strangers: test_strangers.py.)"""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.evaluate import fit_projection
from explorer.explore.density import density_map, neighbour_spacing
from explorer.explore.latent import interpolate
from explorer.explore.posterior import (
    ellipse,
    posterior,
    posterior_ellipses,
    posterior_samples,
    projected_gaussian,
)
from explorer.pictures.images import gif_bytes


def test_ellipse_is_the_mahalanobis_contour():
    mean = torch.tensor([1.0, -2.0])
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]])
    for r in (1.0, 2.0):
        pts = torch.from_numpy(ellipse(mean, cov, r)) - mean.double()
        d = ((pts @ torch.linalg.inv(cov.double())) * pts).sum(1).sqrt()
        assert torch.allclose(d, torch.full_like(d, r), atol=1e-6)
    outline = ellipse(mean, cov, 1.0)
    assert np.allclose(outline[0], outline[-1])  # closed


def test_projected_gaussian_matches_samples():
    torch.manual_seed(0)
    cloud = torch.randn(500, 5) * torch.tensor([3.0, 2.0, 1.0, 0.5, 0.1])
    projection = fit_projection(cloud)
    mu, sigma = torch.tensor([[0.5, -1.0, 0.3, 0.0, 2.0]]), torch.tensor([[0.3, 0.7, 1.2, 0.4, 0.9]])
    means, covs = projected_gaussian(projection, mu, sigma)
    draws = projection(mu + sigma * torch.randn(200_000, 5)).double()
    assert torch.allclose(draws.mean(0), means[0], atol=0.01)
    assert torch.allclose(torch.cov(draws.T), covs[0], atol=0.02)
    ident = fit_projection(torch.randn(50, 2))
    m2, c2 = projected_gaussian(ident, mu[:, :2], sigma[:, :2])
    assert torch.allclose(m2[0], mu[0, :2].double()) and torch.allclose(
        c2[0], torch.diag(sigma[0, :2] ** 2).double()
    )
    assert set(posterior_ellipses(ident, mu[0, :2], sigma[0, :2])) == {1.0, 2.0}


def test_posterior_and_its_samples(tiny_model, tiny_batch):
    mu, sigma = posterior(tiny_model, tiny_batch)
    ref_mu, ref_logvar = tiny_model.encode(tiny_batch)
    assert torch.allclose(mu, ref_mu) and torch.allclose(sigma, (0.5 * ref_logvar).exp())
    z, images = posterior_samples(tiny_model, mu[0], sigma[0], n=6, seed=1)
    z2, images2 = posterior_samples(tiny_model, mu[0], sigma[0], n=6, seed=1)
    assert torch.equal(z, z2) and torch.equal(images, images2)  # a rerun shows the same draws
    assert images.shape == (6, *tiny_batch.shape[1:]) and 0 <= images.min() and images.max() <= 1
    many, _ = posterior_samples(tiny_model, mu[0], sigma[0], n=20_000)
    assert torch.allclose(many.mean(0), mu[0], atol=4 * sigma[0].max() / math.sqrt(20_000) + 1e-4)
    assert torch.allclose(many.std(0), sigma[0], rtol=0.05)


def test_linear_and_spherical_interpolation():
    a, b = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    for method in ("linear", "spherical"):
        path = interpolate(a, b, 9, method)
        assert path.shape == (9, 3)
        assert torch.allclose(path[0], a, atol=1e-6) and torch.allclose(path[-1], b, atol=1e-6)
    lin = interpolate(a, b, 5, "linear")
    assert torch.allclose(lin[2], (a + b) / 2)
    sl = interpolate(a, b, 5, "spherical")
    assert torch.allclose(sl.norm(dim=1), torch.linspace(3, 1, 5), atol=1e-5)  # norm moves linearly
    angles = torch.atan2(sl[:, 1], sl[:, 0])
    assert torch.allclose(angles, torch.linspace(0, math.pi / 2, 5), atol=1e-5)  # even steps on the arc
    assert torch.all(sl[:, 2] == 0)
    # parallel or zero codes: no great circle, so the linear path
    assert torch.allclose(interpolate(a, 2 * a, 4, "spherical"), interpolate(a, 2 * a, 4, "linear"))
    assert torch.allclose(interpolate(torch.zeros(3), b, 4, "spherical"), interpolate(torch.zeros(3), b, 4))
    with pytest.raises(ValueError, match="2 steps"):
        interpolate(a, b, 1)
    with pytest.raises(ValueError, match="unknown"):
        interpolate(a, b, 3, "cubic")


def test_gif_loops_forwards_and_back():
    frames = [np.full((8, 8), v, dtype=np.uint8) for v in (0, 100, 200, 255)]
    image = Image.open(io.BytesIO(gif_bytes(frames, frame_ms=50)))
    assert image.format == "GIF" and image.n_frames == 6 and image.info["loop"] == 0
    levels = []
    for i in range(image.n_frames):
        image.seek(i)
        levels.append(int(np.asarray(image.convert("L"))[0, 0]))
    assert levels == [0, 100, 200, 255, 200, 100]
    with pytest.raises(ValueError):
        gif_bytes([])


def test_density_map_of_posteriors_equal_to_the_prior_has_no_holes():
    projection = fit_projection(torch.randn(10, 2))
    n = 20
    d = density_map(projection, torch.zeros(n, 2), torch.ones(n, 2), size=81, lim=4.0)
    assert np.allclose(d.aggregate, d.prior, rtol=0.03, atol=1e-4)  # up to the half-cell smoothing
    assert not d.holes.any() and d.hole_mass == 0
    inside = 1 - 2 * (1 - 0.5 * (1 + math.erf(4 / math.sqrt(2))))  # P(|z_i| < 4)
    assert d.prior.sum() * d.cell_area == pytest.approx(inside**2, abs=0.01)


def test_density_map_finds_the_hole_the_data_leave():
    torch.manual_seed(0)
    mu = torch.randn(200, 2) * 0.2 + torch.tensor([3.0, 3.0])  # every posterior far in one corner
    sigma = torch.full((200, 2), 0.2)
    d = density_map(fit_projection(torch.randn(10, 2)), mu, sigma)
    assert d.xs[-1] > 3.5 and d.ys[-1] > 3.5  # the window takes in the data
    assert d.hole_mass == pytest.approx(1 - math.exp(-2), abs=0.02)  # all of the 2-sigma disc
    # Half the data sit in one half of the plane: the other half of the disc is a hole.
    half = torch.cat([torch.randn(4000, 1).abs(), torch.randn(4000, 1)], 1)
    d = density_map(fit_projection(torch.randn(10, 2)), half, torch.full((4000, 2), 0.1))
    assert 0.25 < d.hole_mass < (1 - math.exp(-2)) / 2 + 0.05
    assert not d.holes[:, d.xs > 0.3].any()  # where the data are, no hole
    gx, gy = np.meshgrid(d.xs, d.ys)
    left_disc = (np.hypot(gx, gy) < 1.9) & (gx < -0.3)
    assert d.holes[left_disc].mean() > 0.95  # and the empty half of the disc is one


def test_narrow_posteriors_spread_like_the_prior_leave_no_holes():
    """Codes drawn from the prior itself, 8-D, seen in a PCA plane, with posteriors far narrower
    than the spacing of their means (as shapes-conv-z8's): the gaps between 2,000 of them are not
    holes (the raw mixture put 3.3% of the prior's mass in holes here, 18.4% for shapes-conv-z8's
    2,000 test images; more codes fill them)."""
    torch.manual_seed(2)
    mu = torch.randn(2000, 8)
    d = density_map(fit_projection(mu), mu, torch.full((2000, 8), 0.02))
    assert d.hole_mass < 0.01
    near = np.hypot(*np.meshgrid(d.xs, d.ys)) < 1.5  # q matches p near the centre
    assert np.median(d.aggregate[near] / d.prior[near]) == pytest.approx(1, abs=0.15)


def test_neighbour_spacing_is_the_kth_nearest_other_point():
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0]])
    assert neighbour_spacing(points, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert neighbour_spacing(points, k=2).tolist() == [3.0, 2.0, 3.0, 6.0]
    assert neighbour_spacing(points, k=9).tolist() == [7.0, 6.0, 4.0, 7.0]  # k past the others: farthest
    assert neighbour_spacing(points[:1]).tolist() == [0.0]


def test_density_map_in_a_pca_plane_centres_the_prior_where_zero_lands():
    torch.manual_seed(1)
    mu = torch.randn(300, 6) + 2.0
    projection = fit_projection(mu)
    d = density_map(projection, mu, torch.full((300, 6), 0.5))
    expected = projection(torch.zeros(1, 6))[0]
    assert d.prior_centre == pytest.approx(expected.tolist(), abs=1e-5)
    peak = np.unravel_index(d.prior.argmax(), d.prior.shape)
    assert d.xs[peak[1]] == pytest.approx(expected[0].item(), abs=0.1)
    assert d.ys[peak[0]] == pytest.approx(expected[1].item(), abs=0.1)
    assert d.aggregate.sum() * d.cell_area == pytest.approx(
        1.0, abs=0.05
    )  # the window widens to hold the data


def test_aligning_frames_undoes_a_rotation_and_a_flip():
    from explorer.explore.latent import align_frames, pick_frames

    rng = np.random.default_rng(0)
    last = rng.normal(size=(50, 2))
    last -= last.mean(0)
    theta = 1.1
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    spun = last @ rot + 3.0  # rotated and moved
    flipped = last * np.array([-1.0, 1.0])
    aligned = align_frames(np.stack([spun, flipped, last]))
    assert np.allclose(aligned[0], last + 3.0, atol=1e-9)  # the rotation is undone, the centroid kept
    assert np.allclose(aligned[1], last, atol=1e-9)
    assert np.allclose(aligned[2], last)
    assert pick_frames(list(range(5)), 10) == [0, 1, 2, 3, 4]
    picked = pick_frames(list(range(301)), 40)
    assert picked[0] == 0 and picked[-1] == 300 and len(picked) == 40


def test_the_mixture_on_a_grid_matches_float64_densities_where_its_maps_draw():
    """``_gaussian_pdf_grid`` works in float32 for speed: against torch.distributions in float64,
    correlated 2-D components from narrow to wide, within 1e-4 wherever the mixture is above
    1e-12 of its peak (the contours span 3 decades, the Prior tab's picture 12)."""
    from explorer.explore.density import _gaussian_pdf_grid

    g = torch.Generator().manual_seed(3)
    means = torch.randn(700, 2, generator=g, dtype=torch.float64) * 2
    sd = torch.rand(700, 2, generator=g, dtype=torch.float64) * 0.6 + 0.02
    rho = torch.rand(700, generator=g, dtype=torch.float64) * 1.6 - 0.8
    covs = torch.diag_embed(sd**2)
    covs[:, 0, 1] = covs[:, 1, 0] = rho * sd[:, 0] * sd[:, 1]
    axis = torch.linspace(-7, 7, 61, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    mixture = torch.distributions.MultivariateNormal(means, covs)
    reference = mixture.log_prob(grid[:, None, :]).exp().mean(1)
    got = _gaussian_pdf_grid(grid, means, covs)
    drawn = reference > 1e-12 * reference.max()
    assert got.dtype == torch.float64 and drawn.float().mean() > 0.5
    assert torch.allclose(got[drawn], reference[drawn], rtol=1e-4, atol=0)
    assert (got[~drawn] - reference[~drawn]).abs().max() < 1e-12 * reference.max()
