"""Interaction speed: what the app does on each slider move, click or page visit, timed on the
machine it runs on, and the importance-sampled evaluation's throughput.

    python bench/interaction.py [--model mnist-z2] [--device cpu] [--app] [--eval-images 200]

Rows (p50 and p95 over repeated runs, against the target in the same table):
  - decode one latent point to a PNG (the Manifold page's slider);
  - decode a 20 x 20 manifold grid to a PNG;
  - encode the 10,000 MNIST test images (the Latent space page's first visit);
  - with --app: one Manifold page rerun after a slider change, through Streamlit's AppTest, and
    the peak resident memory of a `streamlit run` server after one browser visit to every page
    (these two need streamlit and, for the second, Debian's chromium);
  - L_K with K = 5000: images per second on a subset, and the full test set's time from that rate.

The library part needs only torch, numpy, safetensors and tqdm, so it also runs on the GPU machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from explorer.checkpoints import load_checkpoint  # noqa: E402
from explorer.data.cache import eval_images, load_dataset  # noqa: E402
from explorer.evaluate import encode_means, importance_per_image  # noqa: E402
from explorer.explore.latent import decode_mean, latent_grid  # noqa: E402
from explorer.pictures.images import make_grid, png_bytes, upscale  # noqa: E402


def timed(fn, repeats: int, warmup: int = 3, sync=lambda: None) -> list[float]:
    """Milliseconds of each of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


BARE_PAGE = """import streamlit as st
st.sidebar.slider("Grid resolution", 5, 30, 20)
st.write("a page with one widget: what any AppTest rerun costs")
"""


def bare_rerun_ms(repeats: int) -> list[float]:
    """AppTest reruns of a one-widget page: the floor under every page's figure."""
    import tempfile

    from streamlit.testing.v1 import AppTest

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(BARE_PAGE)
    at = AppTest.from_file(f.name).run()
    out = []
    for i in range(repeats + 2):
        at.sidebar.slider[0].set_value(20 if i % 2 else 19)
        start = time.perf_counter()
        at.run()
        if i >= 2:
            out.append((time.perf_counter() - start) * 1000)
    Path(f.name).unlink()
    return out


