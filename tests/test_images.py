"""Pictures out: grids, PNGs, the Figure 4 latent grid. (Pictures in: test_preprocess.py.)"""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.explore.latent import latent_grid
from explorer.pictures.images import make_grid, png_bytes


def _png(image: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def test_latent_grid_is_the_inverse_gaussian_cdf():
    z = latent_grid(3, 0.05, 0.95)
    q = torch.special.ndtri(torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64)).float()
    assert z.shape == (9, 2)
    assert torch.allclose(z[:3, 0], q) and torch.allclose(z[0::3, 1], q.flip(0))
    assert latent_grid(2, latent_dim=5)[:, 2:].abs().sum() == 0
    with pytest.raises(ValueError):
        latent_grid(3, 0.0, 1.0)


def test_grid_layout_and_png():
    images = torch.zeros(5, 1, 2, 3)
    images[4] = 1.0
    grid = make_grid(images, ncol=2, pad=1)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1)
    assert grid[7:9, 1:4].min() == 255 and grid[1:3, 1:4].max() == 0
    png = Image.open(io.BytesIO(png_bytes(grid, scale=3)))
    assert png.size == (27, 30)
    assert np.asarray(png)[0, 0] == 255


@pytest.mark.parametrize("channels, pad", [(1, 0), (1, 2), (3, 1)])
def test_grid_puts_every_tile_in_its_place(channels, pad):
    torch.manual_seed(0)
    images = torch.rand(7, channels, 4, 5)  # 7 tiles, 3 per row: the last row has two blanks
    tiles = (
        (images * 255)
        .round()
        .to(torch.uint8)
        .permute(0, 2, 3, 1)
        .numpy()
        .squeeze(-1 if channels == 1 else ())
    )
    grid = make_grid(images, ncol=3, pad=pad, pad_value=77)
    assert grid.shape[:2] == (3 * (4 + pad) + pad, 3 * (5 + pad) + pad)
    for i in range(9):
        r, c = divmod(i, 3)
        y, x = pad + r * (4 + pad), pad + c * (5 + pad)
        expected = tiles[i] if i < 7 else 77
        assert np.array_equal(grid[y : y + 4, x : x + 5], np.broadcast_to(expected, tiles[0].shape))
    if pad:  # the frame lines between and around tiles are pad_value
        assert (
            (grid[:pad] == 77).all()
            and (grid[-pad:] == 77).all()
            and (grid[:, 5 + pad : 5 + 2 * pad] == 77).all()
        )


def test_scatter_picture_places_points_and_star():
    from explorer.pictures.images import ScatterPicture

    pic = ScatterPicture(
        torch.tensor([[2.0, 2.0]]), torch.tensor([1]), ["#000000", "#ff0000"], size=80, lim=4.0
    )
    base = np.asarray(pic.base)
    assert tuple(base[20, 60]) == (255, 0, 0)  # (2, 2) -> x = 60, y = 20 (y up); colour of label 1
    starred = pic.with_star((-4.0, -4.0))  # a corner: clamped inside the frame
    assert starred.shape == (80, 80, 3) and tuple(starred[74, 6]) == (0, 0, 0)
    assert tuple(np.asarray(pic.base)[74, 6]) == (255, 255, 255), "the cached base is not drawn on"


def test_side_by_side_and_upscale():
    from explorer.pictures.images import side_by_side, upscale

    left = upscale(np.array([[0, 255]], dtype=np.uint8), 2)
    assert left.tolist() == [[0, 0, 255, 255], [0, 0, 255, 255]]
    right = np.full((6, 3, 3), 7, dtype=np.uint8)
    both = side_by_side(left, right, gap=1)
    assert both.shape == (6, 8, 3)
    assert tuple(both[2, 0]) == (0, 0, 0) and tuple(both[0, 0]) == (255, 255, 255)  # centred
    assert (both[:, 5:] == 7).all()
