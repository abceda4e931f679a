"""``vae-explorer export``: a run shipped as a pretrained model with a measured card
(``explorer.cards``), and the TensorBoard export of a model's codes and curves
(``explorer.explore.tensorboard``)."""

from __future__ import annotations

from pathlib import Path

from explorer.cli.args import device, positive
from explorer.config import DEVICES
from explorer.errors import ExplorerError


def add_export_parser(sub) -> None:
    x = sub.add_parser(
        "export", help="ship a run as a pretrained model with a measured card, or export it for TensorBoard"
    )
    x.add_argument("run", help="run folder (or, with --tensorboard, a shipped model's name)")
    x.add_argument("dest", nargs="?", help="destination folder, e.g. pretrained/mnist-z2")
    x.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write the test set's codes (embedding projector, with labels and a sprite) and the run's "
        "curves (scalars) for TensorBoard into DIR",
    )
    x.add_argument("--k", type=int, default=5000, help="importance samples for the card's NLL")
    x.add_argument(
        "--limit", type=positive(int), help="the first N test images only (evaluation, TensorBoard)"
    )
    x.add_argument("--device", type=device, default="auto", help=DEVICES)
    x.add_argument(
        "--half",
        action="store_true",
        help="store the weights as float16 (half the file, for a size limit); the card is measured "
        "on them as stored",
    )


def cmd_export(args) -> None:
    from explorer.cards import export
    from explorer.checkpoints import resolve
    from explorer.cli.models import scored
    from explorer.train.runfolder import RunFolder

    run = RunFolder(resolve(args.run))  # a run that is not there is said first
    if args.dest and Path(args.dest).resolve() == run.path.resolve():
        raise ExplorerError(
            "the destination is the run's own folder: export to another folder, e.g. pretrained/NAME"
        )
    metrics = run.read_metrics()
    if args.tensorboard:
        from explorer.explore.tensorboard import export_tensorboard

        done = export_tensorboard(args.run, args.tensorboard, args.limit, metrics)
        if not done.scalars:
            print("no training curves: the folder has no metrics.jsonl (a shipped model keeps its card only)")
        print(
            f"wrote {done.points:,} code{'s' if done.points != 1 else ''} with labels and images and "
            f"{done.scalars:,} curve value{'s' if done.scalars != 1 else ''} to "
            f"{done.folder}: tensorboard --logdir {done.folder}"
        )
        if not args.dest:
            return
    elif not args.dest:
        raise ExplorerError("give a destination folder (export RUN DEST) or --tensorboard DIR")
    command = f"vae-explorer evaluate {args.dest} --k {args.k}" + (
        f" --limit {args.limit}" if args.limit else ""
    )
    epochs = [r for r in metrics if r.get("type") == "epoch"]
    measured = []

    def evaluate(folder: Path):
        measured.append(scored(str(folder), args.k, args.limit, "test", args.device, False).evaluation)
        return measured[-1]

    dest = export(args.run, args.dest, evaluate, command, run.read_commands(), epochs, args.half)
    result = measured[-1]
    if result.elbo is None:
        print(f"exported {args.run} to {dest}: test reconstruction term {result.recon:.2f} nats")
        return
    nll = f"{result.nll:.2f} nats (K = {args.k})" if result.nll is not None else "not measured (K = 0)"
    print(f"exported {args.run} to {dest}: test ELBO {result.elbo:.2f} nats, NLL {nll}")


COMMANDS = {"export": cmd_export}
