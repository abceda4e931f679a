"""The Train page's view of one run: progress, figures and live curves, and the latent space
forming epoch by epoch. Both are drawn in fragments that rerun on a timer while the run trains."""

from __future__ import annotations

import math

import streamlit as st

from explorer.checkpoints import checkpoint_progress, read_config
from explorer.config import encoder_trained
from explorer.errors import ExplorerError
from explorer.explore.latent import align_frames, pick_frames
from explorer.pictures.latent_plots import latent_animation
from explorer.pictures.plots import training_curves
from explorer.train.jobs import JobRegistry
from explorer.train.runfolder import RunFolder
from explorer.ui.model_card import config_bits_per_dim
from explorer.ui.models import label_names
from explorer.ui.widgets import chart, duration

# While a run's process starts (PyTorch and the data loaded, the run folder claimed: a few seconds),
# the page below still shows what it showed before, faded: the spinner says what is happening.
STARTING = "Starting {name!r}: its process is loading PyTorch and the data; shown here once it has begun"
MAX_FRAMES = 40  # epochs shown in the animation: enough to see it form, light enough to resend


def show_run(registry: JobRegistry, name: str) -> None:
    """A run's progress, figures, state and curves; a Stop button while it trains."""
    view = registry.view(name)
    _progress(view)
    if view.path:
        st.caption(f"Training on: {view.path}")
    figures = st.container(key="run-figures")
    # Streamlit cut a figure wider than its quarter of the page ("140 / ...", "-1744..."): the
    # figures shrink with the page rather than lose digits; their labels wrap
    figures.html(
        "<style>.st-key-run-figures [data-testid=stMetricValue] { font-size: clamp(1rem, 1.6vw, 2.1rem); } "
        ".st-key-run-figures [data-testid=stMetricValue] * { overflow: visible; text-overflow: clip; } "
        ".st-key-run-figures [data-testid=stMetricLabel] * { overflow: visible; white-space: normal; }"
        "</style>"
    )
    a, b, c, d = figures.columns(4)
    a.metric("Epoch", f"{view.epoch} / {view.epochs or '?'}")
    b.metric("Samples/s", f"{view.samples_per_s:,.0f}" if view.samples_per_s else "-")
    c.metric("ETA", duration(view.eta_s) if view.active else "-")
    last = next((r for r in reversed(view.rows) if "test_elbo" in r or "test_recon" in r), None)
    figure = "test_elbo" if last is None or "test_elbo" in last else "test_recon"  # an autoencoder's
    name_of = {"test_elbo": "Test ELBO", "test_recon": "Test log p(x|z)"}[figure]
    last_test = None if last is None else last[figure]
    finite = last_test is not None and math.isfinite(last_test)
    d.metric(f"{name_of} (nats)", f"{last_test:.2f}" if finite else ("-" if last is None else "not finite"))
    if finite and figure == "test_elbo":
        bits = _bits_per_dim(registry, name, -last_test)
        if bits is not None:  # continuous data is reported in bits per dimension (README)
            d.caption(f"-ELBO: {bits:.3f} bits/dim")
    if last is not None and not finite:
        what = name_of[0].lower() + name_of[1:]
        st.warning(f"The {what} of epoch {last['epoch']} is not finite: the run has diverged.")
    if view.state in ("failed", "lost"):
        st.error(f"Run {name!r} {view.state}: {view.message}")
    _stop_or_skip(registry, view)
    if view.derived == "skipped":
        st.info(
            "Finished; storing what the pages need was skipped: each page measures what it needs "
            f"on its first visit (or store it now: `vae-explorer derive {registry.folder(name).path}`)."
        )
    if not view.active and registry.folder(name).has_checkpoint():
        kept = checkpoint_progress(registry.folder(name).path).get("epoch", view.epoch)
        if view.state in ("failed", "lost") and kept < view.epoch:
            st.caption(
                f"Epoch {view.epoch}'s figures below were measured, but its checkpoint was not kept: "
                f"Resume goes on from epoch {kept}, and measures it again."
            )
        resume_control(registry, name, min(kept, view.epoch), view.epochs)
    elif not view.active and view.state in ("failed", "lost"):
        delete_control(registry, name)
    if view.rows:
        chart(st, training_curves({name: view.rows}, {name: view.steps_per_epoch}), key=f"curves-{name}")
    elif view.active:
        st.info("Waiting for the first metrics (loading data, first steps)...")
    else:
        st.caption("No metrics: the run ended before its first logging step.")
    if st.session_state.get("was_active") and not view.active:
        st.session_state["was_active"] = False
        st.rerun()  # the finished run now appears in the model picker
    st.session_state["was_active"] = view.active


def _bits_per_dim(registry: JobRegistry, name: str, nats: float) -> float | None:
    """``nats`` per image of the run's model in bits per dimension (``config_bits_per_dim``), or
    None: a Bernoulli decoder, or a config that cannot be read."""
    try:
        return config_bits_per_dim(read_config(registry.root / name)["model"], nats)
    except (ExplorerError, KeyError, TypeError):
        return None


def _stop_or_skip(registry: JobRegistry, view) -> None:
    """Stop while the run trains (it saves a checkpoint); Skip while, after its last epoch, it
    stores what the pages need (the trained model is saved; the pages measure it themselves)."""
    if not view.active:
        return
    if view.stage:
        if st.button("Skip this (the trained model is saved)", key=f"skip-{view.name}"):
            registry.stop(view.name)
            st.toast(
                f"Skipping: {view.name} finishes now; each page measures what it needs on its first visit."
            )
    elif st.button("Stop (saves a checkpoint)", key=f"stop-{view.name}"):
        registry.stop(view.name)
        st.toast(f"Stopping {view.name}: it saves a checkpoint first.")


