"""What a newcomer meets first, in a real browser (Debian's chromium driven by Playwright): a map
that holds still when clicked, every page readable on a phone, uploads that cannot be mistaken
for the data. Screenshots land in tests/artifacts/ (newcomer-*.png)."""

import os
import time

import pytest

from tests.browser import ARTIFACTS, CHROMIUM, no_exception, open_page, shot, upload_to_reconstruct, wait_idle
from tests.test_browser import SCATTER_POINTS

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


VISIBLE_POINT = (
    """(selector) => {
  // A dot inside the plot area (after a zoom, most are outside) that no other dot overlaps."""
    + SCATTER_POINTS.replace(
        "document.querySelector('[data-testid=stMain] .js-plotly-plot')", "document.querySelector(selector)"
    )
    + """
  const left = box.left + xa._offset, top = box.top + ya._offset;
  const inside = pts.filter(p => p[0] > left + 20 && p[0] < left + xa._length - 20
                              && p[1] > top + 20 && p[1] < top + ya._length - 20);
  for (const p of inside.slice(0, 400))
    if (inside.filter(q => Math.hypot(q[0] - p[0], q[1] - p[1]) < 8).length === 1) return p;
  return inside[0];
}"""
)


@pytest.mark.parametrize("model", ["mnist-z2", "fashion-mnist-z2"])
def test_the_latent_map_holds_still_when_clicked(browser, server, model):
    """Zoomed in, a click shows the clicked image beside the map (its ellipses on a close-up) and
    leaves the map as it was: the plot area, the user's zoom, so the next click lands on the dot
    under the pointer. (A click that changed the map's figure made it a new chart: zoom gone.)"""
    url, _ = server
    page = open_page(browser, f"{url}/Latent_space?model={model}")
    chart = ".st-key-scatter .js-plotly-plot"
    page.wait_for_selector(f"{chart} canvas", timeout=60_000)
    time.sleep(1)
    full = page.evaluate(PLOT_FRAME, chart)
    page.hover(chart)
    for _ in range(2):  # the toolbar's zoom, as a person zooms
        page.locator('.st-key-scatter .modebar-btn[data-title="Zoom in"]').click()
        time.sleep(0.5)
    before = page.evaluate(PLOT_FRAME, chart)
    assert before["x"][1] - before["x"][0] < 0.5 * (full["x"][1] - full["x"][0])  # zoomed in
    for _ in range(2):  # two clicks: the second on the map as the first left it
        x, y, index = page.evaluate(VISIBLE_POINT, chart)
        page.mouse.click(x, y)
        page.wait_for_selector(f"text=Test image #{index}", timeout=60_000)
        wait_idle(page)
        page.wait_for_function(
            "document.querySelector('.st-key-close-up .js-plotly-plot')?._fullData"
            f".some(t => t.name === '#{index}: 1 sigma')",
            timeout=30_000,
        )
        time.sleep(1)
        after = page.evaluate(PLOT_FRAME, chart)
        for k in ("left", "top", "width", "height"):
            assert after[k] == pytest.approx(before[k], abs=1), (k, before, after)
        for k in ("x", "y", "xdomain", "ydomain"):
            assert after[k] == pytest.approx(before[k], rel=1e-6), (k, before, after)
    no_exception(page)
    shot(page, f"newcomer-clicked-{model}")
    page.close()


