"""A digit on a white card lying on a table a few grey levels darker: the ink is what differs most
from its local paper, not the card's faint edge against the table (which used to be taken as the
drawing, with the digit a dark hole in a white square).

Every case comes back as the MNIST original (correlation >= 0.98). Evenly lit, the card is not
under a shadow: the grey strokes of MNIST's digits drawn large (whole segments at 10-70% of the
strokes' strength) are ink, not a shadow's remains; when the preparation took them for shade,
seven of these 32 came out a pixel off (0.82-0.85) and one lost an arm of its 4."""

import io

import numpy as np
import pytest
from PIL import Image

from explorer.data.uploads import preprocess_image

pytestmark = pytest.mark.integration


def card_on_table(digit: np.ndarray, table: float, card: float, table_margin: int, card_margin: int,
                  fmt: str, seed: int, scale: int = 10) -> bytes:  # fmt: skip
    """An MNIST digit (28, 28) uint8 drawn ``scale`` times larger (each pixel a square, as
    tests/test_preprocess.py draws them) in dark ink (grey 0.1) on a card
    of grey ``card``, ``card_margin`` pixels of card around it, on a table of grey ``table``
    showing ``table_margin`` pixels around the card; a photo's grain (sd 0.01)."""
    side = 28 * scale
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.NEAREST), np.float64) / 255
    full = side + 2 * (table_margin + card_margin)
    photo = np.full((full, full), table)
    photo[table_margin:-table_margin, table_margin:-table_margin] = card
    at = table_margin + card_margin
    photo[at : at + side, at : at + side] = card - (card - 0.1) * ink
    photo += np.random.default_rng(seed).normal(0, 0.01, photo.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(photo * 255, 0, 255).astype(np.uint8)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    "table, card, table_margin, card_margin, fmt",
    [
        (0.88, 0.95, 200, 60, "PNG"),  # a wide view of the table, the card 18 grey levels lighter
        (0.92, 0.97, 60, 10, "PNG"),  # the digit nearly fills the card, 13 levels apart
        (0.85, 0.93, 150, 20, "JPEG"),
        (0.55, 0.90, 200, 30, "PNG"),  # a clearly darker table
    ],
)
def test_a_digit_on_a_card_on_a_darker_table_comes_back_as_the_digit(
    mnist_test, table, card, table_margin, card_margin, fmt
):
    for i in range(8):
        digit = mnist_test.images[i, 0].numpy()
        x = preprocess_image(card_on_table(digit, table, card, table_margin, card_margin, fmt, seed=i))
        r = float(np.corrcoef(x.flatten().numpy(), digit.ravel().astype(float))[0, 1])
        assert r >= 0.98, (i, r)
