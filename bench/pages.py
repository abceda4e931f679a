"""Every page's first view, a warm page switch, a click and a box selection on the latent map, for
every shipped model, in a real browser, against the targets of a 2-core host:

    python bench/pages.py [--models mnist-z2,...] [--root DIR] [--no-maps] [--plain]

For each model a fresh server (nothing of the model in its memory, and, as on a fresh clone, no
runs of the user's own: ``VAE_EXPLORER_RUNS`` is an empty folder) and one browser tab:
  1. the deep link ``/Latent_space?model=M&density=1&point=12`` as the server's first request
     (imports, the model, the map, its density contours and the clicked image's panel);
  2. a click on another dot of the map, then a box dragged over the map (a selection's gallery);
  3. the "Prior vs aggregate posterior" tab; for models wider than 2-D, the t-SNE and the UMAP
     map, each chosen in the sidebar (then back to PCA);
  4. every other page's first view, by its sidebar link (the links the sidebar shows: Home,
     Train, Manifold, Reconstruct, Draw, Interpolate, Traversals...);
  5. every page again by its sidebar link: the warm switches (the slowest is reported).
Each figure is seconds from the action (the page's own clock, ``performance.now()``; from the
navigation's start for the deep link) to the page's last change while no script ran, read once the
page has settled (bench/idle.py's approach): the end of the last script run the action caused, or
later, the browser's drawing of what that run sent (a Plotly map's first drawing is one to two
seconds of the browser's work on a 2-core host, after the script has ended). Targets: a first
view <= 2 s, a warm switch <= 1 s, a click or a selection <= 0.5 s.

The server starts as ``make run`` starts it (``python -m explorer.ui.serve``: the pages' imports
warmed while it starts); ``--plain`` starts it as ``streamlit run app.py`` instead, the baseline
of that warm-up. ``--root DIR`` runs the app of another checkout (e.g. ``git archive`` of an older
commit) with the same browser and steps: the baseline of older work.

Before the models, the same run measures the floor this host and browser put under any page: a
bare Streamlit page holding one Plotly WebGL scatter of 5,000 points (the size of the latent
map), opened in a new tab of a warm server, and a click on one of its dots that adds a star to
the figure and a line beside it (the least a click on the map can do). No page of the app can be
quicker than these. Needs streamlit, playwright and Debian's chromium.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server, wait_idle  # noqa: E402

MODELS = (
    "mnist-z2",
    "mnist-z20",
    "mnist-ae-z2",
    "fashion-mnist-z2",
    "shapes-conv-z8",
    "shapes-conv-bce-z8",
    "paper-aevb-z20",
    "paper-wake-sleep-z20",
)
FIRST, SWITCH, CLICK = 2.0, 1.0, 0.5  # targets in seconds

# The time of the page's last change while the app's script was idle (its end, or the drawing of
# what it sent), on the page's clock, kept from the document's start (an init script: it runs
# again on every navigation).
WATCH_IDLE = """
window.__lastIdle = 0;
new MutationObserver(() => {
  const app = document.querySelector('[data-testid=stApp]');
  const idle = app && app.getAttribute('data-test-script-state') === 'notRunning';
  if (idle) window.__lastIdle = performance.now();
}).observe(document, {attributes: true, childList: true, subtree: true,
                      attributeFilter: ['data-test-script-state']});
