"""The launcher that warms the pages' imports while the server starts (explorer/ui/serve.py)."""

from __future__ import annotations

import subprocess
import sys

from explorer.ui.serve import LAZY, ROOT, imported_modules, modules_to_warm, page_files, warm


def test_the_modules_warmed_are_those_the_pages_import(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("import json, streamlit as st\nfrom explorer.ui.models import model_or_stop\n"
                    "from . import sibling\nif True:\n    import csv\n")  # fmt: skip
    assert imported_modules([page]) == ["json", "streamlit", "explorer.ui.models"]  # top level only


def test_every_page_is_read_and_torch_and_the_model_picker_are_among_them():
    files = page_files()
    assert files[0] == ROOT / "app.py" and len(files) == 1 + len(list((ROOT / "pages").glob("*.py")))
    names = imported_modules(files)
    assert {"torch", "streamlit", "explorer.ui.models"} <= set(names)


def test_a_module_that_fails_to_import_is_left_for_the_page():
    took = warm(["json", "explorer.no_such_module"])
    assert list(took) == ["json"] and took["json"] >= 0


def test_the_launcher_passes_streamlit_options_through():
    out = subprocess.run(
        [sys.executable, "-m", "explorer.ui.serve", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "--server.port" in out.stdout, out.stderr[-2000:]


def test_the_libraries_the_pages_import_on_first_use_are_warmed_too():
    names = modules_to_warm()
    assert names[: len(imported_modules(page_files()))] == imported_modules(page_files())
    assert set(LAZY) <= set(names) and len(names) == len(set(names))
    assert "umap" not in names and "openTSNE" not in names  # only wide models' maps want them


def test_the_imports_are_done_before_the_server_starts(monkeypatch):
    """In the main thread and before Streamlit's ``run``: a thread importing beside the starting
    server raced the first page's own imports (a half-initialised pandas)."""
    import threading

    from streamlit.web import cli

    import explorer.ui.serve as serve

    seen = {}

    def run():
        seen["warm"] = all(name in sys.modules for name in ("torch", "sklearn.mixture", "explorer.ui.models"))
        seen["threads"] = [t.name for t in threading.enumerate() if t.name == "warm-imports"]
        seen["argv"] = list(sys.argv)

    monkeypatch.setattr(cli, "main", run)
    monkeypatch.setattr(sys, "argv", ["serve"])
    serve.main(["--server.port", "1"])
    assert seen["warm"] and not seen["threads"]
    assert seen["argv"][1:] == ["run", str(serve.ENTRY), "--server.port", "1"]


def test_the_server_leaves_a_core_to_the_browser(monkeypatch):
    """One intra-op thread fewer than the cores (at least one); OMP_NUM_THREADS, when set, wins."""
    import torch
    from streamlit.web import cli

    import explorer.ui.serve as serve

    assert [serve.server_threads(n, {}) for n in (None, 1, 2, 16)] == [1, 1, 1, 15]
    assert serve.server_threads(16, {"OMP_NUM_THREADS": "4"}) is None
    before = torch.get_num_threads()
    seen = {}
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(serve.os, "cpu_count", lambda: 3)
    monkeypatch.setattr(cli, "main", lambda: seen.update(threads=torch.get_num_threads()))
    monkeypatch.setattr(sys, "argv", ["serve"])
    try:
        serve.main([])
    finally:
        torch.set_num_threads(before)
    assert seen["threads"] == 2


def test_the_imports_objects_are_out_of_the_collection_after_every_run(monkeypatch):
    """Streamlit runs a full garbage collection after every script run (``runner.postScriptGC``):
    over the 330,000 objects that PyTorch, scikit-learn and plotly leave, 0.17-0.3 s of every
    click and page switch on a 2-core host. The launcher freezes them (``gc.freeze``) before the
    server starts, so the collection walks only what the pages make; Streamlit's setting stays on."""
    import gc

    from streamlit.web import cli

    import explorer.ui.serve as serve

    seen = {}
    frozen = lambda: seen.update(frozen=gc.get_freeze_count(), torch="torch" in sys.modules)  # noqa: E731
    monkeypatch.setattr(cli, "main", frozen)
    monkeypatch.setattr(sys, "argv", ["serve"])
    try:
        serve.main([])
    finally:
        gc.unfreeze()
    assert seen["torch"] and seen["frozen"] > 100_000
    from streamlit import config

    assert config.get_option("runner.postScriptGC")  # memory is still given back after every run


def test_the_warm_up_logs_no_warning_about_a_runtime_not_there_yet():
    """Each ``st.cache_data`` decorator imported before the server exists logged "No runtime
    found, using MemoryCacheStorageManager": ten lines at every start, about nothing (every call
    comes once the server runs). The warm-up filters that message out, and only that one."""
    import logging

    import explorer.ui.serve as serve

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger(serve.CACHE_LOGGER)
    logger.addHandler(keep := Keep())
    try:
        serve.warm(["explorer.ui.models"])
        logger.warning("No runtime found, using MemoryCacheStorageManager")
        logger.warning("something else")
    finally:
        logger.removeHandler(keep)
    assert seen == ["something else"]


def test_after_the_warm_up_a_figure_like_the_pages_imports_nothing():
    """plotly imports each trace type's validators on first use, Pillow its format plugins: 0.1 s
    the first page with a figure waited for. In a fresh interpreter, after ``warm_first_use``, the
    latent map with its density, a close-up's updated layout, a bar chart and a PNG import nothing."""
    code = """
import sys, io
import numpy as np
from explorer.ui.serve import warm_first_use
from explorer.pictures.latent_plots import latent_scatter
from explorer.pictures.plots import PALETTE
import plotly.graph_objects as go
from PIL import Image
warm_first_use()
before = set(sys.modules)
fig = latent_scatter(np.zeros((3, 2)).tolist(), [0, 1, 2])
fig.add_trace({"type": "contour", "z": [[0, 1], [1, 0]], "contours": {"start": 0, "end": 1, "size": 0.5}})
fig.update_layout(showlegend=False, xaxis_range=[0, 1], yaxis_range=[0, 1])
fig.add_trace(go.Scatter(x=[0], y=[0], mode="lines", line={"dash": "dash", "color": PALETTE[0]}))
go.Figure(go.Bar(x=[1], y=[2]), layout={"title": "t"}).to_json()
fig.to_json()
Image.new("L", (28, 28)).save(io.BytesIO(), format="PNG")
print(sorted(set(sys.modules) - before))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_the_warm_up_asks_streamlits_first_element_question(monkeypatch):
    """Streamlit's first element of a process asks ``env_util.is_repl`` (``inspect.stack()``, whose
    first call maps every loaded module to its file: 0.05-0.08 s on a 2-core host, 0.005 s after):
    the warm-up asks it first, and Streamlit's element code still asks that same function."""
    import inspect

    from streamlit import delta_generator, env_util

    from explorer.ui.serve import warm_first_use

    asked = []
    monkeypatch.setattr(env_util, "is_repl", lambda: asked.append(1) or False)
    warm_first_use()
    assert asked == [1]
    assert "env_util.is_repl()" in inspect.getsource(delta_generator._maybe_print_use_warning)
