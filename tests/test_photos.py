"""A picture given to a model of photographs or shapes keeps its own ground: one far lighter or
darker than the training images' (a pen drawing on white for shapes drawn on black) is said so,
on the pages and by ``reconstruct``, instead of a reconstruction that silently differs."""

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from explorer.pictures.photos import GROUND_FRAME, ground_levels, ground_note


def _shapes_like(n: int, ground: float, seed: int = 0) -> np.ndarray:
    """n colour pictures (n, 3, 32, 32): a bright square on a ground of level ``ground``."""
    rng = np.random.default_rng(seed)
    images = np.full((n, 3, 32, 32), ground, dtype=np.float32) + rng.uniform(0, 0.02, (n, 3, 32, 32))
    for k, (r, c) in enumerate(rng.integers(6, 18, (n, 2))):
        images[k, :, r : r + 10, c : c + 10] = rng.uniform(0.3, 1.0, (3, 1, 1))
    return np.clip(images, 0, 1)


def test_the_ground_is_read_on_the_outer_frame():
    picture = np.zeros((1, 3, 16, 16), dtype=np.float32)
    picture[..., GROUND_FRAME:-GROUND_FRAME, GROUND_FRAME:-GROUND_FRAME] = 1.0  # a subject filling the middle
    assert ground_levels(picture)[0] == 0.0
    picture[..., 0, :] = 1.0  # the top edge lit
    assert 0.0 < ground_levels(picture)[0] < 0.5


def test_a_light_ground_under_a_model_of_dark_grounds_is_said_and_a_dark_one_is_not():
    levels = ground_levels(_shapes_like(500, 0.0))
    drawing = np.ones((3, 32, 32), dtype=np.float32)
    drawing[:, 8:24, 15:17] = 0.0  # a dark stroke on white paper
    said = ground_note(drawing, levels, "shapes")
    assert said and "lighter than that of the shapes images" in said and "100% brightness" in said
    assert "inverted" in said
    assert ground_note(_shapes_like(1, 0.0, seed=9)[0], levels, "shapes") is None
    grey = ground_note(_shapes_like(1, 0.5, seed=3)[0], levels, "shapes")  # half-lit ground: still unlike
    assert grey and "lighter" in grey
    dark = ground_note(_shapes_like(1, 0.0, seed=4)[0], ground_levels(_shapes_like(500, 0.9)), "photos")
    assert dark and "darker than that of the photos images" in dark
    assert "(98 in 100 of them)" in said


def test_the_test_images_ground_is_said_as_what_a_few_of_them_can_carry():
    """Of one test image, the note said "the test images' at 48% to 48% (98 in 100 of them)"."""
    drawing = np.zeros((3, 32, 32), dtype=np.float32)  # black ground
    one = ground_note(drawing, ground_levels(_shapes_like(1, 0.5)), "tiny")
    assert one and "the one test image's at 5" in one and "to" not in one.split("brightness, ")[1][:30]
    assert "98 in 100" not in one
    grounds = np.concatenate([_shapes_like(1, g, seed=k) for k, g in enumerate((0.5, 0.6, 0.7, 0.8))])
    four = ground_note(drawing, ground_levels(grounds), "tiny")
    assert four and "the test images' at 5" in four and "(all 4 of them)" in four and "98 in 100" not in four


@pytest.fixture
def drawing_on_white(tmp_path):
    path = tmp_path / "circle-on-paper.png"
    im = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(im).ellipse((60, 60, 240, 240), outline="black", width=8)
    im.save(path)
    disc = tmp_path / "red-disc.png"
    im = Image.new("RGB", (300, 300), "black")
    ImageDraw.Draw(im).ellipse((60, 60, 240, 240), fill=(220, 30, 30))
    im.save(disc)
    return path, disc


@pytest.mark.integration
def test_reconstruct_says_a_drawing_on_white_is_unlike_the_shapes(drawing_on_white, capsys):
    from explorer.cli import main

    drawing, disc = drawing_on_white
    assert main(["reconstruct", "shapes-conv-z8", str(drawing), str(disc), "--json"]) == 0
    on_paper, on_black = json.loads(capsys.readouterr().out)
    assert len(on_paper["notes"]) == 1 and "ground is lighter" in on_paper["notes"][0]
    assert on_black["notes"] == []
    assert main(["reconstruct", "shapes-conv-z8", str(drawing)]) == 0
    assert "  note: This picture's ground is lighter" in capsys.readouterr().out


@pytest.mark.integration
def test_the_reconstruct_page_says_so_under_the_upload(drawing_on_white, tmp_path, monkeypatch):
    from tests.apptest import RECONSTRUCT, page

    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    drawing, disc = drawing_on_white
    at = page(RECONSTRUCT)
    at.query_params["model"] = "shapes-conv-z8"
    at.run()
    at.file_uploader[0].set_value([(p.name, p.read_bytes(), "image/png") for p in (drawing, disc)]).run()
    assert not at.exception and not at.error
    said = [i.value for i in at.info if "ground is lighter" in i.value]
    assert len(said) == 1  # the drawing's, not the disc's
