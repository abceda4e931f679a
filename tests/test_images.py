"""Pictures: MNIST-style preprocessing, grids, the Figure 4 latent grid."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.errors import ImageError
from explorer.images import latent_grid, make_grid, png_bytes, preprocess_image


def _png(image: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _stroke(background: int, ink: int, size=(120, 90)) -> Image.Image:
    image = Image.new("L", size, background)
    image.paste(ink, (20, 30, 40, 100))  # an off-centre vertical bar, 20 wide and 70 tall
    return image


def test_dark_ink_on_light_paper_is_inverted_cropped_and_centred():
    x = preprocess_image(_png(_stroke(background=230, ink=20)))
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert x.max() > 0.9 and x[0, 0, 0] == 0  # light ink on black
    rows, cols = torch.nonzero(x[0] > 0.5, as_tuple=True)
    assert rows.max() - rows.min() + 1 == 20  # the long side fits 20 px
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    cy, cx = (ys * x[0]).sum() / x.sum(), (xs * x[0]).sum() / x.sum()
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1  # centred by mass


def test_light_ink_on_dark_matches_dark_on_light():
    a = preprocess_image(_png(_stroke(background=230, ink=20)))
    b = preprocess_image(_png(_stroke(background=25, ink=235)))  # the same, inverted
    assert torch.allclose(a, b, atol=1e-6)


def test_transparent_background_is_flattened():
    rgba = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (20, 5, 30, 45))
    x = preprocess_image(_png(rgba))
    assert x.max() > 0.9 and x[0, 0, 0] == 0


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "not an image"),
        (b"%PDF-1.4 ...", "not an image"),
    ],
)
def test_unusable_files_give_one_message(payload, message):
    with pytest.raises(ImageError, match=message):
        preprocess_image(payload)


def test_blank_image_is_refused():
    with pytest.raises(ImageError, match="blank"):
        preprocess_image(_png(Image.new("L", (40, 40), 255)))


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
    from explorer.images import ScatterPicture

    pic = ScatterPicture(
        torch.tensor([[2.0, 2.0]]), torch.tensor([1]), ["#000000", "#ff0000"], size=80, lim=4.0
    )
    base = np.asarray(pic.base)
    assert tuple(base[20, 60]) == (255, 0, 0)  # (2, 2) -> x = 60, y = 20 (y up); colour of label 1
    starred = pic.with_star((-4.0, -4.0))  # a corner: clamped inside the frame
    assert starred.shape == (80, 80, 3) and tuple(starred[74, 6]) == (0, 0, 0)
    assert tuple(np.asarray(pic.base)[74, 6]) == (255, 255, 255), "the cached base is not drawn on"


def test_side_by_side_and_upscale():
    from explorer.images import side_by_side, upscale

    left = upscale(np.array([[0, 255]], dtype=np.uint8), 2)
    assert left.tolist() == [[0, 0, 255, 255], [0, 0, 255, 255]]
    right = np.full((6, 3, 3), 7, dtype=np.uint8)
    both = side_by_side(left, right, gap=1)
    assert both.shape == (6, 8, 3)
    assert tuple(both[2, 0]) == (0, 0, 0) and tuple(both[0, 0]) == (255, 255, 255)  # centred
    assert (both[:, 5:] == 7).all()


def test_canvas_drawing_becomes_an_mnist_like_input():
    import numpy as np

    from explorer.images import canvas_image, preprocess_image

    blank = np.zeros((280, 280, 4), dtype=np.uint8)
    assert canvas_image(blank) is None and canvas_image(None) is None
    drawn = blank.copy()
    drawn[60:220, 130:150] = (255, 255, 255, 255)  # a white vertical stroke: a "1"
    drawn[0:5, 0:5] = (255, 255, 255, 0)  # fully transparent paint counts for nothing
    image = canvas_image(drawn)
    assert image.mode == "L" and np.asarray(image)[100, 140] == 255 and np.asarray(image)[2, 2] == 0
    x = preprocess_image(image)
    assert x.shape == (1, 28, 28)
    rows, cols = np.nonzero(x[0].numpy() > 0.5)
    assert rows.max() - rows.min() + 1 >= 19 and cols.max() - cols.min() + 1 <= 5  # tall, thin, 20 px high
    assert abs((x[0].sum(1) * torch.arange(28)).sum() / x.sum() - 13.5) < 1  # centred by mass
