"""Helpers for the real-browser tests: a Streamlit server on a free loopback port and Debian's
chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The server's environment as `make run` sets it (see the Makefile), so that the tests and the
# benches that start a server measure what a user runs.
SERVER_ENV = {"MALLOC_ARENA_MAX": "2"}


@contextlib.contextmanager
def streamlit_server(
    env: dict | None = None,
    timeout: float = 90,
    pid_out: list | None = None,
    extra_args: list | None = None,
    root: Path = ROOT,
    warm: bool = True,
):
    """Start the app on 127.0.0.1 (with ``extra_args`` for streamlit) in ``root`` (another
    checkout of the app, for a bench's baseline) as ``make run`` does (``python -m
    explorer.ui.serve``: the pages' imports done before the server starts), or, with ``warm``
    False or in a checkout without that launcher, as ``streamlit run app.py``; yield its URL; stop
    it by its PID (appended to ``pid_out`` when given, for measurements of the server process)."""
    port = free_port()
    launcher = (
        ["explorer.ui.serve"]
        if warm and (root / "explorer" / "ui" / "serve.py").is_file()
        else [
            "streamlit",
            "run",
            str(root / "app.py"),
        ]
    )
    cmd = [
        sys.executable,
        "-m",
        *launcher,
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        *(extra_args or []),
    ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / f"server-{port}.log", "w")
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env={**os.environ, **SERVER_ENV, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    if pid_out is not None:
        pid_out.append(proc.pid)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


IDLE_SETTLE_MS = 400  # a widget mounted by one run may ask for another run right after it


def wait_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the app is connected and its script has finished running, and is still idle a
    moment later: a rerun asked for by a newly mounted widget (a keyed tab set reporting its open
    tab) starts just after the first run ends, and its page is not the one to read."""
    for _ in range(2):
        page.wait_for_selector(
            "[data-testid=stApp][data-test-connection-state=CONNECTED]", timeout=timeout_ms
        )
        page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout_ms)
        page.wait_for_timeout(IDLE_SETTLE_MS)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout_ms)


def main_text_has(page, *parts: str, timeout_ms: int = 30_000) -> str:
    """Wait until the main area's visible text holds every one of `parts`; returns that text.
    Fails with the text seen last, so a missing caption is named rather than timed out on."""
    script = "parts => parts.every(p => document.querySelector('[data-testid=stMain]').innerText.includes(p))"
    try:
        page.wait_for_function(script, arg=list(parts), timeout=timeout_ms)
    except Exception as exc:  # playwright's TimeoutError: say what the page showed instead
        raise AssertionError(
            f"{parts} not all shown; the page read: {page.inner_text('[data-testid=stMain]')!r}"
        ) from exc
    return page.inner_text("[data-testid=stMain]")


# -- fixtures and page helpers shared by the browser test modules ----------------------------------


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    wait_idle(page)
    return page


def no_exception(page):
    assert page.locator("[data-testid=stException]").count() == 0, page.inner_text("[data-testid=stMain]")


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def images_loaded(page, count):
    page.wait_for_function(
        f"Array.from(document.querySelectorAll('[data-testid=stImage] img')).filter("
        f"i => i.complete && i.naturalWidth > 0).length >= {count}",
        timeout=30_000,
    )


UPLOADS_MAP = ".st-key-uploads-map .js-plotly-plot"  # Reconstruct's shared map of the uploads


def upload_to_reconstruct(page, url: str, model: str, files: list[str], numbers: int) -> str:
    """Open Reconstruct on ``model``, upload ``files`` and wait until its shared map shows
    ``numbers`` numbered boxes, scrolled into view and laid out; returns the map's selector."""
    page.goto(f"{url}/Reconstruct?model={model}")
    wait_idle(page, timeout_ms=240_000)
    page.set_input_files("[data-testid=stFileUploaderDropzoneInput]", files)
    page.wait_for_selector("text=Where your images lie", timeout=240_000)
    wait_idle(page, timeout_ms=240_000)
    page.locator(UPLOADS_MAP).scroll_into_view_if_needed()
    page.wait_for_function(
        f"document.querySelectorAll('{UPLOADS_MAP} .annotation').length === {numbers}", timeout=30_000
    )
    page.wait_for_timeout(1000)
    return UPLOADS_MAP
