"""Maps with your images in a real browser (Debian's chromium driven by Playwright): an upload
whose code lies past the test set's dots leaves the axes on the dots and shows at the edge as a
triangle pointing outward (Reconstruct's shared map, an end of Interpolate's path). Screenshots
land in tests/artifacts/ (maps-*.png)."""

import os

import pytest

from tests.browser import ARTIFACTS, CHROMIUM, no_exception, upload_to_reconstruct, wait_idle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"
    ),
]

MARKERS = """(chart) => {
  // The plot area, the dots' extent (page pixels), and each upload marker: its symbol, its centre.
  const gd = document.querySelector(chart), box = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const px = (x, y) => [box.left + xa._offset + xa.l2p(x), box.top + ya._offset + ya.l2p(y)];
  const dots = [], marks = [];
  for (const t of gd._fullData) {
    if (t.customdata) for (let i = 0; i < t.x.length; i++) dots.push(px(t.x[i], t.y[i]));
    else if (t.mode === 'markers')
      for (let i = 0; i < t.x.length; i++)
        marks.push({name: t.name, at: px(t.x[i], t.y[i]),
                    symbol: Array.isArray(t.marker.symbol) ? t.marker.symbol[i] : t.marker.symbol});
  }
  const xs = dots.map(p => p[0]), ys = dots.map(p => p[1]);
  return {plot: {x0: box.left + xa._offset, y0: box.top + ya._offset,
                 x1: box.left + xa._offset + xa._length, y1: box.top + ya._offset + ya._length},
          dots: {x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys)}, marks};
}"""


def _square(tmp_path):
    """A plain white square on black (another kind of image than any of the datasets')."""
    import numpy as np
    from PIL import Image

    a = np.zeros((28, 28), np.uint8)
    a[3:25, 3:25] = 255
    Image.fromarray(a).save(tmp_path / "square.png")
    b = np.zeros((28, 28), np.uint8)
    b[4:24, 10:18] = 200
    Image.fromarray(b).save(tmp_path / "bar.png")
    return [str(tmp_path / "bar.png"), str(tmp_path / "square.png")]


def _fills_the_plot(seen) -> None:
    """The dots span most of the plot area (the data is not a blob in a corner), and every upload
    marker is inside it."""
    plot, dots = seen["plot"], seen["dots"]
    share = max(
        (dots["x1"] - dots["x0"]) / (plot["x1"] - plot["x0"]),
        (dots["y1"] - dots["y0"]) / (plot["y1"] - plot["y0"]),
    )
    assert share > 0.85, seen
    for m in seen["marks"]:
        assert (
            plot["x0"] - 1 <= m["at"][0] <= plot["x1"] + 1 and plot["y0"] - 1 <= m["at"][1] <= plot["y1"] + 1
        ), m


@pytest.mark.parametrize("model", ["fashion-mnist-z2", "mnist-z2", "mnist-z20"])
def test_a_far_upload_leaves_the_maps_on_the_dots(browser, server, tmp_path, model):
    url, _ = server
    files = _square(tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    chart = upload_to_reconstruct(page, url, model, files, 2)
    no_exception(page)
    seen = page.evaluate(MARKERS, chart)
    key = page.locator("[data-testid=stCaptionContainer]", has_text="its number says which").inner_text()
    page.locator(chart).screenshot(path=str(ARTIFACTS / f"maps-reconstruct-{model}.png"))
    page.locator("[data-testid=stCaptionContainer]", has_text="its number says which").screenshot(
        path=str(ARTIFACTS / f"maps-reconstruct-key-{model}.png")
    )
    _fills_the_plot(seen)
    far = {m["name"]: m["symbol"] for m in seen["marks"]}
    if model == "fashion-mnist-z2":  # the square lies below every garment's code
        assert far["square.png"] == "triangle-down" and "off the map, beyond the bottom edge" in key, key

    page.goto(f"{url}/Interpolate?model={model}")
    wait_idle(page, timeout_ms=240_000)
    page.get_by_test_id("stRadio").nth(1).get_by_text("upload").click()
    wait_idle(page, timeout_ms=240_000)
    page.set_input_files("[data-testid=stFileUploaderDropzoneInput]", files[1])
    wait_idle(page, timeout_ms=240_000)
    chart = ".st-key-interp-map .js-plotly-plot"
    page.locator(chart).scroll_into_view_if_needed()
    page.wait_for_timeout(1500)
    no_exception(page)
    seen = page.evaluate(MARKERS, chart)
    page.locator(chart).screenshot(path=str(ARTIFACTS / f"maps-interpolate-{model}.png"))
    said = page.locator("[data-testid=stCaptionContainer]", has_text="The paths on the map").inner_text()
    page.close()
    _fills_the_plot(seen)
    if model == "fashion-mnist-z2":
        assert {m["symbol"] for m in seen["marks"]} == {"triangle-down"} and "B off the map" in said, said
