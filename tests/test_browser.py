"""What a person sees, in a real browser (Debian's chromium driven by Playwright): every page by
deep link on a fresh server, a click on the scatter, a slider, an upload, a live training run.
Screenshots of each page land in tests/artifacts/."""

import os
import time

import pytest
from PIL import Image

from tests.apptest import wait_for
from tests.browser import (
    ARTIFACTS,
    CHROMIUM,
    images_loaded,
    main_text_has,
    no_exception,
    open_page,
    shot,
    wait_idle,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"
    ),
]


SCATTER_POINTS = """
  // [page x, page y, test-set index] of every point of the first scatter on the page
  const gd = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const pts = [];
  for (const t of gd._fullData) {
    if (!t.customdata) continue;
    for (let i = 0; i < t.x.length; i++)
      pts.push([box.left + xa._offset + xa.l2p(t.x[i]), box.top + ya._offset + ya.l2p(t.y[i]),
                t.customdata[i]]);
  }
"""

PLOT_POINT = (
    """() => {
  // Pixel position of a scatter point that no other point overlaps, and its test-set index."""
    + SCATTER_POINTS
    + """
  for (const p of pts.slice(0, 400)) {
    const near = pts.filter(q => Math.hypot(q[0] - p[0], q[1] - p[1]) < 8).length;
    if (near === 1) return p;
  }
  return pts[0];
}"""
)


def test_latent_space_deep_link_and_click(browser, server):
    url, _ = server
    page = open_page(browser, f"{url}/Latent_space")  # the first request to a fresh server
    no_exception(page)
    page.wait_for_selector(
        "[data-testid=stMain] .js-plotly-plot .scatterlayer, [data-testid=stMain] .js-plotly-plot canvas",
        timeout=30_000,
    )
    time.sleep(1)
    x, y, index = page.evaluate(PLOT_POINT)
    page.mouse.click(x, y)
    page.wait_for_selector("text=Test image #", timeout=30_000)
    wait_idle(page)
    main_text_has(page, f"Test image #{index}")
    page.wait_for_function(f"window.location.search.includes('point={index}')", timeout=10_000)  # shareable
    # Back and Forward follow the address (the view kept in the session wrote the click back over
    # Back's address, so Back did nothing)
    page.go_back(wait_until="commit")
    page.wait_for_selector("text=Test image #", state="detached", timeout=30_000)
    wait_idle(page)
    assert "point=" not in page.evaluate("window.location.search")
    page.go_forward(wait_until="commit")
    main_text_has(page, f"Test image #{index}")
    wait_idle(page)
    assert f"point={index}" in page.evaluate("window.location.search")
    log = (ARTIFACTS / f"server-{url.rsplit(':', 1)[1]}.log").read_text()  # nothing printed a stack
    assert "Stack (most recent call last)" not in log and "Traceback" not in log
    images_loaded(page, 1)
    shot(page, "latent_space")
    page.get_by_role("tab", name="Prior vs aggregate posterior").click()
    page.wait_for_selector("text=Prior mass in holes", timeout=30_000)
    page.wait_for_selector(
        ".st-key-prior-map .js-plotly-plot .heatmaplayer, .st-key-prior-map .js-plotly-plot image"
    )
    time.sleep(0.5)
    no_exception(page)
    shot(page, "prior_vs_posterior")
    page.close()


MAP_RANGES = """() => {
  const gd = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  return [...gd._fullLayout.xaxis.range, ...gd._fullLayout.yaxis.range].map(v => +v.toFixed(3));
}"""