def app_rerun_ms(repeats: int) -> list[float]:
    """Manifold page reruns through AppTest (the server-side cost of a rerun), alternating the
    grid resolution between two settings that are both cached after the first pass. Slider moves
    themselves cause no rerun: the point is decoded in the browser."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.switch_page("pages/3_Manifold.py").run()
    out = []
    for i in range(repeats + 2):
        at.sidebar.slider[0].set_value(20 if i % 2 else 19)
        start = time.perf_counter()
        at.run()
        if i >= 2:  # the first two fill the caches
            out.append((time.perf_counter() - start) * 1000)
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return out


SLIDER_MOVE = """async ([j, v]) => {
  const s = document.querySelector('.live-root').__live;
  const t0 = performance.now();
  s.inputs[j].value = v;
  s.inputs[j].dispatchEvent(new Event('input', {bubbles: true}));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));  // painted
  return performance.now() - t0;
}"""


def app_browser_figures(moves: int = 40) -> tuple[float, list[float]]:
    """(peak resident memory (VmHWM, MB) of a streamlit server after one browser session has
    visited every page on the shipped model, Manifold slider moves: input to painted frame, ms)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server, wait_idle

    pids: list[int] = []
    with streamlit_server(pid_out=pids) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for link in ("", "Train", "Latent_space", "Reconstruct", "Draw", "Interpolate", "Manifold"):
            page.goto(f"{url}/{link}")
            wait_idle(page, 180_000)
        page.wait_for_selector(".live canvas.digit", timeout=60_000)
        slider = [page.evaluate(SLIDER_MOVE, [i % 2, round(-3 + 0.15 * i, 2)]) for i in range(moves + 5)][5:]
        browser.close()
        status = Path(f"/proc/{pids[0]}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024
        return rss, slider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mnist-z2")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--app", action="store_true", help="also the AppTest rerun and the server's memory")
    parser.add_argument("--eval-images", type=int, default=200, help="test images for the L_K rate")
    parser.add_argument("--k", type=int, default=5000)
    args = parser.parse_args()

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.set_grad_enabled(False)
    model = load_checkpoint(args.model, device).eval()
    dims = model.config.latent_dim
    point = torch.zeros(1, dims)

    def one_point():
        png_bytes(upscale(make_grid(decode_mean(model, point), 1, pad=0), 8))

    grid_z = torch.zeros(400, dims)
    grid_z[:, :2] = latent_grid(20, 0.05, 0.95, 2)

    def manifold():
        png_bytes(make_grid(decode_mean(model, grid_z), 20, pad=0), scale=1)

    test = load_dataset("mnist", "test").images.float() / 255.0
    rows = [
        ("decode one point -> PNG (ms)", timed(one_point, args.repeats), 5.0),
        ("20x20 manifold grid -> PNG (ms)", timed(manifold, max(20, args.repeats // 10)), 30.0),
        ("encode the 10k test set (ms)", timed(lambda: encode_means(model, test), 10, 1, sync), 300.0),
    ]
    if args.app:
        rows.append(("AppTest rerun of a one-widget page: floor (ms)", bare_rerun_ms(30), 50.0))
        rows.append(("Manifold page rerun, AppTest (ms)", app_rerun_ms(30), 50.0))
        rss, slider = app_browser_figures()
        rows.append(("slider move to painted image, chromium (ms)", slider, 150.0))

    print(
        f"# interaction: {args.model} on {device} ({torch.get_num_threads()} threads), "
        f"torch {torch.__version__}"
    )
    print_rows(rows, compute_ceilings(model.config, len(test)) if device.type == "cpu" else {})
    if args.app:
        print(
            f"| {'app server peak RSS, every page visited (MB)':50} | {rss:9.0f} "
            f"| {'':>9} | {'':>7} | {'':>12} | {'':>9} | {'':>8} |"
        )
    evaluation_rate(model, args.k, args.eval_images, device, sync)


def print_rows(rows: list, ceilings: dict[str, float]) -> None:
    """The table: p50, p95, target and, for compute rows, the ceiling and the fraction."""
    print(
        "ceiling: the row's own matrix products alone on this CPU (bench/limits.py); fraction = "
        "ceiling / p50 (the rest is Python, image encoding and element-wise work)"
    )
    head = f"| {'what':50} | {'p50':>9} | {'p95':>9} | {'target':>7} | {'p50 / target':>12} |"
    print(f"{head} {'ceiling':>9} | {'fraction':>8} |")
    print(f"|{'-' * 52}|{'-' * 11}|{'-' * 11}|{'-' * 9}|{'-' * 14}|{'-' * 11}|{'-' * 10}|")
    for name, values, target in rows:
        p50, p95 = statistics.median(values), pct(values, 95)
        ceiling = ceilings.get(name)
        limit = f"{ceiling:9.2f} | {ceiling / p50:8.1%} |" if ceiling else f"{'':>9} | {'':>8} |"
        print(f"| {name:50} | {p50:9.2f} | {p95:9.2f} | {target:7.0f} | {p50 / target:12.2f} | {limit}")


def compute_ceilings(config, test_images: int) -> dict[str, float]:
    """Milliseconds of each compute row's matrix products alone (bench/limits.py), by row name."""
    from bench.limits import decoder_seconds, forward_products, mm_seconds

    return {
        "decode one point -> PNG (ms)": 1000 * decoder_seconds(config, 1),
        "20x20 manifold grid -> PNG (ms)": 1000 * decoder_seconds(config, 400),
        "encode the 10k test set (ms)": 1000 * mm_seconds(forward_products(config, test_images)[0], 5),
    }


def evaluation_rate(model, k: int, images: int, device: torch.device, sync) -> None:
    """Print how many test images per second L_K evaluates, and the full test set's time."""
    x = eval_images("mnist", "test", True, images)[0]
    sync()
    start = time.perf_counter()
    importance_per_image(model, x, k)
    sync()
    rate = len(x) / (time.perf_counter() - start)
    print(f"\n# evaluation: L_K, K = {k}, {len(x)} binarised test images on {device}")
    print(f"{rate:.1f} images/s measured; the full 10,000-image test set at this rate: {10_000 / rate:.0f} s")
    if device.type == "cpu" and model.config.arch == "mlp":
        from bench.limits import decoder_seconds

        rows = 2048
        ceiling = decoder_seconds(model.config, rows) * k / rows  # s per image
        print(
            f"ceiling (the decoder's matrix products alone): {1 / ceiling:.1f} images/s; measured = "
            f"{rate * ceiling:.0%} of it (bench/limits.py)"
        )


if __name__ == "__main__":
    main()
