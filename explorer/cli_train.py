"""``vae-explorer train``: its flags come from the settings in ``explorer.config`` (one flag per
setting, with its type, bounds, choices, unit and default), and so do the rules of ``--resume``
(only resumable settings may change) and ``--init-from`` (the architecture comes from the
checkpoint)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from explorer.cli_args import EXIT_INTERRUPTED, device, number, widths
from explorer.config import ARCHITECTURE, MODEL_SETTINGS, RESUMABLE, TRAIN_SETTINGS, Setting
from explorer.errors import ExplorerError

COMMAND_ENV = "VAE_EXPLORER_COMMAND_LINE"  # set for the processes `train --nproc` starts


def _type(s: Setting):
    """The argparse type of a setting's flag."""
    if s.name == "device":
        return device
    if s.kind is tuple:
        return widths
    if s.kind in (int, float):
        return number(s.kind, s.low, s.high)
    return None


def _help(s: Setting) -> str:
    unit = f"; {s.unit}" if s.unit else ""
    default = (
        ""
        if s.default is None or "default:" in s.help  # the help says it (the dataset's)
        else f"; default {','.join(map(str, s.default)) if s.kind is tuple else s.default}"
    )
    resumable = "; may change on --resume" if s.resumable else ""
    return f"{s.help}{unit}{default}{resumable}"


def add_train_parser(sub) -> None:
    t = sub.add_parser(
        "train",
        help="train a VAE into a run folder",
        description="Train a VAE with AEVB; metrics and checkpoints go to the run folder.",
    )
    t.add_argument("--out", help="run folder, e.g. runs/mnist-z2 (or give --name)")
    t.add_argument("--name", help="run name: the run goes to runs/NAME (letters, digits, . _ -)")
    t.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="RUN",
        help="continue the run in RUN (or --out) from its last checkpoint",
    )
    t.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start from the weights of a checkpoint folder or "
        "shipped model (e.g. mnist-z20), with its architecture: fine-tuning, with a fresh optimiser",
    )
    for s in (*MODEL_SETTINGS, *TRAIN_SETTINGS):
        # default None: a flag the command line did not give is told apart from one it did
        t.add_argument(s.flag, type=_type(s), choices=s.choices or None, default=None, help=_help(s))
    t.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="train with N processes on this machine "
        "(DistributedDataParallel through torchrun: one per GPU, or gloo on the CPU); the batch "
        "is split across them",
    )
    t.add_argument(
        "--no-derive", action="store_true",
        help="skip what a finished run otherwise stores for the app's pages (its derived/ folder: "
        "codes, ELBO, stranger detector, density maps; seconds on a 2-core CPU): a page then "
        "measures them on its first view",
    )  # fmt: skip
    t.add_argument(
        "--no-progress", action="store_true",
        help="quiet: no progress bar and no per-epoch lines (metrics.jsonl in the run folder has them)",
    )  # fmt: skip


def _flags(names, last: str = ",") -> str:
    """``--a, --b and --c`` (``last="and"``) or ``--a, --b, --c``: sorted flag names, in words."""
    flags = ["--" + name.replace("_", "-") for name in sorted(names)]
    if last == "and" and len(flags) > 1:
        return ", ".join(flags[:-1]) + " and " + flags[-1]
    return ", ".join(flags)


def _given(args, settings) -> dict:
    return {s.name: getattr(args, s.name) for s in settings if getattr(args, s.name) is not None}


def cmd_train(args) -> int | None:
    """``vae-explorer train``: the run folder is claimed for this process first, before PyTorch is
    loaded, so that a second process is refused in about a second (``RunFolder.claim``), and held
    to the end (by torchrun with --nproc); ``start_run``/``resume_run`` find it held through the
    environment."""
    from explorer.runfolder import CLAIMED_ENV, RunFolder

    out = _run_folder(args)
    claim = RunFolder(out).claim(inheritable=args.nproc != 1)
    before = os.environ.get(CLAIMED_ENV)
    os.environ[CLAIMED_ENV] = str(Path(out).resolve())
    try:
        return _cmd_train(args)
    finally:
        claim.release()
        if before is None:
            os.environ.pop(CLAIMED_ENV, None)
        else:
            os.environ[CLAIMED_ENV] = before


