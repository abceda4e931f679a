"""What a person asks of ``vae-explorer train``, carried out: ``start_or_resume`` finds the run
folder (``--out``, ``--name``, ``--resume RUN``) and holds it for this process, holds a resume or
an ``--init-from`` to its rules (only resumable settings change; the architecture comes from the
checkpoint), fills in what the dataset implies, and calls ``explorer.train.run.start_run`` or
``resume_run``. The CLI parses and makes this one call; nothing comes back up but the outcome."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from explorer.checkpoints import read_config
from explorer.config import ARCHITECTURE_SETTINGS, RESUMABLE, ModelConfig, TrainConfig
from explorer.data.specs import spec
from explorer.errors import ExplorerError
from explorer.train.runfolder import CLAIMED_ENV, NO_RUN_FOLDER, RunFolder, check_run_name, runs_root
from explorer.train.stopping import StopRequest


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
    after_training: Callable[[Path], dict | None] | None = None,
    before_training: Callable[[], None] | None = None,
) -> Outcome:
    """Train as a person asked: a new run into ``out`` (or runs/``name``), or, with ``resume``
    (True: the run in ``out``; a string: a run folder or a run's name), go on with one.
    ``model_values`` and ``train_values`` are the settings given (by field name; the others take
    their defaults, the dataset's likelihood and image shape, or on resume the run's own).
    The run folder is claimed for this process first (``RunFolder.claim``), so that a second
    process is refused before any check, and held to the end. ``before_training`` runs once
    everything is checked and before anything is written (the CLI replaces the process by
    torchrun there: the claim is then inherited, and the workers are told so through
    ``CLAIMED_ENV``). ``after_training``: as ``explorer.train.run.start_run`` takes it.

    Raises:
        ExplorerError: no run folder or two of them, a run name that is not allowed, another
            process training in the folder, a setting a resume or ``init_from`` may not change,
            or whatever ``start_run`` and ``resume_run`` refuse.
    """
    folder = run_folder(out, name, resume)
    if resume and not folder.is_dir():  # (claiming it would make the folder, and its parents)
        raise ExplorerError(NO_RUN_FOLDER.format(folder=folder))
    claim = RunFolder(folder).claim(inheritable=before_training is not None)
    before = os.environ.get(CLAIMED_ENV)
    os.environ[CLAIMED_ENV] = str(folder.resolve())
    try:
        with StopRequest():  # a stop while the run starts (data, model) is kept: it checkpoints at once
            return _start_or_resume(
                folder, resume, init_from, dict(model_values or {}), dict(train_values or {}),
                progress=progress, command=command, after_training=after_training,
                before_training=before_training,
            )  # fmt: skip
    finally:
        claim.release()
        if before is None:
            os.environ.pop(CLAIMED_ENV, None)
        else:
            os.environ[CLAIMED_ENV] = before


def _start_or_resume(
    folder: Path, resume, init_from, model_values: dict, train_values: dict, **how
) -> Outcome:
    """``start_or_resume`` in a claimed ``folder``: the rules of a resume and of ``init_from``,
    then ``start_run`` or ``resume_run`` with ``how`` (progress, command, after_training)."""
    from explorer.train.run import resume_run, start_run

    before_training = how.pop("before_training")
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
    if init_from and train_values.get("init", "default") != "default":
        raise ExplorerError(
            f"--init-from starts from the weights of {init_from}, so --init {train_values['init']} "
            "would do nothing: leave out one of the two."
        )
    if before_training is not None:
        before_training()
    if resume:
        folder = resume_run(folder, **how, **train_values)
    else:
        cfg = TrainConfig(**train_values)
        described = spec(cfg.dataset)
        shaped = {"likelihood": described.likelihood, **model_values, "image_shape": described.image_shape}
        folder = start_run(folder, ModelConfig(**shaped), cfg, init_from=init_from, **how)
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
