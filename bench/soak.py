"""Soak test: one VAE Explorer server, N concurrent real-browser sessions for a while.

Each session loops: open a page by deep link, move a Manifold slider, upload an image on the
Reconstruct page, switch pages through the sidebar. It prints p50/p95 update latency (action to
the app being idle again), the error count (exceptions shown, timeouts), and the server's resident
memory at the start (after warm-up), in the middle and at the end.

    python bench/soak.py --sessions 10 --seconds 60      (or: make soak)

Only loopback traffic; the run is bounded in sessions and time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

IDLE = "[data-testid=stApp][data-test-connection-state=CONNECTED][data-test-script-state=notRunning]"
# sidebar link labels
PAGES = ["Home", "Latent space", "Manifold", "Reconstruct", "Train", "Draw", "Interpolate"]
DEEP_LINKS = ["", "Latent_space", "Manifold", "Reconstruct", "Train", "Draw", "Interpolate"]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (from /proc)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def digit_png(path: Path) -> Path:
    image = Image.new("L", (80, 100), 245)
    image.paste(20, (35, 10, 46, 90))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return path


async def idle(page, timeout_ms=30_000) -> None:
    await page.wait_for_selector(IDLE, timeout=timeout_ms)


async def timed(stats: dict, kind: str, action, page, rerun: bool = True) -> None:
    """Time ``action`` and, when it makes the app rerun, the wait until the app is idle again."""
    t = time.perf_counter()
    await action()
    if rerun:
        await asyncio.sleep(0.05)  # let the rerun start before waiting for idle
        await idle(page)
    stats[kind].append(time.perf_counter() - t)


async def session(n: int, browser, url: str, stop_at: float, upload: Path, stats: dict) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(url)
    await idle(page, 120_000)
    step = n  # sessions start on different pages
    while time.time() < stop_at:
        label = PAGES[step % len(PAGES)]
        step += 1
        try:
            link = page.locator("[data-testid=stSidebar]").get_by_role("link", name=label, exact=True)
            await timed(stats, "page switch", link.click, page)
            if label == "Manifold":
                slider = page.locator(".live input[type=range]").first  # decoded in the browser
                await slider.focus()
                key = "ArrowRight" if step % 2 else "ArrowLeft"

                async def move(key=key):
                    state = "document.querySelector('.live-root').__live"
                    before = await page.evaluate(f"{state}.version")
                    await page.keyboard.press(key)
                    await page.wait_for_function(f"{state}.version > {before}", timeout=30_000)

                await timed(stats, "slider move", move, page, rerun=False)  # no rerun: all in the page
            elif label == "Reconstruct":

                async def send():
                    await page.set_input_files("[data-testid=stFileUploaderDropzoneInput]", str(upload))
                    await page.wait_for_selector("text=higher than", timeout=30_000)

                await timed(stats, "upload", send, page)
            if await page.locator("[data-testid=stException]").count():
                stats["errors"].append(f"session {n}: exception shown on {label}")
        except Exception as exc:  # a timeout or a crash counts as an error of the run
            stats["errors"].append(f"session {n} on {label}: {type(exc).__name__}: {str(exc)[:120]}")
    await context.close()


def run(args) -> int:
    from playwright.async_api import async_playwright

    upload = digit_png(Path("/tmp/vae-explorer-soak-digit.png"))
    stats: dict = {"page switch": [], "slider move": [], "upload": [], "errors": []}
    memory = []
    cpu: list[float] = []

    async def go(url: str, pid: int) -> None:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # Warm-up: one pass over every page so that models and encodings are cached.
            page = await browser.new_page()
            for name in DEEP_LINKS:
                await page.goto(f"{url}/{name}")
                await idle(page, 120_000)
            await page.close()
            memory.append(("start", rss_mb(pid)))
            cpu.append(cpu_seconds(pid))
            stop_at = time.time() + args.seconds

            async def sample_memory():
                while time.time() < stop_at:
                    await asyncio.sleep(args.seconds / 4)
                    memory.append((f"{time.time() - stop_at + args.seconds:.0f} s", rss_mb(pid)))

            await asyncio.gather(
                sample_memory(),
                *(session(i, browser, url, stop_at, upload, stats) for i in range(args.sessions)),
            )
            cpu.append(cpu_seconds(pid))
            await browser.close()
            await asyncio.sleep(5)
            memory.append(("end, sessions closed + 5 s", rss_mb(pid)))

    with streamlit_server(pid_out=(pids := [])) as url:
        asyncio.run(go(url, pids[0]))

    print(f"soak: {args.sessions} sessions x {args.seconds} s against one server")
    print("| figure | count | p50 | p95 |")
    print("|---|---|---|---|")
    for kind in ("page switch", "slider move", "upload"):
        lat = sorted(stats[kind])
        if lat:
            p95 = lat[max(0, math.ceil(0.95 * len(lat)) - 1)]  # nearest rank
            p50, p95 = statistics.median(lat) * 1000, p95 * 1000
            until = "new image drawn" if kind == "slider move" else "app idle"
            print(f"| {kind} (action to {until}) | {len(lat)} | {p50:.0f} ms | {p95:.0f} ms |")
    print(f"| errors | {len(stats['errors'])} | | |")
    print(
        f"| server CPU during the run | {(cpu[1] - cpu[0]) / args.seconds:.0%} of one core "
        f"({os.cpu_count()} cores in all; the browsers use the rest) | | |"
    )
    for label, mb in memory:
        print(f"| server memory at {label} | {mb:.0f} MB | | |")
    for e in stats["errors"][:10]:
        print(f"  error: {e}")
    grew = len(memory) > 1 and memory[-1][1] > memory[0][1] * 1.25
    return 1 if stats["errors"] or grew else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=60)
    sys.exit(run(parser.parse_args()))