def _cmd_train(args) -> int | None:
    from explorer.config import ModelConfig, TrainConfig
    from explorer.datasets import spec
    from explorer.runfolder import RunFolder
    from explorer.train import resume_run, start_run

    model_values, train_values = _given(args, MODEL_SETTINGS), _given(args, TRAIN_SETTINGS)
    if args.resume:
        # Flags that repeat the run's own settings change nothing: they are dropped, not refused.
        saved = _saved_settings(_run_folder(args))
        model_values = {k: v for k, v in model_values.items() if saved.get(k) != v}
        train_values = {k: v for k, v in train_values.items() if k in RESUMABLE or saved.get(k) != v}
        fixed = (set(model_values) | set(train_values)) - set(RESUMABLE)
        if fixed or args.init_from:
            flags, allowed = _flags(fixed) or "--init-from", _flags(RESUMABLE, "and")
            raise ExplorerError(
                f"a resumed run keeps its settings; {flags} cannot change (only {allowed} can). "
                "Start a new run with --out to train with other settings."
            )
    if args.init_from and set(model_values) & set(ARCHITECTURE):
        shaped = _flags(set(model_values) & set(ARCHITECTURE))
        raise ExplorerError(
            f"--init-from takes the architecture of {args.init_from}; {shaped} cannot be given with it."
        )
    if args.nproc != 1:
        _launch_processes(args)
    out, progress = _run_folder(args), False if args.no_progress else None
    if args.resume:
        folder = resume_run(
            out, progress=progress, command=args.command_line, derive=not args.no_derive, **train_values
        )
    else:
        cfg = TrainConfig(**train_values)
        described = spec(cfg.dataset)
        model_config = ModelConfig(
            **{"likelihood": described.likelihood, **model_values, "image_shape": described.image_shape}
        )
        folder = start_run(
            out, model_config, cfg, init_from=args.init_from, progress=progress, command=args.command_line,
            derive=not args.no_derive,
        )  # fmt: skip
    if os.environ.get("RANK", "0") != "0":  # with several processes, one says it
        return None
    state = (RunFolder(folder).read_status() or {}).get("state")
    print(f"run saved in {folder}")
    if state == "stopped":  # a stop signal: checkpointed, not finished
        print(f"stopped before the last epoch; go on with: vae-explorer train --resume {folder}",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    return None


def _saved_settings(out: str) -> dict:
    """The model and training settings of the run in ``out`` (tuples as tuples), or {} when it
    has none (resume_run then says so)."""
    from explorer.checkpoints import read_config

    try:
        saved = read_config(out)
    except ExplorerError:
        return {}
    flat = {**(saved.get("model") or {}), **(saved.get("train") or {})}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in flat.items()}


def _run_folder(args) -> str:
    """The run's folder: --out, --resume RUN (a folder, or the name of a run in runs/) or
    runs/NAME for --name NAME."""
    out = args.resume if isinstance(args.resume, str) else args.out
    if isinstance(args.resume, str) and not Path(out).exists() and "/" not in out:
        from explorer.runfolder import runs_root

        if (runs_root() / out).is_dir():  # --resume NAME, as --name NAME created it
            out = str(runs_root() / out)
    if args.name is not None:
        from explorer.runfolder import check_run_name, runs_root

        if out is not None:
            raise ExplorerError("give either --name or --out (or --resume RUN), not both")
        out = str(runs_root() / check_run_name(args.name))
    if out is None:
        raise ExplorerError("give the run folder with --out runs/NAME, --name NAME or --resume RUN")
    return out


def _launch_processes(args) -> None:
    """Replace this process by torchrun starting ``args.nproc`` copies of this command (same PID,
    so a stop signal reaches torchrun, which passes it on to every process). The claim of the run
    folder (``cmd_train``'s, inheritable) survives the exec: torchrun holds it for the
    run's life, and its workers, told so through the environment, do not claim it again."""
    if args.nproc < 1:
        raise ExplorerError("--nproc must be at least 1")
    import importlib.util

    if importlib.util.find_spec("torch.distributed.run") is None:
        raise ExplorerError("this PyTorch build has no torch.distributed; train without --nproc")
    # torchrun would take --nproc for its own --nproc-per-node, so the workers get the command
    # without it, and the full command line (for the run's record) through the environment.
    rest, skip = [], False
    for a in args.argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    os.environ[COMMAND_ENV] = args.command_line
    sys.stdout.flush()
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}"]
    os.execv(sys.executable, [sys.executable, *launcher, "-m", "explorer.cli", *rest])
