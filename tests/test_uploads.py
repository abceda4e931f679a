"""Hostile and awkward uploads: each gives a sensible 28x28 input or one clear ImageError."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.data.uploads import preprocess_image
from explorer.errors import ImageError
from explorer.pictures.reading import MAX_UPLOAD_BYTES


def save(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def bar(size=(60, 80), background=240, ink=15, vertical=True) -> Image.Image:
    image = Image.new("L", size, background)
    w, h = size
    box = (w // 2 - 5, 8, w // 2 + 5, h - 8) if vertical else (8, h // 2 - 5, w - 8, h // 2 + 5)
    image.paste(ink, box)
    return image


def is_vertical_bar(x: torch.Tensor) -> bool:
    rows, cols = torch.nonzero(x[0] > 0.5, as_tuple=True)
    return x.shape == (1, 28, 28) and (rows.max() - rows.min()) > 3 * (cols.max() - cols.min())


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels in a few bytes (a decompression bomb's header)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


GOOD = {
    "palette PNG": lambda: save(bar().convert("P"), "PNG"),
    "16-bit grey PNG": lambda: save(Image.fromarray(np.asarray(bar(), dtype=np.uint16) * 257), "PNG"),
    "CMYK JPEG": lambda: save(bar().convert("CMYK"), "JPEG"),
    "RGB JPEG": lambda: save(bar().convert("RGB"), "JPEG", quality=90),
    "BMP": lambda: save(bar(), "BMP"),
    "WebP": lambda: save(bar(), "WEBP"),
    "animated GIF (first frame)": lambda: _gif(),
    "RGBA, transparent background": lambda: _rgba(),
    "light ink on dark": lambda: save(bar(background=20, ink=230), "PNG"),
    "photo: dark ink on textured paper": lambda: save(_photo(dark_ink=True), "JPEG", quality=85),
    "photo: light chalk on a dark board": lambda: save(_photo(dark_ink=False), "JPEG", quality=85),
}


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _gif() -> bytes:
    frames = [bar().convert("P"), bar(vertical=False).convert("P")]
    return save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _rgba() -> bytes:
    image = Image.new("RGBA", (60, 80), (0, 0, 0, 0))
    image.paste((20, 20, 20, 255), (25, 8, 35, 72))
    return save(image, "PNG")


def _photo(dark_ink: bool) -> Image.Image:
    rng = np.random.default_rng(0)
    h, w = 240, 180
    shade = np.linspace(200, 235, w)[None, :] + rng.normal(0, 6, (h, w))  # uneven light + grain
    ink = np.zeros((h, w), bool)
    ink[30:210, 80:100] = True
    grey = np.where(ink, 40 + rng.normal(0, 8, (h, w)), shade)
    if not dark_ink:
        grey = 255 - grey
    return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).convert("RGB")


@pytest.mark.parametrize("case", list(GOOD))
def test_usable_images_become_a_vertical_stroke(case):
    x = preprocess_image(GOOD[case]())
    assert is_vertical_bar(x), case
    assert x[0, 0, 0] == 0 and x.max() > 0.8, case  # light ink on black, as MNIST


def test_exif_rotation_is_applied():
    image = bar(vertical=False).convert("RGB")  # stored lying down ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with "rotate 90 degrees clockwise to display"
    assert is_vertical_bar(preprocess_image(save(image, "JPEG", exif=exif)))


BAD = {
    "empty file": (lambda: b"", "empty"),
    "random bytes named .png": (lambda: np.random.default_rng(0).bytes(3000), "accepted format"),
    "truncated PNG": (lambda: _half(save(_photo(True), "PNG")), "truncated or damaged"),
    "truncated JPEG": (lambda: _half(save(_photo(True), "JPEG")), "truncated or damaged"),
    "decompression bomb": (lambda: png_header_only(40_000, 40_000), "decompression bomb"),
    "bomb under PIL's own limit": (lambda: png_header_only(8_000, 8_000), "is 8000x8000 pixels"),
    "all white": (lambda: save(Image.new("L", (50, 50), 255), "PNG"), "blank"),
    "all black": (lambda: save(Image.new("L", (50, 50), 0), "PNG"), "blank"),
    "SVG": (
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        "PNG, JPEG, BMP, GIF, WEBP",
    ),
    "PDF": (lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "PNG, JPEG, BMP, GIF, WEBP"),
    "over the size limit": (lambda: b"\x89PNG" + b"\x00" * (MAX_UPLOAD_BYTES + 1), "MB"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_unusable_uploads_give_one_clear_message(case):
    make, expected = BAD[case]
    with pytest.raises(ImageError) as err:
        preprocess_image(make())
    message = str(err.value)
    assert expected in message, (case, message)
    assert "\n" not in message and "Traceback" not in message