"""
# Plotting area of the first scatter in page pixels, and a dot that no other dot overlaps there.
PLOT_BOX = """() => {
  const gd = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  return [box.left + xa._offset, box.top + ya._offset, xa._length, ya._length];
}"""
LONE_DOTS = """() => {
  const gd = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const pts = [];
  for (const t of gd.data) {
    if (!t.customdata || t.mode !== 'markers') continue;
    for (let i = 0; i < t.x.length; i++)
      pts.push([box.left + xa._offset + xa.l2p(t.x[i]), box.top + ya._offset + ya.l2p(t.y[i]),
                Array.isArray(t.customdata[i]) ? t.customdata[i][0] : t.customdata[i]]);
  }
  const x0 = box.left + xa._offset, y0 = box.top + ya._offset, w = xa._length, h = ya._length;
  const inside = p => p[0] > x0 + 0.1 * w && p[0] < x0 + 0.9 * w
    && p[1] > y0 + 0.1 * h && p[1] < y0 + 0.9 * h;
  return pts.slice(0, 2000).filter(p => p[2] !== 12 && inside(p)
    && pts.filter(q => Math.hypot(q[0] - p[0], q[1] - p[1]) < 8).length === 1).slice(0, 5);
}"""


def click_a_dot(page) -> float:
    """Click a dot that no other dot overlaps (inside the plot, not #12); seconds to the end of the
    run that shows its image. A click that opens nothing (a dot under another trace) is tried on
    the next dot."""
    for x, y, index in page.evaluate(LONE_DOTS):
        start = now(page)
        page.mouse.click(x, y)
        try:
            page.wait_for_selector(f"text=Test image #{index}", timeout=60_000)
        except Exception:  # playwright's TimeoutError: that dot did not take the click
            wait_idle(page, 180_000)
            continue
        return since(page, start)
    raise RuntimeError("no dot on the map took a click")


def page_labels(root: Path) -> list[str]:
    """The sidebar labels of the app in ``root``: ``explorer.ui.models.PAGES``, read from the
    source (the bench does not import the app it measures)."""
    tree = ast.parse((root / "explorer" / "ui" / "models.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PAGES" for t in node.targets):
            return [entry[1] for entry in ast.literal_eval(node.value)]
    raise RuntimeError(f"no PAGES in {root}/explorer/ui/models.py")


def since(page, start_ms: float) -> float:
    """Seconds from ``start_ms`` on the page's clock to the end of the last script run, once the
    page has settled."""
    wait_idle(page, 180_000)
    return (page.evaluate("window.__lastIdle") - start_ms) / 1000


def now(page) -> float:
    return page.evaluate("performance.now()")


def link(page, name: str) -> float:
    """Follow the sidebar's link to page ``name``; seconds to its end of run."""
    start = now(page)
    page.locator("[data-testid=stSidebar]").get_by_role("link", name=name, exact=True).click()
    return since(page, start)


def deep_link(page, url: str, model: str) -> float:
    """Open ``/Latent_space?model=M&density=1&point=12`` in ``page``; seconds from the navigation's
    start to the end of the last script run it caused."""
    page.add_init_script(WATCH_IDLE)
    page.goto(f"{url}/Latent_space?model={model}&density=1&point=12")
    page.wait_for_selector("text=Test image #12", timeout=180_000)
    return since(page, 0.0)


def measure(browser, model: str, root: Path, maps: bool, warm: bool = True, deep_links: int = 3) -> list:
    """(what, kind, seconds[, note]) for one model on a fresh server; kind: first, switch or click.
    The deep link is the median of ``deep_links`` fresh servers (the last one goes on to the other
    steps): on two cores the server's first run and the browser's first drawing of Plotly compete,
    and one figure alone varied by a second between fresh servers; the table gives the range.
    """
    import tempfile

    rows = []
    runs = tempfile.mkdtemp(prefix="pages-bench-runs-")  # a fresh clone's: no runs of one's own
    env = {"PYTHONPATH": str(root), "VAE_EXPLORER_RUNS": runs}
    firsts = []
    for _ in range(deep_links - 1):  # fresh servers for the deep link alone
        with streamlit_server(env=env, timeout=120, root=root, warm=warm) as url:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            firsts.append(deep_link(page, url, model))
            page.close()
    with streamlit_server(env=env, timeout=120, root=root, warm=warm) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        firsts.append(deep_link(page, url, model))
        spread = f"median of {len(firsts)}: {min(firsts):.2f}-{max(firsts):.2f}" if len(firsts) > 1 else ""
        rows.append(("Latent space: deep link density=1&point=12 (the server's first request)", "first",
                     statistics.median(firsts), spread))  # fmt: skip
        page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=60_000)
        rows.append(("Latent space: a click on a dot", "click", click_a_dot(page)))
        left, top, width, height = page.evaluate(PLOT_BOX)
        page.mouse.move(left + width / 2, top + height / 2)
        page.locator('.modebar-btn[data-title="Box Select"]').first.click()
        page.mouse.move(left + width * 0.45, top + height * 0.45)
        page.mouse.down()
        page.mouse.move(left + width * 0.55, top + height * 0.55, steps=8)
        start = now(page)
        page.mouse.up()
        page.wait_for_selector("text=Selection:", timeout=180_000)
        rows.append(("Latent space: a box selection", "click", since(page, start)))
        start = now(page)
        page.get_by_role("tab", name="Prior vs aggregate posterior").click()
        rows.append(("Latent space: the Prior tab", "first", since(page, start)))
        page.get_by_role("tab", name="Test set").click()
        wait_idle(page, 180_000)
        if maps and page.locator("[data-testid=stSidebar]").get_by_text("t-SNE", exact=True).count():
            for name in ("t-SNE", "UMAP", "PCA"):
                start = now(page)
                page.locator("[data-testid=stSidebar]").get_by_text(name, exact=True).click()
                seconds = since(page, start)
                if name != "PCA":
                    rows.append((f"Latent space: the {name} map", "first", seconds))
        pages = [p for p in page_labels(root) if p != "Latent space"]
        for name in pages:
            rows.append((name, "first", link(page, name)))
        for name in ("Latent space", *pages):
            rows.append((name, "switch", link(page, name)))
        page.close()
    return rows


