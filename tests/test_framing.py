"""Fitting the ink into MNIST's frame (``explorer.pictures.framing``): a large picture's box is
found to a fraction of a pixel and shrunk by exact area averaging, so that a drawing moved by a
fraction of a pixel of the picture stays where it was on the output grid (its centre of mass
with it), while square pixels drawn large (MNIST's own digits on paper) keep their whole-pixel
grid."""

import numpy as np
import pytest

from explorer.pictures.framing import area_weights, box_edge, fit_box


def _ring(shift: float, side: int = 320, up: int = 8) -> np.ndarray:
    """A thick ring (outer radius 110, inner 70) of light ink on black, its centre at
    (150 + shift, 160 + shift), sampled by coverage (``up`` x ``up`` points a pixel)."""
    fine = (np.arange(side * up) + 0.5) / up
    y, x = np.meshgrid(fine - 150 - shift, fine - 160 - shift, indexing="ij")
    r = np.hypot(y, x)
    inside = ((r < 110) & (r > 70)).astype(np.float64)
    return inside.reshape(side, up, side, up).mean(axis=(1, 3))


def _centre_of_mass(a: np.ndarray) -> np.ndarray:
    ys, xs = np.indices(a.shape)
    return np.array([(ys * a).sum(), (xs * a).sum()]) / a.sum()


def test_a_drawing_moved_by_a_fraction_of_a_pixel_keeps_its_place_on_the_grid():
    """Before, the box's edges were whole pixels of the picture and the shrinking counted whole
    pixels: moving the ring by up to a pixel moved its centre of mass on the 20x20 grid by up to
    0.05 output pixels, in steps, enough to tip it across place()'s rounding edge (a photo and
    its clean twin a pixel apart). The ring is symmetric: its centre of mass is its box's centre,
    ten output pixels from the box's edges: half-way between two pixel centres (the output's
    empty margin rows and columns are cut, so the grid's origin is a whole pixel apart)."""
    centres = np.array([_centre_of_mass(fit_box(_ring(s), 20, 0.25, 2)) for s in np.linspace(0, 1, 9)])
    assert np.abs(centres % 1.0 - 0.5).max() < 0.01, centres


@pytest.mark.parametrize("scale", [4, 7, 10])
def test_square_pixels_drawn_large_keep_their_whole_pixel_edges(scale):
    """A step between two flat levels (a digit's pixels drawn ``scale`` times larger, nearest
    neighbour) has its edge at the pixel boundary, whatever the two levels (a faint pixel of
    the digit outside the box, a strong one inside)."""
    levels = np.array([0.0, 0.0, 0.15, 0.3, 1.0, 1.0, 0.6, 0.2, 0.0, 0.0])
    profile = np.repeat(levels, scale)
    first, last = 3 * scale, 8 * scale - 1  # the box of levels above 0.25: pixels 3 to 7
    assert box_edge(profile, first, 1) == pytest.approx(3 * scale)
    assert box_edge(profile, last, -1) == pytest.approx(8 * scale)


@pytest.mark.parametrize("edge", [10.0, 10.2, 10.5, 10.8])
def test_an_edge_sampled_by_coverage_is_found_within_a_tenth_of_a_pixel(edge):
    fine = (np.arange(40 * 100) + 0.5) / 100
    profile = (fine >= edge).astype(float).reshape(40, 100).mean(axis=1)  # ink from ``edge`` on
    first = int(np.nonzero(profile > 0.25)[0][0])
    assert abs(box_edge(profile, first, 1) - edge) < 0.1


def test_area_weights_average_exactly_what_each_footprint_covers():
    """Against a brute-force average of the input, piecewise constant, sampled 1,000 times a
    pixel over each output pixel's footprint."""
    rng = np.random.default_rng(0)
    signal = rng.random(50)
    start, scale = 3.37, 0.23  # output pixels 4.35 input pixels wide, from 3.37
    weights = area_weights(start, scale, 10, len(signal))
    for k, row in enumerate(weights):
        points = start + (k + (np.arange(1000) + 0.5) / 1000) / scale
        expected = np.where(points < len(signal), signal[np.minimum(points.astype(int), 49)], 0.0).mean()
        assert row @ signal == pytest.approx(expected, abs=2e-3)
