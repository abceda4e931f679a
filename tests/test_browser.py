"""What a person sees, in a real browser (Debian's chromium driven by Playwright)."""

import os

import pytest

from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server, wait_idle

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)"
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_home_page_shows_the_shipped_model(browser):
    with streamlit_server() as url:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        wait_idle(page)
        page.wait_for_function(
            "document.querySelectorAll('[data-testid=stImage] img').length == 2 && "
            "Array.from(document.querySelectorAll('[data-testid=stImage] img'))"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)
        assert page.locator("[data-testid=stException]").count() == 0
        text = page.inner_text("[data-testid=stMain]")
        assert "VAE Explorer" in text and "Latent size" in text and "Latent manifold" in text
        sizes = page.eval_on_selector_all(
            "[data-testid=stImage] img", "els => els.map(e => [e.naturalWidth, e.naturalHeight])"
        )
        assert sizes[0] == [3 * (8 * 30 + 2)] * 2  # 8x8 samples, 3x upscaled
        assert sizes[1] == [2 * 20 * 28] * 2  # 20x20 manifold, 2x upscaled
        page.close()