PHONE = {"width": 390, "height": 844}
PAGES = ("", "Train", "Latent_space", "Manifold", "Reconstruct", "Draw", "Interpolate", "Traversals")
OVERFLOW = """() => {
  // What a phone would cut: the page wider than the screen, and key elements reaching past it.
  const main = document.querySelector('[data-testid=stMain]');
  const width = window.innerWidth, cut = [];
  const keys = '.js-plotly-plot .main-svg, .live, .live canvas, .katex, [data-testid=stImage] img, '
    + 'canvas, [data-testid=stMetric], [data-testid=stHeading], [data-testid=stMarkdownContainer] p';
  for (const el of main.querySelectorAll(keys)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;  // hidden (a closed tab, a collapsed expander)
    if (el.closest('[role=tablist]')) continue;  // tab labels: the tab bar scrolls, with its arrow
    if (el.closest('[data-testid=stTable]')) continue;  // a table's cells: the rule below
    if (r.left < -1 || r.right > width + 1)
      cut.push(`${el.tagName.toLowerCase()}.${el.className.baseVal ?? el.className}: `
               + `${Math.round(r.left)}..${Math.round(r.right)}`);
  }
  // a table wider than the screen must scroll in its own box (the Paper page's costs ran off)
  for (const el of main.querySelectorAll('[data-testid=stTable]')) {
    const t = el.querySelector('table'), box = el.getBoundingClientRect();
    if (!t || !box.width) continue;
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
    if (t.getBoundingClientRect().right > width + 1 && !(scrolls && box.right <= width + 1))
      cut.push(`table runs off: ${Math.round(t.getBoundingClientRect().right)}`);
  }
  for (const el of main.querySelectorAll('.katex-display, [data-testid=stMarkdownContainer], .live'))
    if (el.getBoundingClientRect().width > 0 && el.scrollWidth > el.clientWidth + 2)
      cut.push(`${el.className || el.dataset.testid} scrolls: ${el.scrollWidth} in ${el.clientWidth}`);
  // Plotly's toolbar (shown while a finger or the pointer is on the chart) over a title
  for (const bar of main.querySelectorAll('.js-plotly-plot .modebar')) {
    const b = bar.getBoundingClientRect(), gd = bar.closest('.js-plotly-plot');
    for (const t of gd.querySelectorAll('.gtitle, .annotation-text-g text, .legendtext')) {
      const r = t.getBoundingClientRect();
      if (r.width && r.left < b.right && b.left < r.right && r.top < b.bottom && b.top < r.bottom)
        cut.push(`toolbar covers "${t.textContent}"`);
    }
    const notes = gd.layout.annotations || [], titles = [];  // subplot titles running together
    gd.querySelectorAll('.annotation').forEach(a => {
      const n = notes[+a.dataset.index];
      if (n && n.xref === 'paper' && n.yref === 'paper') titles.push(a.getBoundingClientRect());
    });
    titles.forEach((r, i) => titles.slice(0, i).forEach(q => {
      if (r.left < q.right && q.left < r.right && r.top < q.bottom && q.top < r.bottom)
        cut.push(`subplot titles overlap at ${Math.round(r.left)},${Math.round(r.top)}`);
    }));
    const frame = gd.getBoundingClientRect();
    for (const t of gd.querySelectorAll('.gtitle')) {  // a title wider than its figure is cut
      const r = t.getBoundingClientRect();
      if (r.width && (r.left < frame.left - 1 || r.right > frame.right + 1))
        cut.push(`title cut: "${t.textContent}"`);
      // a title of two lines hung its second over the plot area (plotly anchors its first line)
      if (r.height && gd._fullLayout && r.bottom > frame.top + gd._fullLayout._size.t + 1)
        cut.push(`title over the plot: "${t.textContent}"`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, main: main.scrollWidth, width, cut: cut.slice(0, 8)};
}"""


def long_shot(page, name):
    """A screenshot of the whole page: Streamlit scrolls inside its main block, not the document,
    so the window is made as tall as the page for the picture (its width stays)."""
    size = page.viewport_size
    tall = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(tall, size["height"]), 8000)})
    page.wait_for_timeout(800)
    shot(page, name)
    page.set_viewport_size(size)


@pytest.mark.parametrize("model", ["mnist-z2", "shapes-conv-z8"])
def test_every_page_fits_a_phone(browser, server, model):
    """At 390 x 844 (a phone held upright) no page is wider than the screen, nothing a person
    reads (maps, the live decoder, formulas, images) runs off its right edge, and plotly's
    toolbar covers no figure's title."""
    url, _ = server
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    problems = {}
    for name in PAGES:
        page.goto(f"{url}/{name}?model={model}")
        wait_idle(page, timeout_ms=240_000)  # a first visit fits the stranger detector (minutes, busy)
        page.wait_for_timeout(1500)  # plotly and the live decoder lay themselves out
        no_exception(page)
        seen = page.evaluate(OVERFLOW)
        long_shot(page, f"newcomer-phone-{model}-{name or 'Home'}")
        if seen["scroll"] > seen["width"] or seen["main"] > seen["width"] or seen["cut"]:
            problems[name or "Home"] = seen
    page.close()
    assert not problems, problems