def _progress(view) -> None:
    """The run's progress bar: steps while it trains; after its last epoch, the parts it has
    stored for the pages (``explorer.explore.derived``, 20-40 s on a 2-core CPU for an MNIST model
    once its dataset's outliers are cached, a minute more the first time; said so as not
    to look stuck) and the seconds it has spent."""
    if view.stage:
        what, now = view.stage.split(" (")[0], view.stage.rsplit(": ", 1)[-1]
        st.progress(view.stage_fraction, text=f"training done; {what}: {now} ({view.stage_seconds:.0f} s)")
        st.info(
            f"Training has ended and the model is saved. The run is {view.stage}. Measured once and "
            "stored beside the model, they let every page open it at once. Skip it and each page "
            "measures what it needs on its first visit.",
            icon=":material/hourglass_top:",
        )
        return
    steps = f"{view.state}: step {view.step:,} of {view.total_steps:,}" if view.total_steps else view.state
    per_epoch = view.steps_per_epoch
    if view.state == "running" and per_epoch and view.step >= (view.epoch + 1) * per_epoch:
        # the epoch's steps are done, its test figures not yet ("step 180 of 180" beside "Epoch 5 / 6")
        steps += f"; epoch {view.epoch + 1} is measured on the test set"
    st.progress(view.fraction, text=steps)


def delete_control(registry: JobRegistry, name: str) -> None:
    """Delete a run that ended before its first checkpoint: nothing to resume, and its name taken."""
    if st.button(
        "Delete this run", key=f"delete-{name}", help="Nothing was saved; the form starts it again."
    ):
        try:
            registry.delete(name)
        except ExplorerError as exc:
            st.error(str(exc))
            return
        st.session_state.pop("watch", None)
        st.rerun(scope="app")


REFUSED = "train-refused"  # session state: (run, why the app's Resume did not start it), shown above


def resume_control(registry: JobRegistry, name: str, done: int, target: int | None) -> None:
    """Resume a stopped, lost or finished run from its last checkpoint with its own optimiser
    state (``vae-explorer train --resume``), on to a new number of epochs."""
    left, right = st.columns([1, 1], vertical_alignment="bottom")
    start = target if target and target > done else max(done * 2, done + 10)  # finished: go on
    epochs = left.number_input(
        "Train on to epoch",
        min_value=done + 1,
        max_value=1_000_000,
        value=start,
        step=1,
        key=f"resume-epochs-{name}",
        help=f"epochs in all; {done} are done. The run goes on from its last checkpoint with its "
        "optimiser state (vae-explorer train --resume).",
    )
    if right.button("Resume", key=f"resume-{name}", type="primary"):
        try:
            with st.spinner(STARTING.format(name=name), show_time=True):
                registry.start(name, ["--epochs", str(int(epochs))], resume=True)
        except ExplorerError as exc:
            if not registry.view(name).active:
                st.error(str(exc))
                return
            # another process trains it (a shell's --resume): say so above the page, which then
            # follows that run live (this fragment alone would have stayed still)
            st.session_state[REFUSED] = (name, str(exc))
            st.session_state["watch"] = name
            st.rerun(scope="app")
        st.session_state["watch"] = name
        st.rerun(scope="app")  # the page watches the run live again


def latent_forming(registry: JobRegistry, name: str) -> None:
    """The latent space as it forms: the run's per-epoch snapshots of SNAPSHOT_SIZE test images."""
    st.markdown("**The latent space forming**")
    try:
        mcem = not encoder_trained(read_config(registry.root / name))
    except ExplorerError:
        mcem = False
    if mcem:
        st.caption(
            "Monte Carlo EM trains no encoder: there are no codes to watch form, and no ELBO per "
            "epoch. Its curve is the decoder's loss at the chains' states; the bound points, when "
            "the run was asked for them (--bound-points), are its estimates."
        )
        return
    snapshots = RunFolder(registry.root / name).read_latent_snapshots()
    if snapshots is None:
        if registry.view(name).active:
            st.info("No latent snapshots yet: the first appears when training starts.")
        else:
            st.caption("No latent snapshots: the run ended before its first (or was made before "
                       "snapshots existed).")  # fmt: skip
        return
    epochs, frames, labels = snapshots
    keep = pick_frames(epochs, MAX_FRAMES)
    epochs, frames = [epochs[i] for i in keep], frames[keep]
    try:
        config = read_config(registry.root / name)
        dims, names = config["model"]["latent_dim"], label_names(config)
        variational = config["model"].get("model", "vae") == "vae"
    except (ExplorerError, KeyError):
        dims, names, variational = 2, None, True
    if dims > 2:
        frames = align_frames(frames)  # principal components of each epoch, turned to match the last
    axes = ("z1", "z2") if dims <= 2 else ("PC1", "PC2")
    chart(
        st,
        latent_animation(epochs, frames, labels, names, axes),
        key=f"forming-{name}",
        config={"displayModeBar": False},
    )
    st.caption(
        ("Means of q(z|x)" if variational else "Codes z = f(x)")
        + f" of {frames.shape[1]:,} test image{'' if frames.shape[1] == 1 else 's'} after each epoch "
        "(0: before training)"
        + ("" if dims <= 2 else "; principal components, aligned from epoch to epoch")
        + ". Press Play, or drag the epoch slider."
    )
