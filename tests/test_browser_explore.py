"""The exploring features in a real browser: a box selection dragged on the Latent space scatter
becomes a gallery, a clicked image's neighbours, the Traversals page, and a shared address."""

import os

import pytest

from tests.browser import CHROMIUM, images_loaded, main_text_has, no_exception, shot, wait_idle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"
    ),
]

PLOT_BOX = """() => {
  // The first scatter's plotting area in page pixels: [left, top, width, height]
  const gd = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  return [box.left + xa._offset, box.top + ya._offset, xa._length, ya._length];
}"""


def test_a_box_dragged_on_the_scatter_selects_a_gallery(browser, server):
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(f"{url}/Latent_space?model=mnist-z2")
    wait_idle(page)
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=60_000)
    left, top, width, height = page.evaluate(PLOT_BOX)
    page.mouse.move(left + width / 2, top + height / 2)
    page.locator('.modebar-btn[data-title="Box Select"]').first.click()
    page.mouse.move(left + width * 0.45, top + height * 0.45)
    page.mouse.down()
    page.mouse.move(left + width * 0.55, top + height * 0.55, steps=8)
    page.mouse.up()
    page.wait_for_selector("text=Selection:", timeout=60_000)
    wait_idle(page)
    no_exception(page)
    main_text_has(page, "test images", "By label:", "Mean ELBO")
    assert page.get_by_role("button", name="Codes of the selection (CSV)").count() == 1
    page.locator("text=Selection:").scroll_into_view_if_needed()
    shot(page, "selection")
    # The whole test set's codes are written when their button is pressed (not on every view).
    page.get_by_text("Download the codes of the whole test set").click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Codes of the test set (CSV)").click()
    rows = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert download.value.suggested_filename == "mnist-z2-mnist-test-codes.csv"  # the model named
    assert rows[0] == "index,label,z1,z2" and len(rows) == 10_001 and rows[8].startswith("7,")
    no_exception(page)
    page.close()


def test_a_shared_link_opens_the_clicked_image_with_its_neighbours(browser, server):
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    page.goto(f"{url}/Latent_space?model=mnist-z20&point=7")
    page.wait_for_selector("text=Test image #7", timeout=60_000)
    page.wait_for_selector("text=Nearest test images", timeout=60_000)
    wait_idle(page)
    images_loaded(page, 3)
    no_exception(page)
    assert "model=mnist-z20" in page.url and "point=7" in page.url
    shot(page, "neighbours")
    page.goto(f"{url}/Traversals?model=shapes-conv-bce-z8")
    page.wait_for_selector("text=follows", timeout=60_000)
    wait_idle(page)
    images_loaded(page, 8)
    no_exception(page)
    shot(page, "traversals")
    page.close()
