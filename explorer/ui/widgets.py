"""Widgets shared by pages: the training form and small display helpers."""

from __future__ import annotations

import time

import streamlit as st
import torch

from explorer.checkpoints import dataset_of, read_config
from explorer.data import DATASETS
from explorer.errors import ExplorerError
from explorer.ui.models import RUN_PREFIX, folder_of


def run_started() -> None:
    """Call once a run has started: the form then suggests a fresh name. (Only then: a Start that
    was refused keeps the suggestion, or the name the user typed would be replaced.)"""
    st.session_state.pop("suggested_run", None)


NEW_MODEL = "a new model"


def start_point(models: list[str]) -> tuple[str, dict] | None:
    """The "Start from" choice above the form: None for a new model, or (the model's name or
    folder for --init-from, its config.json). Outside the form, so that choosing a model at once
    shows its architecture in the form."""
    choice = st.selectbox(
        "Start from",
        [NEW_MODEL, *models],
        help="Fine-tune a shipped model or one of your runs: the new run starts from its weights "
        "and takes its architecture and dataset, with a fresh optimiser. (To continue a run "
        "with its own optimiser state, use `vae-explorer train --resume`.)",
    )
    if choice == NEW_MODEL:
        return None
    folder = folder_of(choice)
    try:
        config = read_config(folder)
        arch, dataset = config["model"], dataset_of(config)
    except (ExplorerError, KeyError, TypeError) as exc:
        st.error(f"Cannot start from {choice!r}: {exc}. Pick another model, or a new one.")
        return None
    if dataset not in DATASETS:
        st.error(f"Cannot start from {choice!r}: it was trained on {dataset!r}, which this app cannot load.")
        return None
    st.caption(
        f"Starting from the weights of **{choice}**: {dataset}, latent size {arch['latent_dim']}, "
        f"hidden {','.join(map(str, arch['hidden']))}, {arch['activation']}. The training settings "
        "below start as the ones it was trained with; change them as you like."
    )
    # A shipped model by its name (its lineage reads "mnist-z2"), a run by its folder.
    return (str(folder) if choice.startswith(RUN_PREFIX) else choice), config


def train_form(start: tuple[str, dict] | None = None) -> tuple[str, list[str]] | None:
    """The Train page's settings form; returns (run name, CLI arguments) when Start is pressed.
    With ``start`` (from :func:`start_point`) the run fine-tunes that model: its dataset and
    architecture are shown, fixed, and the arguments carry --init-from instead."""
    fixed = start is not None
    arch = start[1]["model"] if fixed else {}
    recipe = start[1].get("train", {}) if fixed else {}  # a fine-tune continues the way it was trained
    with st.form("train_form", border=True):
        a, b, c, d = st.columns(4)
        dataset = a.selectbox(
            "Dataset",
            DATASETS,
            index=DATASETS.index(dataset_of(start[1])) if fixed else 0,
            disabled=fixed,
        )
        latent = b.number_input(
            "Latent size",
            1,
            200,
            arch.get("latent_dim", 2),
            help="2 gives the scatter and the manifold",
            disabled=fixed,
        )
        hidden = c.text_input(
            "Hidden sizes",
            ",".join(map(str, arch.get("hidden", [512, 512]))),
            help="comma-separated widths",
            disabled=fixed,
        )
        activation = d.selectbox(
            "Activation",
            ["relu", "tanh"],
            index=_index(["relu", "tanh"], arch.get("activation")),
            disabled=fixed,
        )
        estimator = a.selectbox(
            "Estimator",
            ["analytic", "mc"],
            index=_index(["analytic", "mc"], recipe.get("estimator")),
            format_func=lambda e: {"analytic": "B: analytic KL", "mc": "A: Monte Carlo"}[e],
        )
        likelihoods = ["auto", "bernoulli", "gaussian"]
        likelihood = b.selectbox(
            "Likelihood",
            likelihoods,
            index=_index(likelihoods, arch.get("likelihood")),
            help="auto: bernoulli, or gaussian for frey-face",
            disabled=fixed,
        )
        optimizers = ["adam", "adagrad", "rmsprop", "sgd"]
        optimizer = c.selectbox("Optimiser", optimizers, index=_index(optimizers, recipe.get("optimizer")))
        lr = d.number_input("Learning rate", 1e-6, 1.0, float(recipe.get("lr", 1e-3)), format="%.5f")
        batch = a.number_input("Batch size M", 1, 4096, int(recipe.get("batch_size", 100)))
        samples = b.number_input(
            "Samples L",
            1,
            64,
            min(64, int(recipe.get("samples", 1))),
            help="draws of eps per image; K of the IWAE bound",
        )
        beta = c.number_input("Beta (KL weight)", 0.0, 10.0, float(recipe.get("beta", 1.0)), step=0.1)
        epochs = d.number_input("Epochs", 1, 10_000, 10)
        limit = a.number_input(
            "Training images (0 = all)",
            0,
            60_000,
            0,
            step=1000,
            help="fewer images: quicker epochs for a first look",
        )
        # The suggested name is made once per session: a default that changed on every rerun
        # would reset what the user typed.
        suggested = st.session_state.setdefault("suggested_run", f"run-{time.strftime('%m%d-%H%M%S')}")
        name = b.text_input("Run name", suggested, help="the folder runs/NAME")
        device = c.selectbox("Device", ["auto", "cpu", "cuda", "mps"])
        objective = d.selectbox(
            "Objective",
            ["elbo", "iwae"],
            index=_index(["elbo", "iwae"], recipe.get("objective")),
            format_func=lambda o: {"elbo": "ELBO (VAE)", "iwae": "IWAE bound L_K, K = L"}[o],
            help="IWAE trains on the importance-weighted bound with K = Samples L draws per image: "
            "a tighter bound and a better model, at K times the decoder's cost",
        )
        gpus = torch.cuda.device_count()
        processes = 1
        if gpus > 1:
            processes = a.number_input(
                "Processes (GPUs)",
                1,
                gpus,
                1,
                help="DistributedDataParallel: one process per GPU, each on its share of every batch",
            )
        started = st.form_submit_button("Start training", type="primary")
    if not started:
        return None
    if not hidden.replace(",", "").replace(" ", "").isdigit():
        st.error(f"Hidden sizes must be positive widths like 512,512, not {hidden!r}.")
        return None
    if objective == "iwae" and beta != 1.0:
        st.error(f"The IWAE objective has no KL weight: set Beta to 1 (not {beta:g}) or train on the ELBO.")
        return None
    if batch % processes:
        st.error(
            f"Batch size {batch} does not split over {processes} processes; use a multiple of {processes}."
        )
        return None
    args = ["--dataset", dataset]
    if fixed:
        args += ["--init-from", start[0]]
    else:
        args += ["--latent-dim", str(latent), "--hidden", hidden.replace(" ", ""), "--activation", activation]
        if likelihood != "auto":
            args += ["--likelihood", likelihood]
    args += [
        "--estimator",
        estimator,
        "--optimizer",
        optimizer,
        "--lr",
        repr(float(lr)),
        "--batch-size",
        str(batch),
        "--samples",
        str(samples),
        "--objective",
        objective,
        "--beta",
        repr(float(beta)),
        "--epochs",
        str(epochs),
        "--device",
        device,
        "--log-every",
        "20",
    ]
    if limit:
        args += ["--limit", str(limit)]
    if processes > 1:
        args += ["--nproc", str(processes)]
    return name.strip(), args


def _index(options: list[str], value: str | None) -> int:
    """Where ``value`` stands among ``options``; the first (the default) when it is missing."""
    return options.index(value) if value in options else 0


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
