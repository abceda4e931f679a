"""A colour model whose reconstructions come back grey says so where they are shown."""

from __future__ import annotations

import pytest
import torch

from explorer.explore.latent import COLOUR_LOST, colour_kept
from tests.apptest import RECONSTRUCT, page


def _shapes(n: int = 6) -> torch.Tensor:
    """n pictures (n, 3, 16, 16): a saturated square of a different hue on black."""
    x = torch.zeros(n, 3, 16, 16)
    for i in range(n):
        x[i, i % 3, 4:12, 4:12] = 1.0
        x[i, (i + 1) % 3, 4:12, 4:12] = 0.3 * (i % 2)
    return x


def test_the_same_colours_are_kept_and_grey_ones_lost():
    x = _shapes()
    assert colour_kept(x, x) == pytest.approx(1.0)
    grey = x.mean(1, keepdim=True).expand_as(x)  # the same brightness, no hue
    assert colour_kept(x, grey) == pytest.approx(0.0)
    assert colour_kept(x, 0.5 * x) == pytest.approx(0.5)


def test_grey_level_pictures_and_pictures_without_colour_have_no_figure():
    assert colour_kept(torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)) is None
    flat = torch.rand(4, 1, 8, 8).expand(4, 3, 8, 8)
    assert colour_kept(flat, flat) is None


@pytest.mark.parametrize("model, told", [("shapes-conv-z8", True), ("shapes-conv-bce-z8", False)])
def test_reconstruct_says_when_a_model_decodes_colour_as_grey(model, told):
    at = page(RECONSTRUCT)
    at.query_params["model"] = model
    at.run()
    assert not at.exception
    said = [i.value for i in at.info if "decodes colour as grey" in i.value]
    assert bool(said) == told, [i.value for i in at.info]
    if told:
        kept = float(said[0].split("keep ")[1].split("%")[0]) / 100
        assert kept < COLOUR_LOST
