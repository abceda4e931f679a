"""Small display helpers shared by pages. (The training form is ``explorer.ui.train_form``.)"""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def distinct_uploads(uploads: list) -> tuple[list, list[tuple[str, str]]]:
    """The uploaded files with repeats of the same content left out (a file added twice), and the
    (repeat's name, first name) pairs that were left out."""
    import hashlib

    seen: dict[str, str] = {}
    kept, repeats = [], []
    for upload in uploads:
        digest = hashlib.sha256(upload.getvalue()).hexdigest()
        if digest in seen:
            repeats.append((upload.name, seen[digest]))
        else:
            seen[digest] = upload.name
            kept.append(upload)
    return kept, repeats


def _fit_state(key: str | None, low, high) -> None:
    """A widget's remembered value (another model's, with a longer test set) brought within
    [low, high] before the widget is drawn: Streamlit refuses a value outside its bounds."""
    import streamlit as st

    if key is not None and key in st.session_state:
        value = st.session_state[key]
        if isinstance(value, tuple | list):
            fitted = type(value)(min(max(v, low), high) for v in value)
        elif isinstance(value, int | float):
            fitted = min(max(value, low), high)
        else:
            return
        if fitted != value:  # written only when it must change (a write makes the default a conflict)
            st.session_state[key] = fitted


def data_slider(where, label: str, low, high, value, step=None, *, key: str | None = None, **kwargs):
    """``where.slider`` (``where``: ``st``, ``st.sidebar`` or a column) for bounds that come from
    the data (a test set's size, a code's spread): ``value`` is clamped into [low, high], and when
    the data leave one value (``high <= low``: a folder with one test image) it is shown as text
    and returned, where Streamlit would raise ``StreamlitInvalidMinMaxError``."""
    if high <= low:
        where.caption(f"{label}: {low:,}" if isinstance(low, int) else f"{label}: {low:g}")
        return low
    _fit_state(key, low, high)
    value = min(max(value, low), high)
    return where.slider(label, low, high, value, step, key=key, **kwargs)


def data_number_input(
    where, label: str, low: int, high: int, value: int, *, key: str | None = None, **kwargs
):
    """``where.number_input`` of an index from ``low`` to ``high`` that come from the data (a test
    image's number): ``value`` clamped into range (a default of 2 in a test set of two), a single
    possible value shown as text and returned."""
    import streamlit as st

    if high <= low:
        where.caption(f"{label}: {low:,} (the only one)")
        return low
    _fit_state(key, low, high)
    if key is not None and key in st.session_state:  # its own value: no default beside it, which
        return where.number_input(label, low, high, key=key, **kwargs)  # Streamlit warns about
    return where.number_input(label, low, high, min(max(value, low), high), key=key, **kwargs)


def uploaded_image(where, dataset: str, key: str, hint: str):
    """One picture uploaded in ``where`` (a column, or ``st``) and prepared the way ``dataset``'s
    own images were (``preprocess_image``): (image (C, H, W) in [0, 1], file name), or None with
    ``hint`` shown while nothing is uploaded, or the one-line reason a file cannot be used."""
    import streamlit as st

    from explorer.data.uploads import preprocess_image
    from explorer.errors import ImageError
    from explorer.pictures.reading import UPLOAD_TYPES

    upload = where.file_uploader("An image", type=UPLOAD_TYPES, key=key)
    if upload is None:
        st.info(hint)
        return None
    try:
        return preprocess_image(upload.getvalue(), dataset), upload.name
    except ImageError as exc:
        st.error(f"{upload.name}: {exc}")
        return None


def chart(where, fig, **kwargs):
    """``where.plotly_chart(fig, **kwargs)`` (``where``: ``st``, a column, the sidebar), with the
    figure's titles readable at any width (``plots.readable_titles``: clear of plotly's toolbar,
    long ones on two lines). Every chart of the app is shown through here."""
    from explorer.pictures.plots import readable_titles

    return where.plotly_chart(readable_titles(fig), **kwargs)


EARLY_CHART = "plotly-early"  # the container of load_charts_early's chart
EARLY_CHART_KEY = "plotly-early-chart"  # and the chart's own key


def load_charts_early(where) -> None:
    """An empty chart, hidden, as the page's first element (``where``: the sidebar), so that the
    browser fetches and compiles Plotly (4.7 MB of JavaScript, which Streamlit loads on a page's
    first chart) while the server still computes the page, instead of after its first chart
    arrives."""
    import plotly.graph_objects as go

    box = where.container(key=EARLY_CHART, height=1, border=False)
    # hidden with its wrapper, which would leave a gap above the sidebar's links
    box.html(f"<style>div:has(> .st-key-{EARLY_CHART}), .st-key-{EARLY_CHART} {{ display: none; }}</style>")
    box.plotly_chart(go.Figure(), config={"staticPlot": True}, key=EARLY_CHART_KEY)


PHONE_WIDTH = 640  # px: below this Streamlit stacks a row's columns one under the other


def phone_first(key: str) -> None:
    """On a phone (a screen narrower than PHONE_WIDTH, where Streamlit stacks columns), put the
    column holding the container keyed ``key`` first, above its row's other columns (the
    Manifold page's decoder above its grid); a wider screen keeps the columns as laid out."""
    import streamlit as st

    st.html(
        f"<style>@media (max-width: {PHONE_WIDTH}px) {{ [data-testid=stHorizontalBlock] > "
        f"[data-testid=stColumn]:has(.st-key-{key}) {{ order: -1; }} }}</style>"
    )


def phone_columns(key: str, per_row: int) -> None:
    """On a phone (narrower than PHONE_WIDTH, where Streamlit stacks columns one per row), keep the
    columns inside the container keyed ``key`` side by side, ``per_row`` to a row (the Reconstruct
    page's eight test images, stacked, put its upload box 2,700 px down); a wider screen keeps
    them as laid out."""
    import streamlit as st

    share = f"calc({100 / per_row:.4f}% - 1rem)"
    st.html(
        f"<style>@media (max-width: {PHONE_WIDTH}px) {{ .st-key-{key} [data-testid=stHorizontalBlock] "
        f"{{ flex-flow: row wrap; }} .st-key-{key} [data-testid=stColumn] {{ min-width: {share} "
        f"!important; max-width: {share}; flex: 1 1 {share}; }} }}</style>"
    )


def phone_square(key: str, margins: int) -> None:
    """On a phone (narrower than PHONE_WIDTH), cut the chart in the container keyed ``key`` to
    the square picture it draws (its axes ``constraintoward`` the top) plus ``margins`` px of axes
    and titles: a square of the screen's width in a chart 500 px high left 100-200 px of blank
    around it (the Manifold page's grid)."""
    import streamlit as st

    st.html(
        f"<style>@media (max-width: {PHONE_WIDTH}px) {{ .st-key-{key} {{ max-height: calc(100vw - 32px - "
        f"70px + {margins}px); overflow: hidden; }} }}</style>"
    )