@pytest.mark.parametrize("name", ["Theory", "Paper"])
def test_every_tab_of_the_theory_and_paper_pages_fits_a_phone(browser, server, name):
    """The Theory and Paper pages at 390 x 844, every tab opened: their equations (KaTeX blocks),
    figures and text stay within the screen (the Theory page's equations ran off to the right in
    a sideways scroll nobody was told of), and plotly's toolbar covers no figure's title (it hid
    several)."""
    url, _ = server
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.goto(f"{url}/{name}?model=mnist-z2")
    wait_idle(page, timeout_ms=240_000)
    problems = {}
    tabs = page.get_by_role("tab")
    assert tabs.count() >= 2
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        label = tab.inner_text()
        tab.click()
        wait_idle(page, timeout_ms=240_000)
        page.wait_for_timeout(1500)  # plotly lays itself out
        no_exception(page)
        seen = page.evaluate(OVERFLOW)
        long_shot(page, f"newcomer-phone-{name}-{i}")
        if seen["scroll"] > seen["width"] or seen["main"] > seen["width"] or seen["cut"]:
            problems[label] = seen["cut"] or seen
    page.close()
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


UPLOADS_SEEN = """(chart) => {
  // Page pixels of every upload star (centre, radius) and every number's box on the map.
  const gd = document.querySelector(chart), box = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, stars = [];
  for (const t of gd._fullData)
    if (t.marker && t.marker.symbol === 'star')
      for (let i = 0; i < t.x.length; i++)
        stars.push({x: box.left + xa._offset + xa.l2p(t.x[i]), y: box.top + ya._offset + ya.l2p(t.y[i]),
                    r: t.marker.size / 2});
  const boxes = Array.from(gd.querySelectorAll('.annotation')).map(a => {
    const r = a.querySelector('rect.bg').getBoundingClientRect();
    return {text: a.textContent, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
  });
  const plot = {x0: box.left + xa._offset, y0: box.top + ya._offset,
                x1: box.left + xa._offset + xa._length, y1: box.top + ya._offset + ya._length};
  return {stars, boxes, plot};
}"""


def _overlaps(box, star, slack=1.0):
    dx = max(box["x0"] - star["x"], 0, star["x"] - box["x1"])
    dy = max(box["y0"] - star["y"], 0, star["y"] - box["y1"])
    return (dx * dx + dy * dy) ** 0.5 < star["r"] - slack


@pytest.mark.parametrize(
    ("model", "count", "viewport"),
    [("mnist-z2", 6, PHONE), ("mnist-z2", 4, {"width": 1400, "height": 1000}), ("mnist-z20", 6, PHONE)],
)
def test_every_upload_keeps_its_star_and_number_on_the_map(
    browser, server, tmp_path, mnist_test, model, count, viewport
):
    """Reconstruct's shared map with several uploads, most of them "1"s that land close together:
    no number's box covers a star or another box, every box lies inside the plot, and a star drawn
    over an earlier one leaves its tips showing (four uploads' names hid two of their stars)."""
    from PIL import Image

    files = []
    for i in (3, 2, 5, 14, 29, 31)[:count]:  # a "0", then "1"s
        Image.fromarray(mnist_test.images[i, 0].numpy()).save(tmp_path / f"my-upload-{i}.png")
        files.append(str(tmp_path / f"my-upload-{i}.png"))
    url, _ = server
    page = browser.new_page(viewport=viewport)
    chart = upload_to_reconstruct(page, url, model, files, count)
    no_exception(page)
    seen = page.evaluate(UPLOADS_SEEN, chart)
    page.locator(chart).screenshot(
        path=str(ARTIFACTS / f"newcomer-uploads-{model}-{count}-{viewport['width']}.png")
    )
    page.close()
    stars, boxes, plot = seen["stars"], seen["boxes"], seen["plot"]
    assert len(stars) == count and len(boxes) == count
    for i, b in enumerate(boxes):
        assert not [s for s in stars if _overlaps(b, s)], (b, stars)
        assert plot["x0"] - 1 <= b["x0"] and b["x1"] <= plot["x1"] + 1, (b, plot)
        assert plot["y0"] - 1 <= b["y0"] and b["y1"] <= plot["y1"] + 1, (b, plot)
        for other in boxes[:i]:
            assert (
                b["x1"] <= other["x0"]
                or other["x1"] <= b["x0"]
                or b["y1"] <= other["y0"]
                or other["y1"] <= b["y0"]
            )
    for i, s in enumerate(stars):  # drawn in order: a later star on top of this one leaves its tips
        for t in stars[i + 1 :]:
            assert ((s["x"] - t["x"]) ** 2 + (s["y"] - t["y"]) ** 2) ** 0.5 + s["r"] > t["r"] + 1, (s, t)
    assert sorted(b["text"] for b in boxes) == [
        str(i + 1) for i in range(count)
    ]  # the key under the map names them
