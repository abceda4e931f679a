"""Helpers for the AppTest tests of the pages: open a page, fill the Train form by setting name,
start a run and wait for its state (failing, with the run's last status, when it never comes)."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer.ui.train_form import widget_key

ROOT = Path(__file__).resolve().parent.parent
PAGE_FILES = ("app.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py")))
TRAIN = "pages/1_Train.py"
LATENT = "pages/2_Latent_space.py"
MANIFOLD = "pages/3_Manifold.py"
RECONSTRUCT = "pages/4_Reconstruct.py"
DRAW = "pages/5_Draw.py"
INTERPOLATE = "pages/6_Interpolate.py"
TRAVERSALS = "pages/7_Traversals.py"
THEORY = "pages/8_Theory.py"
PAPER = "pages/9_Paper.py"
TITLES = {
    "app.py": "VAE Explorer",
    TRAIN: "Train",
    LATENT: "Latent space",
    MANIFOLD: "Manifold",
    RECONSTRUCT: "Reconstruct",
    DRAW: "Draw",
    INTERPOLATE: "Interpolate",
    TRAVERSALS: "Traversals and attribute vectors",
    THEORY: "From EM to AEVB",
    PAPER: "The paper's experiments",
}


def page(name: str = "app.py") -> AppTest:
    """A session of the app (entry script app.py, as under `streamlit run`) opened on ``name``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    return at if name == "app.py" else at.switch_page(name)


def setting(at: AppTest, name: str):
    """The Train form's widget of setting ``name`` (found by its key, not its label)."""
    return at.get_by_key(widget_key(name))


def labelled(widgets, label: str):
    """The one widget of ``widgets`` (e.g. ``at.text_input``) with this label."""
    found = [w for w in widgets if w.label == label]
    assert len(found) == 1, f"{len(found)} widgets labelled {label!r}"
    return found[0]


def fill(at: AppTest, run: str | None = None, **values) -> AppTest:
    """Set Train form settings by name (``epochs=1, hidden=(16,)``) and the run name. The model
    kind and architecture, above the form, go first, with a rerun (as a browser does), since they
    enable the fields that apply to them; no rerun after the form's own fields."""
    from explorer.ui.train_form import ABOVE_FORM

    above = {k: v for k, v in values.items() if k in ABOVE_FORM}
    for name, value in above.items():
        setting(at, name).select(value)
    if above:
        at.run()
    values = {k: v for k, v in values.items() if k not in ABOVE_FORM}
    for name, value in values.items():
        widget = setting(at, name)
        if hasattr(widget, "select"):
            widget.select(value)
        elif isinstance(value, tuple):
            widget.set_value(",".join(map(str, value)))
        else:
            widget.set_value(value)
    if run is not None:
        labelled(at.text_input, "Run name").set_value(run)
    return at


def start(at: AppTest) -> AppTest:
    """Press Start training and rerun the page."""
    return at.get_by_key("start-training").click().run()


def small_run(at: AppTest, run: str, **values) -> AppTest:
    """Fill the form for a run that takes seconds on a CPU (one epoch of 1,000 images, a narrow
    network unless the start point fixes it) and press Start."""
    values = {"epochs": 1, "limit": 1000, "device": "cpu", **values}
    if not setting(at, "hidden").disabled:
        values.setdefault("hidden", (16,))
    return start(fill(at, run=run, **values))


