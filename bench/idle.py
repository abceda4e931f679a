"""The app at rest and on first view: what an open tab costs when nothing happens, and how long
the Latent space page takes to become usable the first time each model is shown.

    python bench/idle.py [--seconds 30] [--models mnist-z2,mnist-z20,fashion-mnist-z2]

Rows:
  - the server's CPU use, in % of one core, with one browser tab open on the Home page and
    nothing happening for --seconds: with the app's settings (.streamlit/config.toml, what
    `make run` uses), and, as the baseline in the same run, with Streamlit's default file watcher
    switched back on (--server.fileWatcherType auto); with the count of "Inotify queue
    overflowed" lines each server wrote;
  - for each model, on a server that has not shown it yet (the page first opened on another model,
    which loads plotly.js into the tab): seconds from choosing the model on the Latent space page
    to its scatter painted and the page idle (usable), then to the "Prior vs aggregate posterior"
    tab painted once it is opened.

Needs streamlit, playwright and Debian's chromium (the real-browser set-up of `make test`).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.soak import cpu_seconds  # noqa: E402
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server, wait_idle  # noqa: E402


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its direct children."""
    total = cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        try:
            total += cpu_seconds(int(child))
        except OSError:
            pass
    return total


def idle_cpu(browser, seconds: float, extra_args: list[str]) -> tuple[float, int]:
    """(% of one core used by the server over ``seconds`` with one idle tab, inotify overflow
    lines in its log)."""
    pids: list[int] = []
    with streamlit_server(pid_out=pids, extra_args=extra_args) as url:
        page = browser.new_page()
        page.goto(url)
        wait_idle(page)
        time.sleep(5)  # let start-up work settle
        start_cpu, start = process_tree_cpu(pids[0]), time.perf_counter()
        time.sleep(seconds)
        used = process_tree_cpu(pids[0]) - start_cpu
        elapsed = time.perf_counter() - start
        page.close()
        log = max(ARTIFACTS.glob("server-*.log"), key=lambda p: p.stat().st_mtime)
        overflows = log.read_text(errors="replace").count("Inotify queue overflowed")
    return 100.0 * used / elapsed, overflows


FIRST_X = """() => {
  const gd = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  return gd && gd.data && gd.data.length ? String(gd.data[0].x[0]) + '/' + gd.data.length : '';
}"""


def choose_model(page, model: str) -> None:
    page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").first.click()
    page.get_by_role("option", name=model, exact=True).click()


# The page's own clock at the last moment its script went idle: wait_idle waits a short settling
# time after the run ends (a rerun may follow), so the bench reads when the run ended instead.
WATCH_IDLE = """() => {
  if (window.__idleWatch) return;
  const app = document.querySelector('[data-testid=stApp]');
  window.__lastIdle = performance.now();
  window.__idleWatch = new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'notRunning') window.__lastIdle = performance.now();
  });
  window.__idleWatch.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def seconds_to_idle(page, start_ms: float) -> float:
    """Seconds from ``start_ms`` (the page's performance.now()) to the end of the last script run,
    once the page has settled (``wait_idle``)."""
    wait_idle(page, 120_000)
    return (page.evaluate("window.__lastIdle") - start_ms) / 1000


def first_views(browser, models: list[str], warm_up: str) -> list[tuple[str, float, float]]:
    """(model, seconds to a usable scatter, seconds to the prior tab) for each of ``models`` on a
    fresh server, each chosen on the Latent space page after the page was first opened on
    ``warm_up`` (which loads plotly.js in the tab and the page's code in the server)."""
    out = []
    with streamlit_server() as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        wait_idle(page)
        choose_model(page, warm_up)
        wait_idle(page)
        page.locator("[data-testid=stSidebar]").get_by_role("link", name="Latent space", exact=True).click()
        page.wait_for_selector("[data-testid=stMain] .js-plotly-plot canvas", timeout=120_000)
        wait_idle(page, 120_000)
        page.evaluate(WATCH_IDLE)
        for model in models:
            before = page.evaluate(FIRST_X)
            start = page.evaluate("performance.now()")
            choose_model(page, model)
            page.wait_for_function(f"({FIRST_X})() !== {before!r}", timeout=120_000, polling=20)
            usable = seconds_to_idle(page, start)
            page.get_by_role("tab", name="Prior vs aggregate posterior").click()
            start = page.evaluate("performance.now()")
            page.get_by_text("Prior mass in holes").wait_for(timeout=120_000)
            out.append((model, usable, seconds_to_idle(page, start)))
            page.get_by_role("tab", name="Test set").click()
            page.wait_for_selector("[data-testid=stMain] .js-plotly-plot canvas", timeout=120_000)
            wait_idle(page, 120_000)
        page.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="idle time measured")
    p.add_argument("--models", default="mnist-z2,mnist-z20,fashion-mnist-z2")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    if len(args.models.split(",")) < 2:
        p.error("--models needs two or more models: each is measured after a warm-up on another")
    print(f"# The app at rest and on first view: host {platform.processor() or platform.machine()}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ours = idle_cpu(browser, args.seconds, [])
        watcher = idle_cpu(browser, args.seconds, ["--server.fileWatcherType", "auto"])
        models = args.models.split(",")
        # Each model is measured on a server that has not shown it yet, after a warm-up on another.
        views = first_views(browser, models[:-1], warm_up=models[-1])
        views += first_views(browser, models[-1:], warm_up=models[0])
        browser.close()
    print(f"\n| one idle tab for {args.seconds:.0f} s | server CPU (% of a core) | inotify overflow lines |")
    print("|---|---:|---:|")
    print(f"| the app's settings (`make run`) | **{ours[0]:.2f}** (target < 2) | {ours[1]:,} |")
    print(f"| Streamlit's default file watcher | {watcher[0]:.2f} | {watcher[1]:,} |")
    print("\n| Latent space, first view | usable: scatter shown (s) | prior tab opened (s) |")
    print("|---|---:|---:|")
    for model, usable, prior in views:
        print(f"| {model} | **{usable:.2f}** (target < 1.5) | {prior:.2f} |")


if __name__ == "__main__":
    main()
