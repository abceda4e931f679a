"""What a newcomer meets first, in a real browser (Debian's chromium driven by Playwright): a map
that holds still when clicked, every page readable on a phone, uploads that cannot be mistaken
for the data. Screenshots land in tests/artifacts/ (newcomer-*.png)."""

import os
import time

import pytest

from tests.browser import CHROMIUM, no_exception, open_page, shot, wait_idle
from tests.test_browser import PLOT_POINT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"
    ),
]

PLOT_FRAME = """(selector) => {
  // The plot area of a chart (page pixels) and its axis ranges.
  const gd = document.querySelector(selector);
  const s = gd._fullLayout._size, box = gd.getBoundingClientRect();
  return {left: box.left + s.l, top: box.top + s.t, width: s.w, height: s.h,
          x: gd._fullLayout.xaxis.range.slice(), y: gd._fullLayout.yaxis.range.slice(),
          xdomain: gd._fullLayout.xaxis.domain.slice(), ydomain: gd._fullLayout.yaxis.domain.slice()};
}"""


@pytest.mark.parametrize("model", ["mnist-z2", "fashion-mnist-z2"])
def test_the_latent_map_holds_still_when_clicked(browser, server, model):
    """A click draws the clicked image's star and ellipses on the map; the plot area and the axes
    stay where they were, so the next click lands on the dot under the pointer."""
    url, _ = server
    page = open_page(browser, f"{url}/Latent_space?model={model}")
    chart = ".st-key-scatter .js-plotly-plot"
    page.wait_for_selector(f"{chart} canvas", timeout=60_000)
    time.sleep(1)
    before = page.evaluate(PLOT_FRAME, chart)
    x, y, index = page.evaluate(PLOT_POINT)
    page.mouse.click(x, y)
    page.wait_for_selector(f"text=Test image #{index}", timeout=60_000)
    wait_idle(page)
    page.wait_for_function(
        f"document.querySelector('{chart}')._fullData.some(t => t.name && t.name.startsWith('#{index}'))",
        timeout=30_000,
    )
    time.sleep(1)
    after = page.evaluate(PLOT_FRAME, chart)
    no_exception(page)
    shot(page, f"newcomer-clicked-{model}")
    for k in ("left", "top", "width", "height"):
        assert after[k] == pytest.approx(before[k], abs=1), (k, before, after)
    for k in ("x", "y", "xdomain", "ydomain"):
        assert after[k] == pytest.approx(before[k], rel=1e-6), (k, before, after)
    page.close()
