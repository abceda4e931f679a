"""``vae-explorer train``: its flags come from the settings in ``explorer.config`` (one flag per
setting, with its type, bounds, choices, unit and default). The command parses them and makes one
call, ``explorer.train.run.start_or_resume``, which owns the run folder, the rules of ``--resume``
(only resumable settings may change) and ``--init-from`` (the architecture comes from the
checkpoint) and the checks; ``--nproc`` restarts the command under torchrun once those passed."""

from __future__ import annotations

import os
import signal
import sys
import time

from explorer.cli.args import EXIT_INTERRUPTED, device, number, widths
from explorer.config import MODEL_SETTINGS, TRAIN_SETTINGS, Setting
from explorer.errors import ExplorerError

COMMAND_ENV = "VAE_EXPLORER_COMMAND_LINE"  # set for the processes `train --nproc` starts
DERIVE_ENV = "VAE_EXPLORER_DERIVE"  # "0": no derived/ figures after training, as --no-derive


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
        "codes, ELBO, stranger detector, density maps; 20-40 s on a 2-core CPU for an MNIST MLP, a "
        "minute more for a dataset's first run, whose detector outliers are then cached; "
        "VAE_EXPLORER_DERIVE=0 skips it too): a page then measures them on its first view",
    )  # fmt: skip
    t.add_argument(
        "--no-progress", action="store_true",
        help="quiet: no progress bar and no per-epoch lines (metrics.jsonl in the run folder has them)",
    )  # fmt: skip


def _given(args, settings) -> dict:
    return {s.name: getattr(args, s.name) for s in settings if getattr(args, s.name) is not None}


def cmd_train(args) -> int | None:
    from explorer.train.start import start_or_resume

    done = start_or_resume(
        out=args.out,
        name=args.name,
        resume=args.resume,
        init_from=args.init_from,
        model_values=_given(args, MODEL_SETTINGS),
        train_values=_given(args, TRAIN_SETTINGS),
        progress=False if args.no_progress else None,
        command=args.command_line,
        after_training=_derive if _derives(args) else None,
        before_training=(lambda: _launch_processes(args)) if args.nproc != 1 else None,
    )
    if os.environ.get("RANK", "0") != "0":  # with several processes, one says it
        return None
    print(f"run saved in {done.folder}")
    if done.stopped:  # a stop signal: checkpointed, not finished
        print(f"stopped before the last epoch; go on with: vae-explorer train --resume {done.folder}",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    return None


def _derives(args) -> bool:
    """Whether the run stores its derived figures when it ends: not with ``--no-derive`` or
    ``VAE_EXPLORER_DERIVE=0``, nor on ``--resume`` of a run started with ``--no-derive`` (its
    choice is kept, said once; a plain resume stored them on a disk the user had kept them off)."""
    if args.no_derive or os.environ.get(DERIVE_ENV) == "0":
        return False
    if not args.resume:
        return True
    from explorer.train.runfolder import RunFolder
    from explorer.train.start import run_folder

    try:
        folder = run_folder(args.out, args.name, args.resume)
    except ExplorerError:
        return True  # start_or_resume says what is wrong
    started = RunFolder(folder).read_commands()[:1]
    if started and "--no-derive" in started[0].split():
        if os.environ.get("RANK", "0") == "0":
            print(
                f"note: the run was started with --no-derive, so its derived figures are not stored at "
                f"its end either (vae-explorer derive {folder} stores them)",
                file=sys.stderr,
            )
        return False
    return True


class Skipped(BaseException):
    """A stop signal while a finished run stores what the pages need: that is left to the pages.
    (A BaseException, as KeyboardInterrupt: no ``except Exception`` of the work swallows it.)"""


def _skip(signum, frame) -> None:
    raise Skipped


def _derive(folder) -> dict:
    """What the app's pages need of the finished run's test set, stored beside its model
    (``explorer.explore.derived``), each part said as it starts (``derive_stage``, with its number
    and the seconds since the first) in the run's status, which the Train page shows with a
    progress bar, and in its log. A stop signal (the Train page's Skip, Ctrl-C) skips it: the
    trained model is saved already, and each page measures what it needs on its first visit; a
    failure leaves the run as it is too. Returns the fields the run's final status adds:
    ``derived`` ("stored", "skipped" or "failed")."""
    from explorer.explore.derived import CORE, WHAT, ensure
    from explorer.train.runfolder import RunFolder

    run = RunFolder(folder)
    kept = {k: v for k, v in (run.read_status() or {}).items() if k not in ("state", "pid", "time")}
    started = time.time()

    def report(part: str) -> None:
        stage = derive_stage(part)
        print(stage if part == CORE[0] else f"{stage.split(' (')[0]}: now the {WHAT[part]}", flush=True)
        progress = {"stage": stage, "stage_part": CORE.index(part), "stage_parts": len(CORE)}
        try:
            run.write_status("running", **{**kept, **progress, "stage_started": started})
        except OSError:
            pass  # a full disk: the run itself is saved, and "finished" is written (or not) after

    old = {sig: signal.signal(sig, _skip) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ensure(folder, parts=CORE, report=report, must_store=True)
    except Skipped:
        print(f"skipped storing what the pages need (stopped): the run is saved, and each page measures "
              f"what it needs on its first visit (or: vae-explorer derive {folder})", flush=True)  # fmt: skip
        return {"derived": "skipped"}
    except (ExplorerError, ValueError, OSError) as exc:
        print(f"the run is saved; what the pages need was not stored: {exc}", file=sys.stderr)
        return {"derived": "failed"}
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return {"derived": "stored"}


def derive_stage(part: str) -> str:
    """What a finished run is doing while it stores ``part`` of its derived figures, in words:
    the whole list, then the part now measured."""
    from explorer.explore.derived import CORE, WHAT

    return (
        f"storing what the pages need of the test set ({', '.join(WHAT[p] for p in CORE)}): "
        f"now the {WHAT[part]}"
    )


def _launch_processes(args) -> None:
    """Replace this process by torchrun starting ``args.nproc`` copies of this command (same PID,
    so a stop signal reaches torchrun, which passes it on to every process). The claim of the run
    folder (``start_or_resume``'s, inheritable) survives the exec: torchrun holds it for the
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


COMMANDS = {"train": cmd_train}
