"""Start the explorer's Streamlit server with the pages' imports already done.

``python -m explorer.ui.serve [streamlit options]`` is ``streamlit run app.py [options]`` plus one
thing: before the server starts, it imports every module the app's pages import, the
libraries their code imports on first use, and what plotly and Pillow import at their first figure
and picture (PyTorch alone takes about 1.5 s on a 2-core host,
scikit-learn with SciPy 2.7 s), so the first visitor's page does not wait for them: Streamlit runs
each session's script in the server's own process, where ``sys.modules`` is shared.

The imports come first, in the main thread, not beside the starting server in a thread of their
own: a page importing a module (plotly reaching for pandas) while that thread was importing it
met Python's import deadlock detection, which hands back the module half initialised
("partially initialized module 'pandas' has no attribute 'Series'"). The server answers a few
seconds later instead. ``make run`` and the browser tests start the app this way; ``streamlit run
app.py`` still works, with a slower first view (bench/pages.py measures both).

It also leaves one core to the browser and to Streamlit's own thread: PyTorch's intra-op threads
are one fewer than the cores (``OMP_NUM_THREADS``, when set, decides instead). A page's tensor work
is small (a click encodes one image, searches 10,000 for its neighbours); spread over every core
of a 2-core host beside a busy browser, each operation waited for its second thread (a click's
script run: median 0.27 s with two threads, 0.11 s with one, on that host under load).

And it freezes the imports' objects (``gc.freeze``): Streamlit runs a full garbage collection after
every script run (``runner.postScriptGC``), which walked the 330,000 objects PyTorch, scikit-learn
and plotly leave behind, 0.17-0.3 s of every click and page switch on that host. Frozen, they are
left out of it; what the pages make is still collected after every run.
"""

from __future__ import annotations

import ast
import gc
import importlib
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "app.py"
# Libraries the pages' code imports on first use rather than at the top (measured on a 2-core host:
# scikit-learn with SciPy about 2.7 s, for the stranger detector of every model page and the
# Theory page's EM; SciPy's ndimage for every upload). The t-SNE and UMAP libraries stay lazy:
# only maps of wide models ask for them, and numba's start is seconds of CPU and memory.
LAZY = (
    "sklearn.mixture",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "scipy.ndimage",
    "scipy.special",
    "scipy.optimize",
    "scipy.interpolate",
)


def page_files(root: Path = ROOT) -> list[Path]:
    """The app's scripts: ``app.py`` and every ``pages/*.py`` under ``root``."""
    return [root / "app.py", *sorted((root / "pages").glob("*.py"))]


def imported_modules(paths: list[Path]) -> list[str]:
    """Every module the scripts ``paths`` import at their top level (``import a.b`` and ``from a.b
    import c``), in the order first met, read from their source without running them."""
    names: list[str] = []
    for path in paths:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found = [node.module]
            else:
                continue
            names += [name for name in found if name not in names]
    return names


def modules_to_warm(root: Path = ROOT) -> list[str]:
    """What the warm-up imports: the pages' own imports, then LAZY."""
    names = imported_modules(page_files(root))
    return names + [name for name in LAZY if name not in names]


class _NoRuntimeYet(logging.Filter):
    """Drops Streamlit's "No runtime found, using MemoryCacheStorageManager" warning, which each
    ``st.cache_data`` decorator logs when its module is imported before the server exists (ten
    lines at every start): the decorator only checks its settings then, and every call, made once
    the server runs, uses the server's caches."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No runtime found" not in record.getMessage()


CACHE_LOGGER = "streamlit.runtime.caching.cache_data_api"


def warm(modules: list[str]) -> dict[str, float]:
    """Import ``modules`` one after another; seconds each took (a module that fails to import is
    left for the page, which reports it the way it always does)."""
    quiet = logging.getLogger(CACHE_LOGGER)
    if not any(isinstance(f, _NoRuntimeYet) for f in quiet.filters):
        quiet.addFilter(_NoRuntimeYet())
    took = {}
    for name in modules:
        start = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception:  # the page's own import raises it again, where the user sees it
            continue
        took[name] = time.perf_counter() - start
    return took


def warm_first_use() -> float:
    """Do what the first page of a fresh server did on first use, and every later page did not;
    seconds it took: build and serialise one plotly figure of every trace type and layout part the
    pages draw (plotly imports each one's validators on first use, 137 modules), load Pillow's image
    formats (imported at the first encode), and Streamlit's REPL check (below). Sampled in a fresh
    server's first deep link on a 2-core host: 80 ms the REPL check, 70-90 ms plotly's imports."""
    import plotly.graph_objects as go
    from PIL import Image
    from streamlit import env_util

    start = time.perf_counter()
    grid = [[0.0, 1.0], [1.0, 0.0]]
    fig = go.Figure(
        [
            go.Scatter(x=[0], y=[0], mode="lines+markers+text", customdata=[0], hovertemplate="%{x}",
                       marker={"size": 4, "symbol": "star", "line": {"width": 1}}, line={"dash": "dash"},
                       selected={"marker": {"size": 7}}, unselected={"marker": {"opacity": 0.2}}),
            go.Scattergl(x=[0], y=[0], mode="markers", marker={"size": 4}),
            go.Contour(z=grid, contours={"start": 0, "end": 1, "size": 0.5}),
            go.Histogram2dContour(x=[0, 1], y=[1, 0]),
            go.Heatmap(z=grid),
            go.Bar(x=[0], y=[1]),
            go.Image(z=[[[0, 0, 0]]]),
        ],
        layout={"title": "warm", "xaxis": {"range": [0, 1], "title": "z1"}, "yaxis": {"scaleanchor": "x"},
                "legend": {"orientation": "h"}, "margin": {"l": 40}, "annotations": [{"text": "a"}],
                "shapes": [{"type": "line"}], "updatemenus": [{"type": "buttons"}], "sliders": [{}],
                "uirevision": "warm"},
    )  # fmt: skip
    fig.update_xaxes(type="log")
    fig.to_json()
    Image.init()
    # Streamlit asks once per process, at the first element a page sends, whether it runs in a
    # REPL: ``inspect.stack()``, whose first call maps every loaded module to its file (80 ms
    # with PyTorch's thousands). Asked here, that map is made before the first visitor.
    env_util.is_repl()
    return time.perf_counter() - start


def server_threads(cores: int | None, environ=os.environ) -> int | None:
    """PyTorch's intra-op threads for the server on ``cores`` cores: one fewer (at least one), or
    None where ``OMP_NUM_THREADS`` is set (PyTorch then follows it)."""
    if "OMP_NUM_THREADS" in environ:
        return None
    return max(1, (cores or 1) - 1)


def main(argv: list[str] | None = None) -> None:
    """Import the pages' modules, set PyTorch's threads (``server_threads``), then run
    Streamlit's ``run`` command on ``app.py`` with ``argv`` (Streamlit's own options)."""
    from streamlit.web import cli

    warm(modules_to_warm())
    warm_first_use()
    threads = server_threads(os.cpu_count())
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    gc.freeze()  # the imports' objects: out of the full collection Streamlit runs after every script run
    sys.argv = ["streamlit", "run", str(ENTRY), *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
