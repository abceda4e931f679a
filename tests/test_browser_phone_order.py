"""Two pages on a phone (390 x 844) in a real browser: the Train form reads top to bottom in the
order a person fills it (its four columns, stacked, read the first column down, then the second),
and the Manifold page's decoded image is on the first screen, above its sliders (it lay below the
grid and eight sliders). Screenshots land in tests/artifacts/ (phone-*.png)."""

import os

import pytest

from tests.browser import ARTIFACTS, CHROMIUM, no_exception, wait_idle
from tests.test_browser_newcomer import long_shot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"
    ),
]

PHONE = {"width": 390, "height": 844}
LABELS = """() => Array.from(Array.from(document.querySelectorAll('[data-testid=stForm]'))
  .find(f => f.innerText.includes('Start training')).querySelectorAll('[data-testid=stWidgetLabel]'))
  .map(l => { const r = l.getBoundingClientRect();
              return {text: l.innerText.trim(), top: r.top, left: r.left}; })"""


# What a person fills in, in turn: the data, the model, how to train it, the run's name.
READING_ORDER = [
    "Dataset", "Training images (0 = all)", "DAE corruption", "DAE corruption level",
    "Latent size", "Hidden sizes", "Conv channels", "Activation", "Likelihood", "Initialisation",
    "Epochs", "Batch size M", "Optimiser", "Learning rate", "Objective", "Estimator", "Samples L",
    "Beta (KL weight)", "Weight decay", "Device", "Run name",
]  # fmt: skip


def _phone(browser):
    return browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def test_the_train_form_reads_in_order_on_a_phone(browser, server):
    url, _ = server
    page = _phone(browser)
    page.goto(f"{url}/Train")
    wait_idle(page, timeout_ms=240_000)
    no_exception(page)
    seen = page.evaluate(LABELS)
    long_shot(page, "phone-train")
    page.close()
    wanted = READING_ORDER
    top = {s["text"]: s["top"] for s in seen}
    shown = [w for w in wanted if w in top]
    assert len(shown) == len(wanted), (wanted, list(top))
    assert sorted(shown, key=lambda w: top[w]) == shown, sorted(top, key=top.get)  # one under the next
    lefts = [s["left"] for s in seen]
    assert max(lefts) - min(lefts) < 30, seen  # one column: nothing side by side at 390 px


@pytest.mark.parametrize("model", ["mnist-z2", "fashion-mnist-z2", "mnist-z20"])
def test_manifolds_decoded_image_is_on_a_phones_first_screen(browser, server, model):
    url, _ = server
    page = _phone(browser)
    page.goto(f"{url}/Manifold?model={model}")
    wait_idle(page, timeout_ms=240_000)
    digit = page.locator(".live canvas.digit")
    digit.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # the decoder lays itself out
    no_exception(page)
    page.screenshot(path=str(ARTIFACTS / f"phone-manifold-{model}.png"))
    image = digit.bounding_box()
    first_slider = page.locator(".live input[type=range]").first.bounding_box()
    grid = page.locator(".st-key-grid").bounding_box()
    # a slider dragged further down leaves the image in sight (it stays at the top of the screen)
    page.locator(".live input[type=range]").last.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"phone-manifold-{model}-scrolled.png"))
    later = digit.bounding_box()
    page.close()
    assert image["y"] + image["height"] <= PHONE["height"], image  # on the first screen, whole
    assert image["y"] + image["height"] <= first_slider["y"], (image, first_slider)  # above the sliders
    assert grid is None or image["y"] < grid["y"], (image, grid)  # above the grid
    assert 40 <= later["y"] and later["y"] + later["height"] <= PHONE["height"], later  # under the header


def test_reconstructs_test_images_keep_four_to_a_row_on_a_phone(browser, server):
    """Stacked one per row, Reconstruct's eight test images put its upload box about 2,700 px
    down a phone's page: they keep four to a row there."""
    url, _ = server
    page = _phone(browser)
    page.goto(f"{url}/Reconstruct?model=mnist-z2")
    page.wait_for_selector(".st-key-gallery img", timeout=240_000)
    wait_idle(page, timeout_ms=240_000)
    no_exception(page)
    boxes = page.evaluate(
        "() => Array.from(document.querySelectorAll('.st-key-gallery [data-testid=stColumn]'))"
        ".map(c => { const r = c.getBoundingClientRect(); return [Math.round(r.top), r.width]; })"
    )
    upload = page.locator("[data-testid=stFileUploader]").first.bounding_box()
    long_shot(page, "phone-reconstruct")
    page.close()
    assert len(boxes) == 8, boxes
    assert len({top for top, _ in boxes[:4]}) == 1 and boxes[4][0] > boxes[0][0], boxes  # 4 to a row
    assert all(width < 100 for _, width in boxes), boxes
    assert upload["y"] < 2000, upload  # (it was about 2,700 px down)


def test_a_toast_on_a_phone_opens_at_the_bottom_not_over_the_title(browser, server):
    """A click on the latent map says "Test image #N: ... (under it on a phone)" in a toast, which
    opened at the top of the screen, over the page's title."""
    from tests.test_browser import PLOT_POINT

    url, _ = server
    page = _phone(browser)
    page.goto(f"{url}/Latent_space?model=mnist-z2")
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot canvas", timeout=60_000)
    wait_idle(page)
    x, y, _ = page.evaluate(PLOT_POINT)
    page.mouse.click(x, y)
    toast = page.wait_for_selector("[data-testid=stToast]", timeout=30_000)
    page.wait_for_timeout(500)  # its entrance
    title = page.locator("h1").first.bounding_box()
    box = toast.bounding_box()
    below_title = box["y"] > title["y"] + title["height"]
    assert below_title and box["y"] + box["height"] <= PHONE["height"], (box, title)
    page.screenshot(path=str(ARTIFACTS / "phone-toast.png"))
    no_exception(page)
    page.close()
