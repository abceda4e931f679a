"""Widgets shared by pages: the training form and small display helpers."""

from __future__ import annotations

import time

import streamlit as st
import torch

from explorer.data import DATASETS


def run_started() -> None:
    """Call once a run has started: the form then suggests a fresh name. (Only then: a Start that
    was refused keeps the suggestion, or the name the user typed would be replaced.)"""
    st.session_state.pop("suggested_run", None)


def train_form() -> tuple[str, list[str]] | None:
    """The Train page's settings form; returns (run name, CLI arguments) when Start is pressed."""
    with st.form("train_form", border=True):
        a, b, c, d = st.columns(4)
        dataset = a.selectbox("Dataset", DATASETS, index=0)
        latent = b.number_input("Latent size", 1, 200, 2, help="2 gives the scatter and the manifold")
        hidden = c.text_input("Hidden sizes", "512,512", help="comma-separated widths")
        activation = d.selectbox("Activation", ["relu", "tanh"])
        estimator = a.selectbox(
            "Estimator",
            ["analytic", "mc"],
            format_func=lambda e: {"analytic": "B: analytic KL", "mc": "A: Monte Carlo"}[e],
        )
        likelihood = b.selectbox(
            "Likelihood", ["auto", "bernoulli", "gaussian"], help="auto: bernoulli, or gaussian for frey-face"
        )
        optimizer = c.selectbox("Optimiser", ["adam", "adagrad", "rmsprop", "sgd"])
        lr = d.number_input("Learning rate", 1e-6, 1.0, 1e-3, format="%.5f")
        batch = a.number_input("Batch size M", 1, 4096, 100)
        samples = b.number_input("Samples L", 1, 64, 1, help="draws of eps per image; K of the IWAE bound")
        beta = c.number_input("Beta (KL weight)", 0.0, 10.0, 1.0, step=0.1)
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
    args = [
        "--dataset",
        dataset,
        "--latent-dim",
        str(latent),
        "--hidden",
        hidden.replace(" ", ""),
        "--activation",
        activation,
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
    if likelihood != "auto":
        args += ["--likelihood", likelihood]
    if limit:
        args += ["--limit", str(limit)]
    if processes > 1:
        args += ["--nproc", str(processes)]
    return name.strip(), args


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
