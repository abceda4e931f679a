"""The pages about single images: Reconstruct (test images and uploads), Draw, Interpolate."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from explorer.pictures.reading import MAX_UPLOADS
from tests.apptest import DRAW, INTERPOLATE, RECONSTRUCT, captions, charts, page, png, spec

pytestmark = pytest.mark.integration


def gallery(at) -> list[tuple[int, str, float]]:
    """(test index, label, ELBO) under each test image of the Reconstruct page."""
    out = []
    for caption in captions(at):
        if caption.startswith("#"):
            index, label, elbo = caption.split(" · ")
            out.append((int(index[1:]), label, float(elbo.split()[1])))
    return out


def reports(at) -> list[str]:
    """The report under each readable upload."""
    return [m.value for m in at.markdown if m.value.startswith("ELBO **")]


def test_reconstruct_modes(shipped, mnist_test):
    at = page(RECONSTRUCT).run()
    assert not at.exception
    at.sidebar.radio[0].set_value("worst ELBO").run()
    shown = gallery(at)
    assert len(shown) == 8 and [e for *_, e in shown] == sorted(e for *_, e in shown)  # each under its image
    at.sidebar.radio[0].set_value("by label").run()
    at.sidebar.selectbox[1].select(3).run()
    assert {label for _, label, _ in gallery(at)} == {"3"}
    assert at.get("download_button")


def test_an_upload_added_twice_is_shown_once(shipped, mnist_test):
    digit = png(Image.fromarray(mnist_test.images[0, 0].numpy()))
    at = page(RECONSTRUCT).run()
    at.file_uploader[0].set_value([("a.png", digit, "image/png"), ("b.png", digit, "image/png")]).run()
    assert not at.exception
    assert len(reports(at)) == 1
    assert any("b.png is the same file as a.png" in i.value for i in at.info)


def test_uploads_good_and_bad(shipped):
    digit = Image.new("L", (80, 100), 255)
    digit.paste(0, (35, 10, 45, 90))
    at = page(RECONSTRUCT).run()
    at.file_uploader[0].set_value(
        [
            ("one.png", png(digit), "image/png"),
            ("blank.png", png(Image.new("L", (30, 30), 255)), "image/png"),
            ("junk.png", b"not an image at all", "image/png"),
        ]
    ).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("blank.png: the image is blank") for e in errors)
    assert any(e.startswith("junk.png: ") and "accepted format" in e for e in errors)
    assert any(c.startswith("one.png: input") for c in captions(at))
    assert len(reports(at)) == 1
    assert len(charts(at)) == 1  # one map, with the readable upload on it


def test_upload_count_is_limited(shipped):
    files = []
    for i in range(MAX_UPLOADS + 3):  # bars of different widths: different files
        digit = Image.new("L", (40, 40), 255)
        digit.paste(0, (15, 5, 20 + i % 10, 35 - i // 10))
        files.append((f"d{i}.png", png(digit), "image/png"))
    at = page(RECONSTRUCT).run()
    at.file_uploader[0].set_value(files).run()
    assert not at.exception
    assert f"only the first {MAX_UPLOADS} are shown" in at.warning[0].value
    assert "Not shown: d20.png, d21.png, d22.png" in at.warning[0].value
    shown = [c for c in captions(at) if c.startswith("d")]
    assert len(shown) == MAX_UPLOADS and shown[0].startswith("d0.png:")


def test_uploads_get_a_percentile_and_strangers_a_warning(mnist_test, monkeypatch, tmp_path):
    """On the shipped mnist-z2: a real test digit is ordinary, a plus sign is a stranger; both get
    their ELBO percentile and strangeness, with the sentence that says what strangeness is. (The
    handed letter A, once the example here, is no longer flagged by mnist-z2: test_strangers.py.)"""
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    digit = Image.fromarray(mnist_test.images[0, 0].numpy())
    sign = (Path(__file__).parent / "cases" / "plus-sign.png").read_bytes()
    at = page(RECONSTRUCT).run()
    at.file_uploader[0].set_value(
        [("digit.png", png(digit), "image/png"), ("sign.png", sign, "image/png")]
    ).run()
    assert not at.exception
    shown = reports(at)
    assert len(shown) == 2
    percentiles = [float(r.split("higher than ")[1].split("%")[0]) for r in shown]
    assert 5 < percentiles[0] <= 100 and 0 <= percentiles[1] < 10, percentiles  # "nan" fails both
    assert "typical enough" in shown[0] and "**a stranger**" in shown[1], shown
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "does not look like the training data" in warnings[0]
    said = [c.value for c in at.caption if c.value.startswith("Strangeness says")]
    assert len(said) == 1 and "outlier exposure" in said[0].lower()  # once, not under each upload
    names = {t.get("name") for t in spec(charts(at)[0])["data"]}
    assert {"digit.png", "sign.png"} <= names


def test_draw_page_waits_for_a_drawing(shipped):
    at = page(DRAW).run()
    assert not at.exception and not at.error
    assert "Draw on the black square" in at.info[0].value
    assert len(charts(at)) == 1  # the map the drawing will be placed on
    assert "drawing" not in at.session_state


def strips(at) -> list[str]:
    return [m.value for m in at.markdown if "path," in m.value]


def test_interpolate_between_test_images_and_a_drawing(shipped, mnist_test):
    at = page(INTERPOLATE).run()
    assert not at.exception
    assert [r.options for r in at.radio] == [["test image", "upload"]] * 2  # no drawing yet
    assert strips(at) == ["**Linear** path, 10 steps", "**Spherical** path, 10 steps"]
    downloads = [b.proto.label for b in at.get("download_button")]
    assert downloads == [
        "PNG strip (linear)",
        "Animated GIF (linear)",
        "PNG strip (spherical)",
        "Animated GIF (spherical)",
    ]
    figure = spec(charts(at)[0])
    paths = [t for t in figure["data"] if t.get("name", "").endswith("path")]
    assert [len(t["x"]) for t in paths] == [10, 10]
    ends = {a["text"]: (a["x"], a["y"]) for a in figure["layout"]["annotations"] if a["text"] in ("A", "B")}
    assert ends["A"] == pytest.approx((paths[0]["x"][0], paths[0]["y"][0]), abs=1e-5)  # A labels the start
    # both paths start and end at the two images' posterior means
    assert paths[0]["x"][0] == pytest.approx(paths[1]["x"][0], abs=1e-5)
    assert paths[0]["y"][-1] == pytest.approx(paths[1]["y"][-1], abs=1e-5)
    at.sidebar.multiselect[0].set_value(["spherical"]).run()
    at.sidebar.slider[0].set_value(5).run()
    assert strips(at) == ["**Spherical** path, 5 steps"]
    # a drawing made on the Draw page becomes a third source
    drawing = torch.zeros(1, 28, 28)
    drawing[0, 4:24, 13:15] = 1.0
    at.session_state["drawing"] = drawing
    at.run()
    assert at.radio[0].options == ["test image", "upload", "drawing"]
    at.radio[0].set_value("drawing").run()
    assert not at.exception
    assert "your drawing" in captions(at)
    # an upload as the other end; a bad one gets a message and no strip
    at.radio[1].set_value("upload").run()
    assert "Upload an image for this end." in [i.value for i in at.info]
    at.file_uploader[0].set_value(("junk.png", b"not an image", "image/png")).run()
    assert not at.exception and at.error[0].value.startswith("junk.png: ")
    assert not strips(at)
    digit = Image.fromarray(mnist_test.images[3, 0].numpy())
    at.file_uploader[0].set_value(("three.png", png(digit), "image/png")).run()
    assert not at.exception and not at.error
    assert "three.png" in captions(at)
    assert strips(at) == ["**Spherical** path, 5 steps"]


def test_an_interpolation_end_switched_back_to_a_test_image_keeps_its_number_quietly(shipped):
    """End B to an upload and back: its test index comes back without Streamlit's warning about
    a widget given a default and a value set through Session State (the server log had it)."""
    import logging

    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    policies = logging.getLogger("streamlit.elements.lib.policies")
    policies.addHandler(handler)
    try:
        at = page(INTERPOLATE).run()
        at.number_input(key="idx-B").set_value(7).run()
        at.radio(key="src-B").set_value("upload").run()
        at.radio(key="src-B").set_value("test image").run()
        at.number_input(key="idx-B").set_value(5).run()
    finally:
        policies.removeHandler(handler)
    assert not at.exception and at.number_input(key="idx-B").value == 5
    assert not [m for m in said if "Session State" in m], said


@pytest.mark.parametrize(("model", "warned"), [("fashion-mnist-z2", True), ("mnist-z2", False)])
def test_draw_says_up_front_that_drawings_of_photographed_items_are_flagged(model, warned):
    """A newcomer drew trousers on fashion-mnist-z2 and got "a stranger" with no word before: a
    drawing is flat where the dataset's images are photographs, and the page says so first (the
    models as shipped)."""
    at = page(DRAW)
    at.session_state["model"] = model
    at.run()
    assert not at.exception
    said = any("the stranger check flags most drawings for that alone" in c.value for c in at.caption)
    assert said == warned
