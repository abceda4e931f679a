"""Train: start a run in its own process, watch its curves live, stop it, compare runs."""

import streamlit as st

from explorer.errors import ExplorerError
from explorer.jobs import list_runs
from explorer.plots import training_curves
from explorer.ui.jobs import job_registry
from explorer.ui.models import model_picker
from explorer.ui.widgets import duration, train_form

st.set_page_config(page_title="Train - VAE Explorer", layout="wide")
model_picker()
st.title("Train")
st.caption(
    "Each run trains in its own `vae-explorer train` process and writes into `runs/NAME`; "
    "close the tab or open another and the run goes on."
)
registry = job_registry()

request = train_form()
if request is not None:
    name, args = request
    try:
        registry.start(name, args)
        st.session_state["watch"] = name
    except ExplorerError as exc:
        st.error(str(exc))

runs = list_runs(registry.root)
if not runs:
    st.info("No runs yet: choose settings above and press **Start training**.")
    st.stop()
active = [r for r in runs if registry.view(r).active]
watch = st.session_state.get("watch")
default = watch if watch in runs else (active[0] if active else runs[0])
name = st.selectbox(
    "Run", runs, index=runs.index(default), format_func=lambda r: f"{r} (training)" if r in active else r
)
st.session_state["watch"] = name


def show(name: str) -> None:
    view = registry.view(name)
    st.progress(
        view.fraction,
        text=f"{view.state}: step {view.step:,} of {view.total_steps or '?':,}"
        if view.total_steps
        else view.state,
    )
    a, b, c, d = st.columns(4)
    a.metric("Epoch", f"{view.epoch} / {view.epochs or '?'}")
    b.metric("Samples/s", f"{view.samples_per_s:,.0f}" if view.samples_per_s else "-")
    c.metric("ETA", duration(view.eta_s) if view.active else "-")
    last_test = next((r["test_elbo"] for r in reversed(view.rows) if "test_elbo" in r), None)
    d.metric("Test ELBO (nats)", f"{last_test:.2f}" if last_test is not None else "-")
    if view.state in ("failed", "lost"):
        st.error(f"Run {name!r} {view.state}: {view.message}")
    if view.active and st.button("Stop (saves a checkpoint)", key=f"stop-{name}"):
        registry.stop(name)
        st.toast(f"Stopping {name}: it saves a checkpoint first.")
    if view.rows:
        st.plotly_chart(training_curves({name: view.rows}), key=f"curves-{name}")
    else:
        st.info("Waiting for the first metrics (loading data, first steps)...")
    if st.session_state.get("was_active") and not view.active:
        st.session_state["was_active"] = False
        st.rerun()  # the finished run now appears in the model picker
    st.session_state["was_active"] = view.active


st.fragment(run_every=1.0 if name in active else None)(show)(name)

with st.expander("Compare runs"):
    chosen = st.multiselect("Runs to overlay", runs, default=runs[: min(2, len(runs))])
    if chosen:
        st.plotly_chart(training_curves({r: registry.view(r).rows for r in chosen}), key="compare")
