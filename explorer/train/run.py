"""Start a run, or resume one: the ways into the trainer (``explorer.train.loop``).

``start_or_resume`` is what ``vae-explorer train`` calls with the settings a person gave: it
finds the run folder (``--out``, ``--name``, ``--resume RUN``), holds a resume or an
``--init-from`` to its rules (only resumable settings change; the architecture comes from the
checkpoint), fills in what the dataset implies, and starts or resumes. ``start_run`` trains a new
model into a run folder (from random weights, or from a checkpoint's with ``init_from``:
fine-tuning); ``resume_run`` continues a run from its last checkpoint, and may change only the
settings marked resumable in ``explorer.config`` (epochs, learning rate, objective, samples).
Both check everything they can before anything is written (the folder, the device, the memory
one step needs), record how the run was made in its commands.txt, keep its status.json up to
date, and return the run folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from explorer.cards import Card
from explorer.checkpoints import dataset_of, load_checkpoint, read_config, resolve
from explorer.config import (
    ARCHITECTURE_SETTINGS,
    RESUMABLE,
    ModelConfig,
    TrainConfig,
    check_combination,
)
from explorer.data.cache import fetch
from explorer.data.specs import spec
from explorer.devices import check_step_fits, pick_device
from explorer.errors import ExplorerError
from explorer.train.distributed import World, join
from explorer.train.loop import Trainer
from explorer.train.runfolder import RunFolder, check_run_name, runs_root


@dataclass(frozen=True)
class Outcome:
    """How a training command ended."""

    folder: Path  # the run folder
    stopped: bool  # a stop signal ended it before its last epoch (checkpointed: resume it)


def start_or_resume(
    *,
    out: str | os.PathLike | None = None,
    name: str | None = None,
    resume: str | bool | None = None,
    init_from: str | os.PathLike | None = None,
    model_values: dict | None = None,
    train_values: dict | None = None,
    progress: bool | None = None,
    command: str | None = None,
    before_training: Callable[[], None] | None = None,
) -> Outcome:
    """Train as a person asked: a new run into ``out`` (or runs/``name``), or, with ``resume``
    (True: the run in ``out``; a string: a run folder or a run's name), go on with one.
    ``model_values`` and ``train_values`` are the settings given (by field name; the others take
    their defaults, the dataset's likelihood and image shape, or on resume the run's own).
    ``before_training`` runs once everything is checked and before anything is written (the CLI
    starts its processes there).

    Raises:
        ExplorerError: no run folder or two of them, a run name that is not allowed, a setting
            a resume or ``init_from`` may not change, or whatever ``start_run`` and
            ``resume_run`` refuse.
    """
    model_values, train_values = dict(model_values or {}), dict(train_values or {})
    folder = run_folder(out, name, resume)
    if resume:
        # Settings that repeat the run's own change nothing: they are dropped, not refused.
        saved = _saved_settings(folder)
        model_values = {k: v for k, v in model_values.items() if saved.get(k) != v}
        train_values = {k: v for k, v in train_values.items() if k in RESUMABLE or saved.get(k) != v}
        fixed = (set(model_values) | set(train_values)) - set(RESUMABLE)
        if fixed or init_from:
            flags, allowed = _flags(fixed) or "--init-from", _flags(RESUMABLE, "and")
            raise ExplorerError(
                f"a resumed run keeps its settings; {flags} cannot change (only {allowed} can). "
                "Start a new run with --out to train with other settings."
            )
    if init_from and set(model_values) & set(ARCHITECTURE_SETTINGS):
        shaped = _flags(set(model_values) & set(ARCHITECTURE_SETTINGS))
        raise ExplorerError(
            f"--init-from takes the architecture of {init_from}; {shaped} cannot be given with it."
        )
    if before_training is not None:
        before_training()
    if resume:
        folder = resume_run(folder, progress=progress, command=command, **train_values)
    else:
        cfg = TrainConfig(**train_values)
        described = spec(cfg.dataset)
        shaped = {"likelihood": described.likelihood, **model_values, "image_shape": described.image_shape}
        model_config = ModelConfig(**shaped)
        folder = start_run(folder, model_config, cfg, init_from=init_from, progress=progress, command=command)
    return Outcome(folder, (RunFolder(folder).read_status() or {}).get("state") == "stopped")


def run_folder(out: str | os.PathLike | None, name: str | None, resume: str | bool | None) -> Path:
    """The run's folder: ``out``, ``resume`` when it names a run (a folder, or the name of a run
    in the runs root) or the runs root's ``name``.

    Raises:
        ExplorerError: none given, or two; a name that is not allowed.
    """
    folder = resume if isinstance(resume, str) else out
    if isinstance(resume, str) and not Path(resume).exists() and "/" not in resume:
        if (runs_root() / resume).is_dir():  # --resume NAME, as --name NAME created it
            folder = runs_root() / resume
    if name is not None:
        if folder is not None:
            raise ExplorerError("give either --name or --out (or --resume RUN), not both")
        folder = runs_root() / check_run_name(name)
    if folder is None:
        raise ExplorerError("give the run folder with --out runs/NAME, --name NAME or --resume RUN")
    return Path(folder)


def _saved_settings(folder: Path) -> dict:
    """The model and training settings of the run in ``folder`` (tuples as tuples), or {} when it
    has none (``resume_run`` then says so)."""
    try:
        saved = read_config(folder)
    except ExplorerError:
        return {}
    flat = {**(saved.get("model") or {}), **(saved.get("train") or {})}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in flat.items()}


def _flags(names, last: str = ",") -> str:
    """``--a, --b and --c`` (``last="and"``) or ``--a, --b, --c``: sorted flag names, in words."""
    flags = ["--" + name.replace("_", "-") for name in sorted(names)]
    if last == "and" and len(flags) > 1:
        return ", ".join(flags[:-1]) + " and " + flags[-1]
    return ", ".join(flags)


def start_run(
    out: str | os.PathLike,
    model_config: ModelConfig | None = None,
    config: TrainConfig | None = None,
    *,
    init_from: str | os.PathLike | None = None,
    progress: bool | None = None,
    command: str | None = None,
) -> Path:
    """Train a new VAE into the run folder ``out``; return the folder.

    ``init_from`` (a checkpoint folder or shipped name) starts from that checkpoint's weights and
    architecture instead of a random initialisation, with a fresh optimiser. ``command`` (the CLI's
    command line) is recorded in commands.txt for the model card. ``progress``: None shows a bar
    on a terminal, False never.

    Raises:
        ExplorerError: ``out`` already holds a run, ``init_from`` was trained on another dataset,
            the device is missing or a step does not fit its memory, or training failed.
    """
    run, cfg = RunFolder(out), config or TrainConfig()
    init = None
    if init_from is not None:
        init = load_checkpoint(init_from)
        trained_on = dataset_of(read_config(init_from))
        if trained_on != cfg.dataset:
            raise ExplorerError(
                f"{init_from} was trained on {trained_on}, not {cfg.dataset}: fine-tune it with "
                f"--dataset {trained_on}"
            )
        model_config = init.config
    if run.has_checkpoint() or run.metrics.exists():
        raise ExplorerError(
            f"{run.path} already holds a run; pass --resume to continue it or choose another --out"
        )
    lines = ([*lineage(init_from), command] if init_from is not None else [command]) if command else []
    return _train(run, model_config or ModelConfig(), cfg, lines, progress, resume=False, init=init)


def resume_run(
    out: str | os.PathLike,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    objective: str | None = None,
    samples: int | None = None,
    device: str | None = None,
    progress: bool | None = None,
    command: str | None = None,
) -> Path:
    """Continue the run in ``out`` from its last checkpoint, exactly as if it had not stopped;
    return the folder. ``epochs``: train on to this many in all; ``lr``: a new learning rate from
    here on (the optimiser's moments are kept); ``objective``, ``samples``: switch the loss from
    here on (an ELBO-trained model finished on the IWAE bound, say); ``device``: where it goes
    on. None keeps the saved setting; a change is saved with the next checkpoint, so a later
    resume keeps it.

    Raises:
        ExplorerError: no checkpoint in ``out``, a change that is not allowed, or training failed.
    """
    run = RunFolder(out)
    if not run.has_checkpoint():
        raise ExplorerError(f"cannot resume: {run.path} holds no checkpoint; train without --resume")
    saved = read_config(run.path)
    changes = {
        k: v
        for k, v in {
            "epochs": epochs,
            "lr": lr,
            "objective": objective,
            "samples": samples,
            "device": device,
        }.items()  # fmt: skip
        if v is not None
    }
    try:  # checked as a whole: the iwae objective wants beta 1
        cfg = replace(TrainConfig(**saved["train"]), **changes)
    except (ValueError, TypeError) as exc:
        raise ExplorerError(f"cannot change the run in {run.path} that way: {exc}") from None
    if saved.get("epoch", 0) >= cfg.epochs:  # "epoch" counts completed epochs
        raise ExplorerError(
            f"the run in {run.path} has trained {saved['epoch']} of {cfg.epochs} epochs already; give "
            f"--epochs more than {saved['epoch']} to train on"
        )
    model_config = ModelConfig.from_dict(saved["model"])
    return _train(run, model_config, cfg, [command] if command else [], progress, resume=True)


def _train(run, model_config, cfg, lines, progress, resume, init=None) -> Path:
    world = join(_device_type(cfg.device))
    try:
        # Gradients on whatever the caller's mode (a notebook cell under no_grad, an app thread
        # that turned them off for inference): without them the first backward() would fail.
        with torch.enable_grad():
            return _train_in(run, model_config, cfg, lines, progress, resume, init, world)
    finally:
        world.close()


def _train_in(run: RunFolder, model_config, cfg, lines, progress, resume, init, world: World) -> Path:
    # A device this machine lacks, a step too big for it, or a dataset that cannot be had is
    # refused before anything is written.
    try:
        check_combination(model_config, cfg)
    except ValueError as exc:
        raise ExplorerError(str(exc)) from None
    check_step_fits(model_config, cfg, pick_device(cfg.device))
    if not resume:
        fetch(cfg.dataset)
    if world.distributed and cfg.batch_size % world.size:
        raise ExplorerError(
            f"the batch of {cfg.batch_size} does not split evenly over {world.size} processes; "
            f"choose a --batch-size that is a multiple of {world.size}"
        )
    world.barrier()  # every process has checked the folder before rank 0 writes into it
    status = run.write_status if world.main else (lambda *a, **k: None)
    if world.main:
        run.create()
        if lines:  # the record of how this run was made, for its model card
            run.record_commands(lines)
    status("starting", epochs=cfg.epochs)
    try:
        trainer = Trainer(run, model_config, cfg, world, progress, resume=resume, init=init)
        trainer.report("running")
        stopped = trainer.run()
    except ExplorerError as exc:
        status("failed", message=str(exc))
        raise
    except BaseException as exc:
        status("failed", message=f"{type(exc).__name__}: {exc}")
        raise
    trainer.report("stopped" if stopped else "finished")
    return run.path


def _device_type(name: str) -> str:
    """The device type ``name`` resolves to, to pick the process group's backend; "cpu" when it
    cannot be had (the run then fails saying so)."""
    try:
        return pick_device(name).type
    except ExplorerError:
        return "cpu"


def lineage(init_from: str | os.PathLike) -> list[str]:
    """How the checkpoint a run starts from was made, as comment lines for the new run's
    commands.txt (and so its model card): the commands in its card.json (a shipped model) or
    commands.txt (a run)."""
    folder = resolve(init_from)
    card = Card.find(folder)  # a shipped model keeps its commands in its card
    commands = card.commands if card is not None else RunFolder(folder).read_commands()
    made = [c if c.startswith("#") else f"# {c}" for c in commands if c.strip()]
    return [f"# started from the weights of {init_from}" + (", made by:" if made else ""), *made]