FLOOR_APP = """
import numpy as np, plotly.graph_objects as go, streamlit as st
st.set_page_config(layout="wide")
st.title("Floor")
xy = np.random.default_rng(0).normal(size=(5000, 2))
traces = [{"type": "scattergl", "mode": "markers", "x": xy[k::10, 0].tolist(), "y": xy[k::10, 1].tolist(),
           "customdata": list(range(k, 5000, 10)), "marker": {"size": 4}} for k in range(10)]
picked = st.session_state.get("picked")
if picked is not None:
    traces.append({"type": "scattergl", "mode": "markers", "x": [xy[picked, 0]], "y": [xy[picked, 1]],
                   "marker": {"symbol": "star", "size": 18}})
fig = go.Figure({"data": traces, "layout": {"height": 560, "dragmode": "pan"}}, _validate=False)
def remember():
    points = st.session_state["map"].selection.get("points", [])
    if points:
        c = points[0]["customdata"]
        st.session_state["picked"] = int(c[0] if isinstance(c, list) else c)
left, right = st.columns([3, 2])
with left:
    st.plotly_chart(fig, on_select=remember, selection_mode=("points", "box", "lasso"), key="map")
if picked is not None:
    right.write(f"Test image #{picked}")
"""


def floor(browser) -> list[tuple[str, str, float]]:
    """The bare page's new-tab view (on a warm server: its second visit) and a click on a dot."""
    import subprocess
    import tempfile
    import urllib.request

    from tests.browser import free_port

    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "floor.py"
        script.write_text(FLOOR_APP)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.3)
            rows = []
            for visit in range(2):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.add_init_script(WATCH_IDLE)
                page.goto(f"http://127.0.0.1:{port}")
                page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=120_000)
                seconds = since(page, 0.0)
                if visit == 1:
                    rows.append(
                        ("floor: a bare page with one 5,000-point Plotly map, new tab", "first", seconds)
                    )
                    rows.append(("floor: a click on its map (a star added)", "click", click_a_dot(page)))
                page.close()
            return rows
        finally:
            server.terminate()
            server.wait(timeout=30)


def table(results: dict[str, list[tuple[str, str, float]]]) -> str:
    """Markdown: one row per measurement and model (the warm switches as their slowest), a
    figure in bold where it misses its target."""
    target = {"first": FIRST, "switch": SWITCH, "click": CLICK}
    models = list(results)
    names: list[tuple[str, str]] = []
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for model, rows in results.items():
        rows = [(*row, "")[:4] for row in rows]
        switches = [(s, what) for what, kind, s, _ in rows if kind == "switch"]
        merged = [row for row in rows if row[1] != "switch"]
        if switches:
            slowest = max(switches)
            what = f"warm page switch, the slowest of {len(switches)}"
            merged.append((what, "switch", slowest[0], slowest[1]))
        for what, kind, seconds, note in merged:
            key = (what, kind)
            if key not in names:
                names.append(key)
            figure = f"{seconds:.2f}" + (f" ({note})" if note else "")
            cells.setdefault(key, {})[model] = figure if seconds <= target[kind] else f"**{figure}**"
    lines = [f"| s (target) | {' | '.join(models)} |", "|---|" + "---:|" * len(models)]
    for what, kind in names:
        row = [cells[(what, kind)].get(m, "-") for m in models]
        lines.append(f"| {what} (<= {target[kind]:g}) | {' | '.join(row)} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app is measured")
    p.add_argument("--no-maps", action="store_true", help="leave out the t-SNE and UMAP maps")
    p.add_argument("--plain", action="store_true", help="start the server as `streamlit run app.py`")
    p.add_argument("--no-floor", action="store_true", help="leave out the bare page's floor")
    p.add_argument("--deep-links", type=int, default=3, help="fresh servers for the deep link's median")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    load = os.getloadavg()
    how = "streamlit run app.py" if args.plain else "python -m explorer.ui.serve"
    print(f"# Page timings: {args.root} ({how}), host {platform.node()} ({os.cpu_count()} CPUs), load "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start")  # fmt: skip
    results = {}
    started = time.perf_counter()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if not args.no_floor:
            rows = floor(browser)
            print("\n".join(f"{row[0]}: {row[2]:.2f} s" for row in rows), file=sys.stderr)
            results["floor"] = rows
        for model in args.models.split(","):
            results[model] = measure(
                browser, model, args.root.resolve(), not args.no_maps, not args.plain, args.deep_links
            )
            print(f"{model}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
            print(table({model: results[model]}), file=sys.stderr)  # kept if a later model fails
        browser.close()
    load = os.getloadavg()
    print(table(results))
    print(f"\nload {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end")


if __name__ == "__main__":
    main()
