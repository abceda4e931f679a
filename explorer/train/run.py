"""Start a run, or resume one: the ways into the trainer (``explorer.train.loop``).

``start_run`` trains a new model into a run folder (from random weights, or from a checkpoint's
with ``init_from``: fine-tuning); ``resume_run`` continues a run from its last checkpoint, and may
change only the settings marked resumable in ``explorer.config`` (epochs, learning rate,
objective, samples). Both hold the run folder for their process, check everything they can
before anything is written (the folder, the device, the memory one step needs, the data), record
how the run was made in its commands.txt, keep its status.json up to date, and return the run
folder. What a person asks of ``vae-explorer train`` reaches them through
``explorer.train.start.start_or_resume``.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from explorer.cards import Card
from explorer.checkpoints import dataset_of, load_checkpoint, read_config, resolve
from explorer.config import ModelConfig, TrainConfig, check_combination
from explorer.data.cache import fetch, fingerprint
from explorer.data.record import what_changed
from explorer.devices import check_step_fits, pick_device
from explorer.errors import ExplorerError
from explorer.train.distributed import World, join
from explorer.train.loop import Trainer
from explorer.train.recorder import Recorder
from explorer.train.runfolder import NO_RUN_FOLDER, RunFolder


def start_run(
    out: str | os.PathLike,
    model_config: ModelConfig | None = None,
    config: TrainConfig | None = None,
    *,
    init_from: str | os.PathLike | None = None,
    progress: bool | None = None,
    command: str | None = None,
    after_training: Callable[[Path], dict | None] | None = None,
) -> Path:
    """Train a new VAE into the run folder ``out``, which this process holds meanwhile
    (``RunFolder.claim``: a second process is refused, naming this one's pid); return the folder.

    ``init_from`` (a checkpoint folder or shipped name) starts from that checkpoint's weights and
    architecture instead of a random initialisation, with a fresh optimiser. ``command`` (the CLI's
    command line) is recorded in commands.txt for the model card. ``progress``: None shows a bar
    on a terminal, False never. ``after_training``: called with the run folder once training
    finished (not when a stop signal ended it), on the main process, before the status says
    "finished" (the CLI's ``train`` stores there what the app's pages need: ``explorer.explore.derived``);
    the fields of the dict it returns, if any, are added to that status.

    Raises:
        ExplorerError: another process holds ``out``, ``out`` already holds a run, ``init_from``
            was trained on another dataset, the device is missing or a step does not fit its
            memory, or training failed.
    """
    run, cfg = RunFolder(out), config or TrainConfig()
    with run.claim():
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
        if run.has_checkpoint():
            raise ExplorerError(
                f"{run.path} already holds a run; pass --resume to continue it or choose another --out"
            )
        # a run that never saved a checkpoint (a full disk at its first save) left only its logs:
        # a new run takes the folder (--resume has nothing to resume there)
        run.forget_unsaved()
        lines = ([*lineage(init_from), command] if init_from is not None else [command]) if command else []
        return _train(
            run, model_config or ModelConfig(), cfg, lines, progress, resume=False, init=init,
            after_training=after_training,
        )  # fmt: skip


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
    after_training: Callable[[Path], dict | None] | None = None,
) -> Path:
    """Continue the run in ``out`` from its last checkpoint, exactly as if it had not stopped,
    holding the folder meanwhile (``RunFolder.claim``: a second process is refused, naming this
    one's pid); return the folder. ``epochs``: train on to this many in all; ``lr``: a new
    learning rate from here on (the optimiser's moments are kept); ``objective``, ``samples``:
    switch the loss from here on (an ELBO-trained model finished on the IWAE bound, say);
    ``device``: where it goes on. None keeps the saved setting; a change is saved with the next
    checkpoint, so a later resume keeps it. ``after_training``: as for ``start_run``.

    Raises:
        ExplorerError: another process holds ``out``, no checkpoint in ``out``, a change that is
            not allowed, or training failed.
    """
    run = RunFolder(out)
    if not run.path.is_dir():  # (claiming it would make the folder)
        raise ExplorerError(NO_RUN_FOLDER.format(folder=run.path))
    changes = dict(epochs=epochs, lr=lr, objective=objective, samples=samples, device=device)
    changes = {k: v for k, v in changes.items() if v is not None}
    with run.claim():
        if not run.has_checkpoint():
            started = run.read_commands()[:1]  # the command that started it, as it was typed
            raise ExplorerError(
                f"cannot resume: {run.path} holds no checkpoint (its run stopped before saving one); "
                f"start it again without --resume: "
                + (started[0] if started else f"vae-explorer train --out {run.path} with its settings")
            )
        saved = read_config(run.path)
        try:  # checked as a whole: the iwae objective wants beta 1
            cfg = replace(TrainConfig(**saved["train"]), **changes)
        except (ValueError, TypeError) as exc:
            raise ExplorerError(f"cannot change the run in {run.path} that way: {exc}") from None
        if saved.get("epoch", 0) >= cfg.epochs:  # "epoch" counts completed epochs
            raise ExplorerError(
                f"the run in {run.path} has trained {saved['epoch']} epoch{'s' * (saved['epoch'] != 1)} "
                "already, and "
                f"--epochs {cfg.epochs} asks for no more: give --epochs more than {saved['epoch']} to "
                "train on"
            )
        model_config = ModelConfig.from_dict(saved["model"])
        same_shape(run, cfg.dataset, tuple(model_config.image_shape))
        same_data(run, cfg.dataset)
        lines = [command] if command else []
        return _train(run, model_config, cfg, lines, progress, resume=True, after_training=after_training)


def same_shape(run: RunFolder, dataset: str, shape: tuple[int, int, int]) -> None:
    """Refuse to resume a model of ``shape`` (C, H, W) images on ``dataset`` whose images are now of
    another size (a folder added again with --size 32, once 48x32): said by size, with no
    --init-from in the advice (a model reads one size of image).

    Raises:
        ExplorerError: the sizes, and how to start a new run on the data as it is.
    """
    from explorer.data.specs import spec

    now = tuple(spec(dataset).image_shape)
    if now == shape:
        return
    size = lambda s: f"{s[1]}x{s[2]} {'grey' if s[0] == 1 else 'colour'}"  # noqa: E731
    raise ExplorerError(
        f"the dataset {dataset} has {size(now)} images now, and the run in {run.path} is a model of "
        f"{size(shape)} images: a model reads one size of image. Train a new run on the data as it "
        f"is: vae-explorer train --out NEW_RUN --dataset {dataset}"
    )


def same_data(run: RunFolder, dataset: str) -> None:
    """Refuse to resume the run in ``run`` on data other than it started with (a folder added
    again with more or fewer images, say): its recorded counts and checksum against the data's
    now. A run from before the record was kept is resumed with a note (once: the record is
    written as it goes on).

    Raises:
        ExplorerError: what changed, and how to start a new run from the checkpoint.
    """
    was, now = run.read_data_record(), fingerprint(dataset)
    if was is None:
        if os.environ.get("RANK", "0") == "0":
            print(f"note: {run.path} has no record of its data (trained before VAE Explorer kept one): "
                  f"resuming without checking that {dataset} is unchanged", file=sys.stderr)  # fmt: skip
        return
    what = what_changed(was, now)
    if what is None:
        return
    raise ExplorerError(
        f"the dataset {dataset} has changed since the run in {run.path} started on it ({what}); a "
        f"run resumes on its own data. Start a new run from its checkpoint instead: vae-explorer "
        f"train --out NEW_RUN --init-from {run.path} --dataset {dataset}"
    )


def _train(run, model_config, cfg, lines, progress, resume, init=None, after_training=None) -> Path:
    world = join(_device_type(cfg.device))
    try:
        # Gradients on whatever the caller's mode (a notebook cell under no_grad, an app thread
        # that turned them off for inference): without them the first backward() would fail.
        with torch.enable_grad():
            return _train_in(run, model_config, cfg, lines, progress, resume, init, world, after_training)
    finally:
        world.close()


def _train_in(
    run: RunFolder, model_config, cfg, lines, progress, resume, init, world: World, after_training=None
) -> Path:
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
    try:
        if world.main:
            run.create()
            if lines:  # the record of how this run was made, for its model card
                run.record_commands(lines)
            if not resume or run.read_data_record() is None:  # what --resume checks
                run.write_data_record(fingerprint(cfg.dataset))
        status("starting", epochs=cfg.epochs)
        trainer = Trainer(run, model_config, cfg, world, progress, resume=resume, init=init)
        trainer.report("running")
        stopped = trainer.run()
    except OSError as exc:  # a full disk under a write of the run's: one line, not a traceback
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            _failed(status, f"{type(exc).__name__}: {exc}", cfg.epochs)
            raise
        written = Path(exc.filename or "its files").name.lstrip(".").split(".tmp")[0]  # not the temporary
        error = Recorder(run, cfg, world, None).write_failed(exc, written)
        _failed(status, str(error), cfg.epochs)
        raise error from None
    except ExplorerError as exc:
        _failed(status, str(exc), cfg.epochs)
        raise
    except BaseException as exc:
        _failed(status, f"{type(exc).__name__}: {exc}", cfg.epochs)
        raise
    noted = {}  # what the hook adds to the final status (the CLI's: whether it stored the figures)
    if after_training is not None and not stopped and world.main:
        noted = after_training(run.path) or {}  # before "finished": whatever it stores, a page then finds
    trainer.report("stopped" if stopped else "finished", **noted)
    return run.path


def _failed(status, message: str, epochs: int | None = None) -> None:
    """Record the run as failed with ``message`` (and the ``epochs`` it was asked for, which the
    Train page shows and offers to resume to); a status that cannot be written (the disk that
    failed the run) is left, and the error itself still reaches the caller."""
    try:
        status("failed", message=message, **({"epochs": epochs} if epochs else {}))
    except OSError:
        pass


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