def test_a_zoom_survives_the_density_contours_switched_on_and_off(browser, server):
    """The density toggle changes the map's figure, which Streamlit draws as a new chart: the zoom
    went back to the whole map (x [-2.85, 2.45] -> [-5.50, 5.09]). Kept now; a double-click (reset)
    forgets it."""
    url, _ = server
    page = open_page(browser, f"{url}/Latent_space?model=mnist-z2")
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot canvas", timeout=30_000)
    wait_idle(page)
    whole = page.evaluate(MAP_RANGES)
    page.locator("[data-testid=stMain] .js-plotly-plot").first.hover()
    page.locator('[data-testid=stMain] .modebar-btn[data-title="Zoom in"]').first.click()
    changed = f"(whole) => JSON.stringify(({MAP_RANGES})()) !== JSON.stringify(whole)"
    page.wait_for_function(changed, arg=whole, timeout=10_000)
    zoomed = page.evaluate(MAP_RANGES)
    density = page.locator("[data-testid=stSidebar]").get_by_text("Density contours", exact=True)
    for state in ("on", "off"):
        density.click()
        wait_idle(page)
        page.wait_for_selector(
            "[data-testid=stMain] .js-plotly-plot .contourlayer path",
            state="attached" if state == "on" else "detached", timeout=30_000,
        )  # fmt: skip
        page.wait_for_timeout(300)
        assert page.evaluate(MAP_RANGES) == zoomed, state
    box = page.locator("[data-testid=stMain] .js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.dblclick(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # reset the axes
    page.wait_for_timeout(500)
    assert page.evaluate(MAP_RANGES) == whole
    density.click()
    wait_idle(page)
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot .contourlayer path", timeout=30_000)
    page.wait_for_timeout(300)
    assert page.evaluate(MAP_RANGES) == whole  # the reset is kept too
    no_exception(page)
    page.close()


DENSEST_POINT = (
    """() => {
  // Pixel position of the scatter point with the most neighbours within 6 pixels."""
    + SCATTER_POINTS
    + """
  let best = pts[0], most = 0;
  for (const p of pts.slice(0, 1500)) {
    const near = pts.filter(q => Math.hypot(q[0] - p[0], q[1] - p[1]) < 6).length;
    if (near > most) { most = near; best = p; }
  }
  return [best[0], best[1], most];
}"""
)

STAR_PIXEL = """([selector, name]) => {
  // Where the star of the clicked image's posterior mean is painted, in page pixels.
  const gd = document.querySelector(selector);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const t = gd._fullData.find(t => t.name === name && t.mode.includes('markers'));
  return [box.left + xa._offset + xa.l2p(t.x[0]), box.top + ya._offset + ya.l2p(t.y[0])];
}"""

DOT_COLOUR = """(index) => {
  // The class colour of test image ``index``'s dot on the first map.
  const gd = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  return gd._fullData.find(t => t.customdata && t.customdata.includes(index)).marker.color;
}"""


def test_the_clicked_point_stands_out_over_a_dense_cluster(browser, server, tmp_path):
    """A test image clicked in the thickest part of the map stands out there (its dot selected:
    enlarged, at full colour, the rest faded), and its star on the close-up beside the map is
    painted over the dots (the close-up is SVG throughout: SVG overlays sat below plotly's WebGL
    layer, and a WebGL close-up made anew at every click cost a WebGL context)."""
    import numpy as np

    url, _ = server
    page = open_page(browser, f"{url}/Latent_space")
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot canvas", timeout=30_000)
    time.sleep(1)
    x, y, neighbours = page.evaluate(DENSEST_POINT)
    assert neighbours >= 10  # a dense cluster indeed
    page.mouse.click(x, y)
    page.wait_for_selector("text=Test image #", timeout=30_000)
    # said where it is: on a phone the panel is under the map, off the screen
    toast = "[data-testid=stToast] >> text=beside the map (under it on a phone)"
    page.wait_for_selector(toast, timeout=30_000)
    wait_idle(page)
    page.wait_for_selector(".st-key-close-up .js-plotly-plot .scatterlayer .points path", timeout=30_000)
    page.mouse.move(5, 5)  # no hover label over the dot
    time.sleep(1.5)
    index = int(page.inner_text("[data-testid=stMain]").split("Test image #")[1].split()[0])
    page.screenshot(path=str(tmp_path / "map.png"))
    pixels = np.asarray(Image.open(tmp_path / "map.png").convert("RGB"), dtype=float)
    colour = page.evaluate(DOT_COLOUR, index).lstrip("#")
    rgb = np.array([int(colour[i : i + 2], 16) for i in (0, 2, 4)], dtype=float)
    dot = pixels[int(round(y)) - 1 : int(round(y)) + 2, int(round(x)) - 1 : int(round(x)) + 2]
    assert np.abs(dot.mean(axis=(0, 1)) - rgb).max() < 45, (dot.mean(axis=(0, 1)), rgb)
    sx, sy = page.evaluate(STAR_PIXEL, [".st-key-close-up .js-plotly-plot", f"#{index}"])
    centre = pixels[int(round(sy)) - 1 : int(round(sy)) + 2, int(round(sx)) - 1 : int(round(sx)) + 2]
    assert centre.mean() < 60, centre.mean(axis=(0, 1))  # the black star, not a coloured dot
    page.close()


LIVE_STATE = "document.querySelector('.live-root').__live"


def test_manifold_slider_decodes_in_the_browser(browser, server):
    import numpy as np
    import torch

    from explorer.checkpoints import load_checkpoint

    url, _ = server
    page = open_page(browser, f"{url}/Manifold")
    no_exception(page)
    page.wait_for_selector(".st-key-grid .js-plotly-plot", timeout=30_000)  # the grid, z on its axes
    page.wait_for_selector(".live canvas.digit", timeout=30_000)
    version = page.evaluate(f"{LIVE_STATE}.version")
    slider = page.get_by_label("z1", exact=True)
    slider.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")  # what a person does: ten of the slider's steps
    page.wait_for_function(f"{LIVE_STATE}.version >= {version + 10}", timeout=10_000)
    z = page.evaluate(f"Array.from({LIVE_STATE}.z)")
    step = float(slider.get_attribute("step") or "nan")  # the slider's own step: its range / its stops
    assert z == pytest.approx([10 * step, 0.0]) and 0 < z[0] < 1
    pixels = page.evaluate(f"Array.from({LIVE_STATE}.image.data.filter((_, i) => i % 4 === 0))")
    with torch.no_grad():
        expected = load_checkpoint("mnist-z2").decode(torch.tensor([z])).mean.flatten().numpy() * 255
    assert np.abs(np.array(pixels) - expected).max() <= 1.0  # the browser decodes as PyTorch does
    shown = page.inner_text(".live").split("z1\n", 1)[1].split("\n", 1)[0]  # the slider's value, shown
    assert abs(float(shown) - z[0]) <= 0.005, shown  # to two decimals (JS rounds its own way)
    no_exception(page)
    shot(page, "manifold")
    page.close()


def test_reconstruct_upload(browser, server, tmp_path):
    url, _ = server
    digit = Image.new("L", (90, 120), 250)
    digit.paste(10, (40, 10, 52, 110))
    digit.save(tmp_path / "my-one.png")
    page = open_page(browser, f"{url}/Reconstruct")
    no_exception(page)
    page.set_input_files("[data-testid=stFileUploaderDropzoneInput]", str(tmp_path / "my-one.png"))
    page.wait_for_selector("text=my-one.png", timeout=30_000)
    page.wait_for_selector("text=higher than", timeout=30_000)
    page.wait_for_selector("text=Where your images lie", timeout=30_000)
    wait_idle(page)
    no_exception(page)
    images_loaded(page, 2)
    page.get_by_text("Where your images lie").scroll_into_view_if_needed()  # the upload and its map
    time.sleep(0.5)
    shot(page, "reconstruct")
    page.close()


def test_train_live_curve(browser, server):
    url, runs = server
    page = open_page(browser, f"{url}/Train")
    no_exception(page)

    def field(label):
        return page.get_by_label(label, exact=True)

    field("Hidden sizes").fill("32")
    field("Epochs").fill("100")  # far more than the test waits for: it must still be running at Stop
    field("Training images (0 = all)").fill("6000")
    field("Run name").fill("browser-run")
    field("Batch size M").fill("20")
    page.get_by_role("button", name="Start training").click()
    # while its process starts (PyTorch and the data loaded: seconds), the page says so
    page.wait_for_selector("text=Starting 'browser-run': its process is loading", timeout=30_000)
    curves = ".st-key-curves-browser-run .js-plotly-plot"
    # null-safe: a fragment rerun may swap the chart's element while we look
    count = f"(document.querySelector('{curves}')?.data?.[0]?.x?.length || 0)"
    first = page.wait_for_function(f"{count} || null", timeout=120_000).json_value()
    page.wait_for_function(f"{count} > {first}", timeout=120_000)
    main_text_has(page, "training")
    # the latent space forming: an animated scatter that gains a frame per epoch, live
    forming = ".st-key-forming-browser-run .js-plotly-plot"
    page.wait_for_function(
        f"(document.querySelector('{forming}')?._transitionData?._frames?.length || 0) >= 2", timeout=120_000
    )
    page.locator(f"{forming} .updatemenu-button").first.click()  # Play: plotly's own, in the page
    time.sleep(1)
    shot(page, "train")
    page.get_by_role("button", name="Stop (saves a checkpoint)").click()
    wait_for(runs / "browser-run", "stopped", seconds=60)
    page.close()


def test_home_page_shows_the_shipped_model(browser, server):
    url, _ = server
    page = open_page(browser, url)
    images_loaded(page, 1)
    no_exception(page)
    main_text_has(page, "VAE Explorer", "latent size", "reparameterisation")
    shot(page, "home")
    page.close()


def test_draw_a_digit(browser, server):
    url, _ = server
    page = open_page(browser, f"{url}/Draw")
    no_exception(page)
    canvas = page.locator(".st-key-canvas canvas").last  # fabric.js: the top canvas takes the strokes
    canvas.wait_for(timeout=30_000)
    box = canvas.bounding_box()
    x0, y0 = box["x"], box["y"]
    # a "7": the bar, then the stem, as two strokes; each stroke's rerun gives another ELBO
    elbo = (
        "() => (document.querySelector('[data-testid=stMain]').innerText.match(/ELBO -?[0-9.]+/) || [''])[0]"
    )
    shown = ""
    for stroke in ([(70, 60), (210, 60)], [(210, 60), (120, 230)]):
        page.mouse.move(x0 + stroke[0][0], y0 + stroke[0][1])
        page.mouse.down()
        for t in range(1, 21):
            fx = stroke[0][0] + (stroke[1][0] - stroke[0][0]) * t / 20
            fy = stroke[0][1] + (stroke[1][1] - stroke[0][1]) * t / 20
            page.mouse.move(x0 + fx, y0 + fy)
        page.mouse.up()
        page.wait_for_function(f"({elbo})() !== '' && ({elbo})() !== {shown!r}", timeout=30_000)
        wait_idle(page)
        shown = page.evaluate(elbo)
    no_exception(page)
    main_text_has(page, "ELBO", "q(z|x): mean")
    images_loaded(page, 1)
    page.wait_for_selector(".st-key-draw-map .js-plotly-plot")
    shot(page, "draw")
    # the drawing is now an end of an interpolation
    page.locator("[data-testid=stSidebar]").get_by_role("link", name="Interpolate").click()  # same session
    page.wait_for_selector("text=Pick two images", timeout=30_000)
    wait_idle(page)
    page.get_by_text("drawing", exact=True).first.click()
    # the rerun that the choice starts may not have begun yet: wait for what it shows
    page.wait_for_selector("text=your drawing", timeout=30_000)
    wait_idle(page)
    page.wait_for_selector("text=Spherical", timeout=30_000)
    images_loaded(page, 4)
    no_exception(page)
    main_text_has(page, "your drawing")
    shot(page, "interpolate")
    page.close()


def test_the_shipped_colour_model_on_every_exploring_page(browser, server, tmp_path):
    """shapes-conv-bce-z8, chosen in the sidebar and kept while moving between pages: colour
    samples at home, server-side sliders on Manifold, a colour upload."""
    from explorer.data.shapes import draw_sprite

    url, _ = server
    page = open_page(browser, url)
    page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").first.click()
    page.get_by_role("option", name="shapes-conv-bce-z8").click()
    page.wait_for_selector("text=Model: shapes-conv-bce-z8", timeout=30_000)
    wait_idle(page)
    images_loaded(page, 1)
    no_exception(page)
    shot(page, "colour_home")
    page.locator("[data-testid=stSidebar] a", has_text="Manifold").click()
    page.wait_for_selector("text=Decode any point", timeout=60_000)
    wait_idle(page)
    assert page.get_by_label("Model", exact=True).input_value() == "shapes-conv-bce-z8"  # kept
    before = page.locator("[data-testid=stImage] img").last.get_attribute("src")
    slider = page.locator("[data-testid=stSlider]", has_text="z").last.get_by_role("slider")
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"document.querySelectorAll('[data-testid=stImage] img')[document.querySelectorAll("
        f"'[data-testid=stImage] img').length - 1].src !== {before!r}",
        timeout=30_000,
    )
    wait_idle(page)
    no_exception(page)
    shot(page, "colour_manifold")
    sprite = Image.fromarray(draw_sprite(2, 0.3, 15.0, 0.5, 0.55, 0.3).transpose(1, 2, 0)).resize((128, 128))
    sprite.save(tmp_path / "heart.png")
    page.locator("[data-testid=stSidebar] a", has_text="Reconstruct").click()
    page.wait_for_selector("[data-testid=stFileUploaderDropzoneInput]", state="attached", timeout=60_000)
    page.set_input_files("[data-testid=stFileUploaderDropzoneInput]", str(tmp_path / "heart.png"))
    page.wait_for_selector("text=higher than", timeout=60_000)
    wait_idle(page)
    no_exception(page)
    images_loaded(page, 2)
    shot(page, "colour_reconstruct")
    page.close()


