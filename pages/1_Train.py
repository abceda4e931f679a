"""Train: start a run in its own process, watch its curves live, stop it, compare runs."""

import streamlit as st

from explorer.errors import ExplorerError
from explorer.pictures.plots import training_curves
from explorer.train.runfolder import list_runs
from explorer.ui.dataset_form import dataset_form
from explorer.ui.jobs import job_registry
from explorer.ui.models import choices, model_picker
from explorer.ui.run_view import REFUSED, STARTING, latent_forming, show_run
from explorer.ui.share import RUN_PREFIX, leave_view_out
from explorer.ui.train_form import run_started, start_point, train_form
from explorer.ui.widgets import chart

SIDEBAR_SEEN = "train-sidebar-run"  # session state: the sidebar's run when this page last looked

st.set_page_config(page_title="Train - VAE Explorer", layout="wide")
chosen = model_picker()
leave_view_out()  # the page shows no model's view: it stays in the session for the model pages
st.title("Train")
st.caption(
    "Each run trains in its own `vae-explorer train` process and writes into `runs/NAME`; "
    "close the tab or open another and the run goes on."
)
registry = job_registry()

dataset_form()
request = train_form(start_point(choices()))
if request is not None:
    name, args = request
    try:
        with st.spinner(STARTING.format(name=name), show_time=True):
            registry.start(name, args)
        st.session_state["watch"] = name
        run_started()
    except ExplorerError as exc:
        st.error(str(exc))

runs = list_runs(registry.root)
if not runs:
    st.info("No runs yet: choose settings above and press **Start training**.")
    st.stop()
views = {r: registry.view(r) for r in runs}
active = [r for r in runs if views[r].active]
watch = st.session_state.get("watch")
picked = (chosen or "").removeprefix(RUN_PREFIX) if (chosen or "").startswith(RUN_PREFIX) else None
if picked != st.session_state.get(SIDEBAR_SEEN):  # a run chosen in the sidebar (or ?model=NAME): followed
    st.session_state[SIDEBAR_SEEN] = picked
    watch = picked if picked in runs else watch
# the run followed: the one watched, else a training one, else the newest
default = next(r for r in (watch, *active, runs[0]) if r in runs)
doing = {r: "storing what the pages need" if views[r].stage else "training" for r in active}
name = st.selectbox(
    "Run", runs, index=runs.index(default), format_func=lambda r: f"{r} ({doing[r]})" if r in doing else r
)
st.session_state["watch"] = name


refused = st.session_state.get(REFUSED)  # (run, why the app's Resume did not start it)
if refused and refused[0] == name and name in active:  # while the process that took it trains
    st.error(refused[1])
elif refused:
    del st.session_state[REFUSED]
curves_col, forming_col = st.columns([3, 2], gap="medium")
with curves_col:
    st.fragment(run_every=1.0 if name in active else None)(show_run)(registry, name)
with forming_col:
    st.fragment(run_every=5.0 if name in active else None)(latent_forming)(registry, name)

with st.expander("Compare runs"):
    chosen = st.multiselect("Runs to overlay", runs, default=runs[: min(2, len(runs))])
    if chosen:
        views = {r: registry.view(r) for r in chosen}
        chart(
            st,
            training_curves(
                {r: v.rows for r, v in views.items()}, {r: v.steps_per_epoch for r, v in views.items()}
            ),
            key="compare",
        )