def status(folder: Path) -> dict:
    """The run's status.json, or {} while it has none (or it is being replaced)."""
    try:
        return json.loads((folder / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_for(folder: Path, *states: str, seconds: float = 120) -> dict:
    """Wait until the run's state is one of ``states``; returns its status. Fails, saying the
    last status seen, if that does not happen within ``seconds``."""
    deadline = time.time() + seconds
    while True:
        now = status(folder)
        if now.get("state") in states:
            return now
        if time.time() > deadline:
            raise AssertionError(f"{folder.name} did not reach {states} in {seconds:g} s; status: {now}")
        time.sleep(0.2)


def wait_for_file(path: Path, seconds: float = 120) -> None:
    """Wait until ``path`` exists; fails after ``seconds``."""
    deadline = time.time() + seconds
    while not path.exists():
        if time.time() > deadline:
            raise AssertionError(f"{path} did not appear in {seconds:g} s")
        time.sleep(0.2)


def spec(chart) -> dict:
    """A plotly chart element's figure, as the browser receives it."""
    return json.loads(chart.proto.spec)


def _values(array) -> list:
    """A trace's coordinates from a figure spec: a list, or plotly's base64 typed array."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def select_points(at: AppTest, key: str, points: list[tuple[int, int]]) -> AppTest:
    """Rerun the page as a browser does after a click on the plotly chart keyed ``key`` (made
    with ``on_select`` and ``selection_mode="points"``): its selection state holds ``points``,
    each (curve number, point index) with that point's x and y from the chart's figure, sent with
    every other widget's value. AppTest has no method for a chart's selection (the chart is not
    a widget it can set), so this builds the widget state the browser would send."""
    chart = next(c for c in charts(at) if c.proto.id.endswith(f"-{key}"))
    data = spec(chart)["data"]
    chosen = [
        {"curve_number": c, "point_number": i, "point_index": i,
         "x": _values(data[c]["x"])[i], "y": _values(data[c]["y"])[i]}
        for c, i in points
    ]  # fmt: skip
    selection = {
        "points": chosen,
        "point_indices": [p["point_index"] for p in chosen],
        "box": [],
        "lasso": [],
    }
    states = at._tree.get_widget_states()
    state = states.widgets.add()
    state.id, state.string_value = chart.proto.id, json.dumps({"selection": selection})
    return at._run(states)


def png(image: Image.Image) -> bytes:
    """The bytes of ``image`` as a PNG file (what an upload carries)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def pictures_shown(at: AppTest) -> int:
    """How many pictures the page drew: images, plotly charts and in-browser decoders."""
    return sum(len(at.get(kind)) for kind in ("image", "plotly_chart", "bidi_component"))


def assert_page_shows_the_model(at: AppTest, name: str, drawings: bool = True) -> None:
    """The page ``name`` ran to its output for the chosen model: no exception or error, its
    title, and pictures of the model's work (the Train page: its form; the Paper page shows the
    paper's runs, not the chosen model). ``drawings``: False for a model of photographs, whose Draw
    page says instead that it takes no drawings."""
    assert not at.exception, (name, [e.value for e in at.exception])
    assert not at.error, (name, [e.value for e in at.error])
    assert [t.value for t in at.title] == [TITLES[name]], name
    if name == PAPER:
        return
    if name == THEORY:  # its first tab, EM on a mixture, does not depend on the model
        assert at.get_by_key("em-figure") is not None, name
        return
    if name == TRAIN:
        assert at.get_by_key("start-training") is not None
    elif name == DRAW and not drawings:
        assert any("not of drawings" in i.value for i in at.info), name
    elif name == TRAVERSALS and not pictures_shown(at):  # an untrained model: nothing to sweep
        assert any(w.value.startswith("No active unit") for w in at.warning), name
    else:
        assert pictures_shown(at) > 0, name


def charts(at: AppTest) -> list:
    """The page's Plotly charts, but for the hidden one that makes the browser load Plotly early
    (``explorer.ui.widgets.load_charts_early``)."""
    from explorer.ui.widgets import EARLY_CHART_KEY

    return [c for c in at.get("plotly_chart") if c.key != EARLY_CHART_KEY]


def captions(at: AppTest) -> list[str]:
    """The captions under every image on the page."""
    return [i.proto.imgs[0].caption for i in at.get("image")]


def live_data(at: AppTest) -> tuple[dict, list]:
    """The header and arrays the Manifold page hands to its in-browser decoder."""
    from explorer.ui.live import unpack

    return unpack(at.get("bidi_component")[0].proto.bytes)
