"""Train: start a run in its own process, watch its curves live, stop it, compare runs."""

import math

import streamlit as st

from explorer.checkpoints import read_config
from explorer.errors import ExplorerError
from explorer.insight import align_frames, pick_frames
from explorer.jobs import list_runs
from explorer.plots import latent_animation, training_curves
from explorer.runs import read_latent_snapshots
from explorer.ui.jobs import job_registry
from explorer.ui.models import choices, label_names, model_picker
from explorer.ui.widgets import duration, run_started, start_point, train_form

MAX_FRAMES = 40  # epochs shown in the animation: enough to see it form, light enough to resend

st.set_page_config(page_title="Train - VAE Explorer", layout="wide")
model_picker()
st.title("Train")
st.caption(
    "Each run trains in its own `vae-explorer train` process and writes into `runs/NAME`; "
    "close the tab or open another and the run goes on."
)
registry = job_registry()

request = train_form(start_point(choices()))
if request is not None:
    name, args = request
    try:
        registry.start(name, args)
        st.session_state["watch"] = name
        run_started()
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
    if view.path:
        st.caption(f"Training on: {view.path}")
    a, b, c, d = st.columns(4)
    a.metric("Epoch", f"{view.epoch} / {view.epochs or '?'}")
    b.metric("Samples/s", f"{view.samples_per_s:,.0f}" if view.samples_per_s else "-")
    c.metric("ETA", duration(view.eta_s) if view.active else "-")
    last = next((r for r in reversed(view.rows) if "test_elbo" in r), None)
    last_test = None if last is None else last["test_elbo"]
    finite = last_test is not None and math.isfinite(last_test)
    d.metric("Test ELBO (nats)", f"{last_test:.2f}" if finite else ("-" if last is None else "not finite"))
    if last is not None and not finite:
        st.warning(f"The test ELBO of epoch {last['epoch']} is not finite: the run has diverged.")
    if view.state in ("failed", "lost"):
        st.error(f"Run {name!r} {view.state}: {view.message}")
    if view.active and st.button("Stop (saves a checkpoint)", key=f"stop-{name}"):
        registry.stop(name)
        st.toast(f"Stopping {name}: it saves a checkpoint first.")
    if view.rows:
        st.plotly_chart(
            training_curves({name: view.rows}, {name: view.steps_per_epoch}), key=f"curves-{name}"
        )
    else:
        st.info("Waiting for the first metrics (loading data, first steps)...")
    if st.session_state.get("was_active") and not view.active:
        st.session_state["was_active"] = False
        st.rerun()  # the finished run now appears in the model picker
    st.session_state["was_active"] = view.active


def forming(name: str) -> None:
    """The latent space as it forms: the run's per-epoch snapshots of 2,000 test images."""
    st.markdown("**The latent space forming**")
    snapshots = read_latent_snapshots(registry.root / name)
    if snapshots is None:
        st.info(
            "No latent snapshots yet: the first appears when training starts (runs made "
            "before snapshots existed have none)."
        )
        return
    epochs, frames, labels = snapshots
    keep = pick_frames(epochs, MAX_FRAMES)
    epochs, frames = [epochs[i] for i in keep], frames[keep]
    try:
        config = read_config(registry.root / name)
        dims, names = config["model"]["latent_dim"], label_names(config)
    except (ExplorerError, KeyError):
        dims, names = 2, None
    if dims > 2:
        frames = align_frames(frames)  # principal components of each epoch, turned to match the last
    axes = ("z1", "z2") if dims <= 2 else ("PC1", "PC2")
    st.plotly_chart(
        latent_animation(epochs, frames, labels, names, axes),
        key=f"forming-{name}",
        config={"displayModeBar": False},
    )
    st.caption(
        f"Means of q(z|x) for {frames.shape[1]:,} test images after each epoch (0: before training)"
        + ("" if dims <= 2 else "; principal components, aligned from epoch to epoch")
        + ". Press Play, or drag the epoch slider."
    )


curves_col, forming_col = st.columns([3, 2], gap="medium")
with curves_col:
    st.fragment(run_every=1.0 if name in active else None)(show)(name)
with forming_col:
    st.fragment(run_every=5.0 if name in active else None)(forming)(name)

with st.expander("Compare runs"):
    chosen = st.multiselect("Runs to overlay", runs, default=runs[: min(2, len(runs))])
    if chosen:
        views = {r: registry.view(r) for r in chosen}
        st.plotly_chart(
            training_curves(
                {r: v.rows for r, v in views.items()}, {r: v.steps_per_epoch for r, v in views.items()}
            ),
            key="compare",
        )
