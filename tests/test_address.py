"""Every value the app reads from its address (``?model=...&point=...``) goes through one
validator: arbitrary strings for every key are either the value the app itself would write or
named in the "Ignored in the address" warning, never parsed by accident (``²``, ``٣``, 5,000
nines) and never an exception."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.ui.share import MAPS, POINT_DIGITS, RULES, read_address
from tests.apptest import LATENT, PAPER, RECONSTRUCT, page

MODELS = ("mnist-z2", "mnist-z5", "runs/my run")
KEYS = tuple(RULES)
values = st.text(max_size=60) | st.sampled_from(["²", "٣", "9" * 5000, "-1", "+3", " 3", "3 ", "0x1", ""])
lists = st.lists(values, min_size=1, max_size=3)


def accepted(key: str, value: str) -> bool:
    """What the app writes itself, spelled independently of the validator."""
    if key in ("model", "beside"):
        return value in MODELS or f"runs/{value}" in MODELS  # a run also by its bare name
    if key == "map":
        return value in MAPS
    if key == "density":
        return value in ("0", "1")
    return 0 < len(value) <= POINT_DIGITS and all(c in string.digits for c in value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), values | lists, max_size=7))
def test_every_key_is_either_accepted_exactly_or_named_as_ignored(params):
    got = read_address(params, MODELS)
    for key in KEYS:
        if key not in params:
            assert getattr(got, key) is None
            continue
        raw = params[key]
        value = raw[-1] if isinstance(raw, list) else raw  # the last of a repeated key
        named = any(w.startswith(f"{key}=") for w in got.wrong)
        if accepted(key, value):
            assert not named
            as_chosen = lambda v: v if v in MODELS else f"runs/{v}"  # noqa: E731
            reading = {"point": int, "density": lambda v: v == "1", "model": as_chosen, "beside": as_chosen}
            expected = reading.get(key, lambda v: v)
            assert getattr(got, key) == expected(value)
        else:
            assert named and getattr(got, key) is None
    assert all(len(w) < 80 for w in got.wrong)  # a long value is cut, not echoed whole
    repeated = [k for k in KEYS if isinstance(params.get(k), list) and len(params[k]) > 1]
    assert [r.split(" ", 1)[0] for r in got.repeated] == repeated  # each named, the last one read


@given(st.integers(0, 10**POINT_DIGITS - 1), st.sampled_from(MODELS), st.sampled_from(MAPS))
def test_what_the_app_writes_is_read_back(point, model, map_):
    got = read_address({"model": model, "point": str(point), "map": map_, "density": "1"}, MODELS)
    assert (got.model, got.point, got.map, got.density, got.wrong) == (model, point, map_, True, [])


@pytest.mark.parametrize("hostile", ["²", "٣", "9" * 5000, "3\x00", "1e3"])
def test_digit_lookalikes_are_refused(hostile):
    got = read_address({"model": "mnist-z2", "point": hostile}, MODELS)
    assert got.point is None and got.wrong and got.wrong[0].startswith("point=")


@pytest.mark.integration
@pytest.mark.parametrize("name", [LATENT, RECONSTRUCT, "app.py", PAPER])
@pytest.mark.parametrize(
    "params",
    [
        {"model": "mnist-z5", "point": "²"},
        {"model": "mnist-z5", "point": "9" * 5000, "density": "yes"},
        {"model": "mnist-z5", "point": "٣", "map": "tsne\n", "beside": "gone"},
        {"model": "../../etc", "point": "3"},
    ],
)
def test_pages_warn_about_hostile_addresses(shipped, name, params):
    at = page(name)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception and not at.error
    warned = " ".join(w.value for w in at.warning)
    refused = "Ignored in the address:" in warned and "point=" in warned
    assert refused or "There is no model '../../" in warned
    assert len(warned) < 600  # 5,000 nines are not echoed
    left = {key: str(at.query_params[key]) for key in at.query_params}
    assert "point" not in left or left["point"] in ("3", "['3']")  # the refused values leave the address
    assert not {"density", "map", "beside"} & set(left) and "../../" not in left.get("model", "")


def test_a_key_given_twice_is_said_so_and_the_address_keeps_the_value_read(shipped):
    """``?point=7&point=9`` opened #9 without a word, and the address kept both."""
    at = page(LATENT)
    at.query_params["model"] = "mnist-z2"
    at.query_params["point"] = ["7", "9"]
    at.run()
    assert not at.exception
    said = " ".join(w.value for w in at.warning)
    assert "Given more than once in the address: point ('7', '9')" in said
    assert at.query_params["point"] in ("9", ["9"])
    assert any("Test image #9" in m.value for m in [*at.markdown, *at.subheader])


def test_a_run_is_found_by_the_name_the_command_line_gives_it():
    """``?model=my run`` opens runs/my run (the CLI names runs so); a shipped model of the same
    name would win, since the picker lists both."""
    assert read_address({"model": "my run", "beside": "my run"}, MODELS).model == "runs/my run"
    assert read_address({"model": "mnist-z2"}, (*MODELS, "runs/mnist-z2")).model == "mnist-z2"
    assert read_address({"model": "nope"}, MODELS).wrong


