"""Shareable views: the model, the model beside it, the map, the density toggle and the clicked
test image live in the page's address (``st.query_params``), so a link opens exactly that view.
The address is read when a session starts, and rewritten on every run after that; when it changes
to one the app did not just write (the browser's Back and Forward), the view follows it.

Every key is checked by one validator, ``read_address``: a value the app would not have written
itself (``point=²``, 5,000 nines, Arabic-Indic digits, an unknown model or map) is ignored and named
in one warning, never parsed. What only the model can refuse (a test image beyond its test set, a
t-SNE or UMAP map of a 2-D latent space) is checked by ``settle_view`` once the model is loaded:
said once, and left out of the address from then on."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import streamlit as st

RESTORED = "_view_restored"  # session state: the address has been read
UNSETTLED = "_view_unsettled"  # session state: the address's values still to check against the model
CHOSEN_MODEL = "model"
BESIDE = "beside"
MAP = "map"
DENSITY = "density"
PICKED = "picked"
WRITTEN = "_view_written"  # session state: the address as the app last wrote or found it
# The widgets that show a view's value, by the session-state key the value lives on in (a widget's
# own key keeps its old value across reruns, so Back must set it too).
WIDGET_OF = {CHOSEN_MODEL: "model_picker", BESIDE: "beside_picker", MAP: "map-choice", DENSITY: DENSITY}
NO_BESIDE = "(none)"  # the "Beside it" box's first choice
MAPS = ("pca", "tsne", "umap")
POINT_DIGITS = 9  # a test-image number in the address: at most 9 ASCII digits (< 10**9 images)
SHOWN = 40  # characters of a refused value, quoted, in the warning
RULES = {  # what each key of the address may hold, as the warning says it
    "model": "a model listed in the sidebar",
    "beside": "a model listed in the sidebar",
    "map": "pca, tsne or umap",
    "density": "0 or 1",
    "point": "a test image's number",
}

PAGE_KEYS = ("tab",)  # a page's own keys (the Theory page's tab), kept beside the view it writes
RUN_PREFIX = "runs/"  # the picker names a run of runs/NAME so: "runs/NAME"


@dataclass
class Address:
    """The view an address asks for, every value checked; ``wrong`` lists the refused ones as
    ``key='value'`` (the value cut to ``SHOWN`` characters)."""

    model: str | None = None
    beside: str | None = None
    map: str | None = None
    density: bool | None = None
    point: int | None = None
    wrong: list[str] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)  # keys given more than once (the last is read)


def _point(value: str) -> int | None:
    """A test-image number: 1 to POINT_DIGITS ASCII digits (``str.isdigit`` also accepts '²' and
    '٣', which ``int`` refuses or reads as 3), else None."""
    if 0 < len(value) <= POINT_DIGITS and value.isascii() and value.isdigit():
        return int(value)
    return None


def _shown(value: str) -> str:
    """``value`` quoted as Python writes it, cut to at most SHOWN characters of quoted text."""
    cut = value[:SHOWN]
    while len(repr(cut)) > SHOWN:
        cut = cut[:-1]
    return repr(cut) + ("..." if cut != value else "")


def _model(value: str, models: Collection[str]) -> str | None:
    """``value`` as the picker's choice: itself, or a run named as the command line names it
    (``tiny`` for ``runs/tiny``) when no shipped model has that name."""
    if value in models:
        return value
    return f"{RUN_PREFIX}{value}" if f"{RUN_PREFIX}{value}" in models else None


def read_address(params: Mapping[str, str | list[str]], models: Collection[str]) -> Address:
    """Check every key the app reads from the address against what the app itself writes:
    ``model`` and ``beside`` among ``models`` (the picker's choices; a run also by its bare name,
    as the command line takes it), ``map`` in MAPS, ``density``
    0 or 1, ``point`` ASCII digits (at most POINT_DIGITS; whether the model's test set has that
    image is the page's check). A key given twice takes its last value, as ``st.query_params``
    does, and is named in ``repeated`` (``params`` with ``get_all``, as ``st.query_params``, or
    with lists of values); other keys are left alone. Never raises."""
    got = Address()
    checks = {
        "model": lambda v: _model(v, models),
        "beside": lambda v: _model(v, models),
        "map": lambda v: v if v in MAPS else None,
        "density": lambda v: {"0": False, "1": True}.get(v),
        "point": _point,
    }
    for key, check in checks.items():
        if key not in params:
            continue
        value = params.get_all(key) if hasattr(params, "get_all") else params[key]
        if isinstance(value, list | tuple):
            if len(value) > 1:
                got.repeated.append(f"{key} ({', '.join(_shown(str(v)) for v in value)})")
            value = value[-1] if value else ""
        value = str(value)
        parsed = check(value)
        if parsed is None:
            got.wrong.append(f"{key}={_shown(value)}")
        else:
            setattr(got, key, parsed)
    return got


def restore_view(models: Collection[str], default: str | None = None) -> None:
    """Copy a view from the address into the session state, once per session (``read_address``
    checks each value against ``models``, the picker's choices); the refused values are named in
    one warning. A model that is not here (a link from another machine, a removed run) is said so
    by name, and a clicked image in the link is kept on ``default``, the model shown instead
    (default: mnist-z2 when it is among ``models``, else the first)."""
    if st.session_state.get(RESTORED):
        _follow_history(models)
        return
    st.session_state[RESTORED] = True
    st.session_state[WRITTEN] = dict(st.query_params)
    st.session_state[UNSETTLED] = True  # settle_view: what only the model can refuse
    if default is None:
        default = "mnist-z2" if "mnist-z2" in models else next(iter(models), "")
    address = read_address(st.query_params, models)
    missing = [w for w in address.wrong if w.startswith("model=")]
    wrong = [w for w in address.wrong if not w.startswith("model=")]
    if missing:
        st.warning(
            f"There is no model {missing[0].split('=', 1)[1]} here (a link from another machine, or a "
            f"removed run); showing {default} instead."
        )
        if address.point is not None:
            st.session_state[PICKED] = (default, address.point)
    elif address.point is not None and not address.model:  # "?point=3" by hand: on the model shown
        st.session_state[PICKED] = (st.session_state.get(CHOSEN_MODEL, default), address.point)
    if address.repeated:
        st.warning(
            f"Given more than once in the address: {'; '.join(address.repeated)}. Only the last of "
            "each is read."
        )
        for entry in address.repeated:  # the address rewritten with the value shown
            key = entry.split(" ", 1)[0]
            st.query_params[key] = st.query_params.get_all(key)[-1]
        st.session_state[WRITTEN] = dict(st.query_params)
    if wrong:
        keys = dict.fromkeys(w.split("=", 1)[0] for w in wrong)
        st.warning(
            f"Ignored in the address: {', '.join(wrong)} ({'; '.join(f'{k}: {RULES[k]}' for k in keys)})."
        )
    for key in dict.fromkeys(w.split("=", 1)[0] for w in address.wrong):
        st.query_params.pop(key, None)  # said once: a page that shows no model (Paper) kept them
    st.session_state[WRITTEN] = dict(st.query_params)
    if address.model:
        st.session_state[CHOSEN_MODEL] = address.model
    if address.beside:
        st.session_state[BESIDE] = address.beside
    if address.map:
        st.session_state[MAP] = address.map
    if address.density:
        st.session_state[DENSITY] = True
    if address.model and address.point is not None:
        st.session_state[PICKED] = (address.model, address.point)


def leave_view_out() -> None:
    """On a page that shows no model (Paper): the view read from the address stays in the session
    for the model pages (which check it against their model), and the address holds none of it:
    it named an image or a map this page does not show."""
    if st.query_params:
        st.query_params.clear()
    st.session_state[WRITTEN] = {}


def history_step() -> bool | None:
    """Whether this run is the browser's Back or Forward (Streamlit's script-run context says so
    since 1.53); None where this Streamlit does not say."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else getattr(ctx, "is_history_navigation", None)


def _follow_history(models: Collection[str]) -> None:
    """Back or Forward in the browser changed the address to a view the app wrote earlier in this
    session: show that view (the model, the model beside it, the map, density, the clicked image;
    what the address leaves out takes its default). Only on a history step: a widget's rerun can
    carry the address from before the last run's (the browser had not yet heard of it), and that
    is not the user going back. An address the app did not write (no model, or a refused value)
    is left to the view already shown, which ``publish_view`` writes back."""
    now = dict(st.query_params)
    if history_step() is False or now == st.session_state.get(WRITTEN) or "model" not in now:
        return
    address = read_address(now, models)
    st.session_state[WRITTEN] = now
    if address.wrong or address.model is None:
        return
    view = {
        CHOSEN_MODEL: address.model,
        BESIDE: address.beside or NO_BESIDE,
        MAP: address.map or "pca",
        DENSITY: bool(address.density),
    }
    for key, value in view.items():
        st.session_state[key] = value
        st.session_state[WIDGET_OF[key]] = value
    if address.point is None:
        st.session_state.pop(PICKED, None)
    else:
        st.session_state[PICKED] = (address.model, address.point)
    st.session_state[UNSETTLED] = True  # an image the model lacks is refused again


def forget_point() -> None:
    """Take the clicked test image out of the view and out of the address (a page that finds the
    model has no such image)."""
    st.session_state.pop(PICKED, None)
    if "point" in st.query_params:
        st.query_params.pop("point")
        st.session_state[WRITTEN] = dict(st.query_params)


def settle_view(
    choice: str,
    latent_dim: int,
    test_count: Callable[[], int],
    beside_refusal: Callable[[str], str | None] | None = None,
) -> None:
    """Once per session, after ``restore_view``: refuse what the address asked that the model
    ``choice`` cannot show (a clicked test image #n past its ``test_count()`` test images; a t-SNE
    or UMAP map of a ``latent_dim``-2 latent space, which is drawn as z itself; a model beside it
    that ``beside_refusal(name)`` refuses, saying why: the model itself, one of another dataset),
    in one warning that says what is shown instead; the refused values leave the session state,
    and so the address (``publish_view``). ``test_count`` is called only when the address named an
    image."""
    if not st.session_state.pop(UNSETTLED, False):
        return
    refused = []
    beside = st.session_state.get(BESIDE)
    why = beside_refusal(beside) if beside_refusal and beside and beside != NO_BESIDE else None
    if why:
        del st.session_state[BESIDE]
        refused.append(f"beside={beside}: {why}")
    picked = st.session_state.get(PICKED)
    if picked and picked[0] == choice:
        count = test_count()
        if picked[1] >= count:
            del st.session_state[PICKED]
            refused.append(
                f"point={picked[1]}: "
                + (
                    f"{choice}'s test set holds one image, #0"
                    if count == 1
                    else f"{choice}'s test images run from #0 to #{count - 1:,}"
                )
                + ", so no "
                "image is opened"
            )
    asked = st.session_state.get(MAP, "pca")
    if latent_dim <= 2 and asked != "pca":
        del st.session_state[MAP]
        refused.append(
            f"map={asked}: {choice} has a 2-D latent space, so its map shows z itself (t-SNE and "
            "UMAP are for models of more latent dimensions)"
        )
    if refused:
        st.warning(f"Not used from the address: {'; '.join(refused)}.")


def address_name(choice: str, models: Collection[str] = ()) -> str:
    """The picker's ``choice`` as the address names it: a run by its bare name, as the command
    line does (``runs/tiny`` became ``runs%2Ftiny``), unless one of ``models`` has that name."""
    bare = choice.removeprefix(RUN_PREFIX)
    return bare if choice.startswith(RUN_PREFIX) and bare not in models else choice


def publish_view(choice: str, wide: bool = True, models: Collection[str] = ()) -> None:
    """Write the current view into the address (only what differs from the defaults; the map
    only for a ``wide`` model, one of more than two latent dimensions, which draws it); runs by
    their bare names where none of ``models`` (the picker's choices) is so named."""
    view = {"model": address_name(choice, models)}
    beside = st.session_state.get(BESIDE)
    if beside and beside != NO_BESIDE:
        view["beside"] = address_name(beside, models)
    if wide and st.session_state.get(MAP, "pca") != "pca":
        view["map"] = st.session_state[MAP]
    if st.session_state.get(DENSITY):
        view["density"] = "1"
    picked = st.session_state.get(PICKED)
    if picked and picked[0] == choice:
        view["point"] = str(picked[1])
    view.update({k: st.query_params[k] for k in PAGE_KEYS if k in st.query_params})  # the page's own
    if dict(st.query_params) != view:
        st.query_params.from_dict(view)
    st.session_state[WRITTEN] = view
