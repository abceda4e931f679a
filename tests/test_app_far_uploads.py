"""Uploads whose code lies past the test set's dots (Reconstruct's shared map, an end of
Interpolate's path): the map's axes stay the data's, and the upload is drawn at the edge, a
triangle pointing outward, its true place said under the map. On the shipped fashion-mnist-z2, a
plain white square lands below every test image's code (y about -4.5 where the dots end near -3.7)."""

import numpy as np
import pytest
from PIL import Image

from tests.apptest import INTERPOLATE, RECONSTRUCT, charts, page, png, spec

pytestmark = pytest.mark.integration

MODEL = "fashion-mnist-z2"


def square() -> bytes:
    """A plain white square on black: an image of another kind than any garment."""
    a = np.zeros((28, 28), np.uint8)
    a[3:25, 3:25] = 255
    return png(Image.fromarray(a))


def axes(figure: dict) -> tuple[list[float], list[float]]:
    return figure["layout"]["xaxis"]["range"], figure["layout"]["yaxis"]["range"]


def inside(x: float, y: float, figure: dict) -> bool:
    (x0, x1), (y0, y1) = axes(figure)
    return x0 <= x <= x1 and y0 <= y <= y1


def test_a_far_upload_keeps_reconstructs_map_on_the_data():
    at = page(RECONSTRUCT)
    at.query_params["model"] = MODEL
    at.run()
    digit_like = np.zeros((28, 28), np.uint8)
    digit_like[4:24, 10:18] = 200  # a narrow bar: a code among the dots
    at.file_uploader[0].set_value(
        [("bar.png", png(Image.fromarray(digit_like)), "image/png"), ("square.png", square(), "image/png")]
    ).run()
    assert not at.exception
    figure = spec(charts(at)[0])
    data = [t for t in figure["data"] if t.get("legendgroup") is None and t.get("mode") == "markers"]
    dots = np.array([[x, y] for t in data if "customdata" in t for x, y in zip(t["x"], t["y"])])
    lo, hi = dots.min(0), dots.max(0)
    (x0, x1), (y0, y1) = axes(figure)
    span = hi - lo  # the axes hold the dots with their 5% margin, nothing more (a far upload widened them)
    assert x0 == pytest.approx(lo[0] - 0.05 * span[0], rel=1e-3)
    assert y0 == pytest.approx(lo[1] - 0.05 * span[1], rel=1e-3)
    assert x1 == pytest.approx(hi[0] + 0.05 * span[0], rel=1e-3)
    stars = {t["name"]: t for t in figure["data"] if t.get("name") in ("bar.png", "square.png")}
    assert stars["bar.png"]["marker"]["symbol"] == "star"
    far = stars["square.png"]
    assert far["marker"]["symbol"] == "triangle-down"  # at the bottom edge, pointing out of the map
    assert inside(far["x"][0], far["y"][0], figure) and far["y"][0] < y0 + 0.05 * (y1 - y0)
    assert "off the map" in far["hovertext"][0] and "off the map" not in stars["bar.png"]["hovertext"][0]
    numbers = {a["text"] for a in figure["layout"]["annotations"]}
    assert numbers == {"1", "2"}
    key = next(c.value for c in at.caption if "its number says which" in c.value)
    assert "**2** square.png (magenta; off the map, beyond the bottom edge, at (" in key, key
    assert "**1** bar.png (black)" in key


def test_a_far_end_keeps_interpolates_map_on_the_data():
    at = page(INTERPOLATE)
    at.query_params["model"] = MODEL
    at.run()
    before = axes(spec(charts(at)[0]))
    at.radio(key="src-B").set_value("upload").run()
    at.file_uploader[0].set_value(("square.png", square(), "image/png")).run()
    assert not at.exception and not at.error
    figure = spec(charts(at)[0])
    assert axes(figure) == before  # the axes of the map between two test images
    paths = [t for t in figure["data"] if t.get("name", "").endswith("path")]
    assert not inside(paths[0]["x"][-1], paths[0]["y"][-1], figure)  # B lies past the axes ...
    ends = {a["text"]: (a["x"], a["y"]) for a in figure["layout"]["annotations"]}
    assert inside(*ends["B"], figure) and inside(*ends["A"], figure)  # ... and is named at the edge
    edge = [t for t in figure["data"] if t.get("name") == "B"]
    assert edge and edge[0]["marker"]["symbol"].startswith("triangle-")
    said = next(c.value for c in at.caption if c.value.startswith("The paths on the map"))
    assert "B off the map, beyond the bottom edge, at (" in said, said