def test_back_and_forward_show_the_view_their_address_names(shipped, monkeypatch):
    """The browser's Back and Forward change the address under a running session: the page shows
    that view (model, density, clicked image), what the address leaves out back at its default;
    the session's own view must not write itself back over it. (AppTest cannot press Back: its
    runs are made history steps here.)"""
    from explorer.ui import share

    monkeypatch.setattr(share, "history_step", lambda: True)
    at = page(LATENT)
    at.query_params.update({"model": "mnist-z5", "point": "4", "density": "1"})
    at.run()
    assert at.sidebar.selectbox(key="model_picker").value == "mnist-z5"
    assert at.session_state["picked"] == ("mnist-z5", 4)
    at.query_params.clear()
    at.query_params["model"] = "mnist-z2"  # Back to an earlier view of another model
    at.run()
    assert not at.exception and not at.warning  # (Streamlit warns of a widget set two ways)
    assert at.sidebar.selectbox(key="model_picker").value == "mnist-z2"
    assert "picked" not in at.session_state and at.session_state["density"] is False
    assert dict(at.query_params) == {"model": "mnist-z2"}
    at.query_params.update({"model": "mnist-z5", "point": "4", "density": "1"})  # and Forward
    at.run()
    assert not at.exception and not at.warning
    assert at.sidebar.selectbox(key="model_picker").value == "mnist-z5"
    assert at.session_state["picked"] == ("mnist-z5", 4) and at.session_state["density"] is True


def test_a_run_is_written_into_the_address_by_its_bare_name():
    """``?model=tiny`` opened runs/tiny and the address then read ``model=runs%2Ftiny``: a run is
    written as the command line names it, unless a shipped model has that name; either way it
    reads back as the same choice."""
    from explorer.ui.share import address_name

    models = (*MODELS, "runs/mnist-z2")
    assert address_name("runs/my run", models) == "my run"
    assert address_name("runs/mnist-z2", models) == "runs/mnist-z2"  # the shipped one is mnist-z2
    assert address_name("mnist-z5", models) == "mnist-z5"
    for choice in models:
        assert read_address({"model": address_name(choice, models)}, models).model == choice


def test_a_widgets_rerun_with_an_old_address_is_not_taken_for_back(shipped, monkeypatch):
    """A rerun that is not a history step may carry the address from before the last run's (the
    browser had not yet heard of it): the session's view stays, and is written back."""
    from explorer.ui import share

    monkeypatch.setattr(share, "history_step", lambda: False)
    at = page(LATENT)
    at.query_params.update({"model": "mnist-z5", "point": "4"})
    at.run()
    at.query_params.clear()
    at.query_params["model"] = "mnist-z2"  # stale, not Back
    at.run()
    assert at.sidebar.selectbox(key="model_picker").value == "mnist-z5"
    assert at.session_state["picked"] == ("mnist-z5", 4)
    assert dict(at.query_params) == {"model": "mnist-z5", "point": "4"}


def test_the_paper_page_keeps_the_view_for_the_model_pages_but_not_in_its_address(shipped):
    """`/Paper?model=mnist-z20&point=99999&map=umap` kept every value in its address without a
    word: the Paper page shows no model, so its address holds none of the view; the view goes on
    to the model pages, which check it against their model."""
    at = page(PAPER)
    at.query_params.update({"model": "mnist-z5", "point": "3", "density": "1"})
    at.run()
    assert not at.exception and not at.warning
    assert not list(at.query_params)
    at.switch_page(LATENT).run()
    assert not at.exception
    assert at.session_state["picked"] == ("mnist-z5", 3)
    assert at.query_params["point"] in ("3", ["3"]) and at.query_params["model"] in ("mnist-z5", ["mnist-z5"])


def test_a_point_without_a_model_opens_on_the_model_shown(shipped):
    """`?point=4` alone was dropped without a word: it opens test image #4 of the model shown."""
    at = page(LATENT)
    at.query_params["point"] = "4"
    at.run()
    assert not at.exception and not at.warning
    assert at.session_state["picked"] == ("mnist-z2", 4)


def test_an_unknown_theory_tab_is_said_and_left_out(shipped):
    at = page("pages/8_Theory.py")
    at.query_params["tab"] = "bogus"
    at.run()
    assert not at.exception
    said = " ".join(w.value for w in at.warning)
    assert "Ignored in the address: tab='bogus' (tab: one of EM, KL's two directions" in said
    assert at.query_params["tab"] in ("EM", ["EM"])  # the bogus value left out: the tab shown instead


def test_the_theory_tab_stays_in_the_address_and_is_read_as_typed(shipped):
    """A Theory tab named in the address was dropped from it once the page opened (a tab could
    not be shared by its address), was read only as spelt in TABS ("the identity" refused), and
    given twice opened the last without the note the other keys get."""
    from explorer.ui.theory import TAB_KEY

    at = page("pages/8_Theory.py")
    at.query_params["tab"] = "the-identity"
    at.run()
    assert not at.exception and not at.warning
    assert at.session_state[TAB_KEY] == "The identity"
    assert at.query_params["tab"] in ("The identity", ["The identity"])  # kept, as the tab is named
    at.session_state[TAB_KEY] = "EM"  # a click on another tab: the address follows it
    at.run()
    assert at.session_state[TAB_KEY] == "EM" and at.query_params["tab"] in ("EM", ["EM"])
    twice = page("pages/8_Theory.py")
    twice.query_params["tab"] = ["EM", "KLs two directions"]
    twice.run()
    said = " ".join(w.value for w in twice.warning)
    assert "Given more than once in the address: tab ('EM', 'KLs two directions')" in said
    assert twice.session_state[TAB_KEY] == "KL's two directions"


def test_a_tab_is_read_in_either_spelling():
    from explorer.ui.theory import tab_named

    assert tab_named("why reparameterize") == tab_named("Why_Reparameterise") == "Why reparameterise"
    assert tab_named("THE IDENTITY") == "The identity" and tab_named("identity") is None