def test_start_from_a_shipped_model_fills_the_form_in_the_browser(browser, server):
    """The form's fields show the chosen model's architecture and recipe (a keyed widget would
    keep showing its old value if only its default changed)."""
    from explorer.checkpoints import read_config

    url, _ = server
    page = open_page(browser, f"{url}/Train")
    page.locator("[data-testid=stSelectbox]", has_text="Start from").click()
    page.get_by_role("option", name="mnist-z20").click()
    page.wait_for_selector("text=Starting from the weights of", timeout=30_000)
    wait_idle(page)
    saved = read_config("mnist-z20")
    assert page.get_by_label("Latent size", exact=True).input_value() == "20"
    assert page.get_by_label("Hidden sizes", exact=True).input_value() == "512,512"
    assert float(page.get_by_label("Learning rate", exact=True).input_value()) == saved["train"]["lr"]
    assert page.get_by_label("Samples L", exact=True).input_value() == str(saved["train"]["samples"])
    assert saved["train"]["objective"] == "iwae"  # not the form's default: the field must change
    assert page.get_by_label("Objective", exact=True).input_value().startswith("IWAE bound")
    no_exception(page)
    page.close()


def test_an_autoencoder_beside_the_vae(browser, server):
    """mnist-ae-z2 beside mnist-z2 on the Latent space and Manifold pages: two scatters with the
    prior's circles, two grids over the same range, the same draws through both decoders."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1300})  # the maps and the samples
    page.goto(f"{url}/Latent_space")
    wait_idle(page)
    page.get_by_role("combobox", name="Beside it").click()
    page.get_by_role("option", name="mnist-ae-z2").click()
    page.wait_for_selector("text=Beside mnist-ae-z2", timeout=60_000)
    wait_idle(page)
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').length >= 2", timeout=30_000
    )
    images_loaded(page, 2)
    no_exception(page)
    main_text_has(page, "mnist-z2: VAE", "mnist-ae-z2: autoencoder")
    shot(page, "beside_latent")
    page.locator("[data-testid=stSidebar] a", has_text="Manifold").click()
    page.wait_for_selector("text=Both grids cover z", timeout=60_000)
    wait_idle(page)
    no_exception(page)
    assert page.get_by_role("combobox", name="Beside it").input_value() == "mnist-ae-z2"  # kept
    page.locator("text=Both grids cover z").scroll_into_view_if_needed()
    shot(page, "beside_manifold")
    page.close()
